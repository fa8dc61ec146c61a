import stringWidth from 'string-width'
import { humanDuration } from './duration.ts'

/**
 * What the CLI reads from a lease: the fields of the SDK's `LeaseRecord` that it shows. Declared here as
 * a structural subset so that formatting stays a pure function of plain data.
 */
export interface LeaseView {
  readonly namespace: string
  readonly name: string
  readonly holderIdentity: string | undefined
  readonly leaseDurationSeconds: number | undefined
  readonly acquireTime: string | undefined
  readonly renewTime: string | undefined
  readonly leaseTransitions: number | undefined
  readonly annotations: Readonly<Record<string, string>>
  readonly creationTimestamp: string | undefined
}

/** Annotation keys, passed in so that this module needs nothing but data. */
export interface AnnotationKeys {
  readonly name: string
  readonly service: string
  readonly pod: string
  readonly node: string
}

export const NONE = '<none>'

/** `--show-labels`: `k=v,k2=v2` by key, as kubectl prints labels; `<none>` when there are none. */
export function formatLabels(labels: Readonly<Record<string, string>> | undefined): string {
  const entries = Object.entries(labels ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return entries.length === 0 ? NONE : entries.map(([key, value]) => `${key}=${value}`).join(',')
}

export interface LockRow {
  readonly namespace: string
  /** The original lock name. */
  readonly name: string
  readonly lease: string
  readonly holder: string
  readonly service: string
  readonly pod: string
  readonly node: string
  readonly age: string
  readonly expiresIn: string
  /** Waiters in the lock's queue (tickets that name one). */
  readonly waiting: string
  readonly transitions: string
  readonly duration: string
  readonly acquired: string
  readonly renewed: string
}

export function isHeld(lease: Pick<LeaseView, 'holderIdentity'>): boolean {
  return lease.holderIdentity !== undefined && lease.holderIdentity !== ''
}

/** Epoch ms of an RFC 3339 time, or `undefined` when absent or unreadable. */
export function timeOf(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const ms = Date.parse(value)
  return Number.isNaN(ms) ? undefined : ms
}

/**
 * When the holder's lease runs out by the times written in it: the last renewal (else the acquisition)
 * plus the lease duration. Informational: holders and the controller decide on their own clocks.
 */
export function expiryOf(lease: LeaseView): number | undefined {
  const last = timeOf(lease.renewTime) ?? timeOf(lease.acquireTime)
  if (last === undefined || lease.leaseDurationSeconds === undefined) return undefined
  return last + lease.leaseDurationSeconds * 1000
}

/** `12s` while the lease runs, `expired 3s ago` after, `<none>` when nobody holds it. */
export function expiresIn(lease: LeaseView, now: number): string {
  if (!isHeld(lease)) return NONE
  const expiry = expiryOf(lease)
  if (expiry === undefined) return '<unknown>'
  const left = expiry - now
  return left >= 0 ? humanDuration(left) : `expired ${humanDuration(-left)} ago`
}

function ageSince(value: string | undefined, now: number): string {
  const at = timeOf(value)
  return at === undefined ? NONE : humanDuration(now - at)
}

export function lockNameOf(lease: LeaseView, keys: AnnotationKeys): string {
  return lease.annotations[keys.name] ?? lease.name
}

export function lockRow(lease: LeaseView, now: number, keys: AnnotationKeys, waiting = 0): LockRow {
  const held = isHeld(lease)
  const holderAnnotation = (key: string) => (held ? (lease.annotations[key] ?? NONE) : NONE)
  return {
    namespace: lease.namespace,
    name: lockNameOf(lease, keys),
    lease: lease.name,
    holder: held ? (lease.holderIdentity as string) : NONE,
    service: holderAnnotation(keys.service),
    pod: holderAnnotation(keys.pod),
    node: holderAnnotation(keys.node),
    age: ageSince(lease.creationTimestamp, now),
    expiresIn: expiresIn(lease, now),
    waiting: String(waiting),
    transitions: String(lease.leaseTransitions ?? 0),
    duration: lease.leaseDurationSeconds === undefined ? NONE : `${lease.leaseDurationSeconds}s`,
    acquired: held ? ageSince(lease.acquireTime, now) : NONE,
    renewed: held ? ageSince(lease.renewTime, now) : NONE,
  }
}

/** One waiter in a lock's queue: a ticket, at its place in line (1 = next to take the lock). */
export interface QueueRow {
  readonly position: string
  readonly holder: string
  readonly service: string
  readonly pod: string
  readonly node: string
  /** Since the waiter began waiting: its ticket's `acquireTime`. */
  readonly waitingFor: string
  /** The ticket's Lease name. */
  readonly ticket: string
  /** By the times written in the ticket, as for locks: information, not the controller's judgement. */
  readonly expiresIn: string
}

export function queueRow(ticket: LeaseView, position: number, now: number, keys: AnnotationKeys): QueueRow {
  const annotation = (key: string) => ticket.annotations[key] ?? NONE
  return {
    position: String(position),
    holder: isHeld(ticket) ? (ticket.holderIdentity as string) : NONE,
    service: annotation(keys.service),
    pod: annotation(keys.pod),
    node: annotation(keys.node),
    waitingFor: ageSince(ticket.acquireTime, now),
    ticket: ticket.name,
    expiresIn: expiresIn(ticket, now),
  }
}

export interface Column<Row = LockRow> {
  readonly header: string
  readonly value: (row: Row) => string
}

const COLUMNS = {
  namespace: { header: 'NAMESPACE', value: (row) => row.namespace },
  name: { header: 'NAME', value: (row) => row.name },
  holder: { header: 'HOLDER', value: (row) => row.holder },
  service: { header: 'SERVICE', value: (row) => row.service },
  age: { header: 'AGE', value: (row) => row.age },
  expiresIn: { header: 'EXPIRES IN', value: (row) => row.expiresIn },
  waiting: { header: 'WAITING', value: (row) => row.waiting },
  transitions: { header: 'TRANSITIONS', value: (row) => row.transitions },
  lease: { header: 'LEASE', value: (row) => row.lease },
  duration: { header: 'DURATION', value: (row) => row.duration },
  acquired: { header: 'ACQUIRED', value: (row) => row.acquired },
  renewed: { header: 'RENEWED', value: (row) => row.renewed },
  pod: { header: 'POD', value: (row) => row.pod },
  node: { header: 'NODE', value: (row) => row.node },
} satisfies Record<string, Column>

/** The table's columns: NAMESPACE only across namespaces (`-A`), like kubectl; `wide` adds details. */
export function lockColumns(options: { readonly allNamespaces: boolean; readonly wide: boolean }): Column[] {
  const c = COLUMNS
  return [
    ...(options.allNamespaces ? [c.namespace] : []),
    c.name,
    c.holder,
    c.service,
    c.age,
    c.expiresIn,
    c.waiting,
    c.transitions,
    ...(options.wide ? [c.lease, c.duration, c.acquired, c.renewed, c.pod, c.node] : []),
  ]
}

const QUEUE_COLUMNS = {
  position: { header: 'POSITION', value: (row) => row.position },
  holder: { header: 'HOLDER', value: (row) => row.holder },
  service: { header: 'SERVICE', value: (row) => row.service },
  pod: { header: 'POD', value: (row) => row.pod },
  waitingFor: { header: 'WAITING FOR', value: (row) => row.waitingFor },
  ticket: { header: 'TICKET', value: (row) => row.ticket },
  node: { header: 'NODE', value: (row) => row.node },
  expiresIn: { header: 'EXPIRES IN', value: (row) => row.expiresIn },
} satisfies Record<string, Column<QueueRow>>

/** The queue's columns under a lock in `get`; `wide` adds the ticket's name, the node and its expiry. */
export function queueColumns(options: { readonly wide: boolean }): Column<QueueRow>[] {
  const c = QUEUE_COLUMNS
  return [
    c.position,
    c.holder,
    c.service,
    c.pod,
    c.waitingFor,
    ...(options.wide ? [c.ticket, c.node, c.expiresIn] : []),
  ]
}

/**
 * Text with line breaks or tabs would break the table; show them escaped. Lock names may be any string.
 */
export function cell(value: string): string {
  return /\p{Cc}/u.test(value) ? JSON.stringify(value).slice(1, -1) : value
}

/** Columns separated by three spaces, like kubectl's tabwriter; the last column is not padded. */
export function renderTable(
  headers: readonly string[] | undefined,
  rows: readonly (readonly string[])[],
  widths?: number[],
): { text: string; widths: number[] } {
  const all = headers ? [headers, ...rows] : rows
  const w = widths ?? []
  for (const row of all) {
    row.forEach((value, i) => {
      w[i] = Math.max(w[i] ?? 0, width(value))
    })
  }
  const line = (row: readonly string[]) =>
    row.map((value, i) => (i === row.length - 1 ? value : value + ' '.repeat((w[i] ?? 0) + 3 - width(value))))
  const text = all.map((row) => `${line(row).join('')}\n`).join('')
  return { text, widths: w }
}

/**
 * Columns on a terminal, not code points: a CJK character or an emoji takes two, a combining mark none.
 * Cells have their control characters escaped (`cell`), so no escape sequence reaches this.
 */
export function width(value: string): number {
  return stringWidth(value)
}
