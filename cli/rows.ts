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
  /** `<N holders>` when several hold it (a shared lock, a semaphore). */
  readonly holder: string
  readonly service: string
  readonly pod: string
  readonly node: string
  readonly age: string
  readonly expiresIn: string
  /** How many hold it: `1`, `2/3` (a semaphore of 3), `shared ×4`; see {@link holdersCell}. */
  readonly holders: string
  /** Waiters in the lock's line (tickets that name one, semaphore holders beyond the limit). */
  readonly waiting: string
  readonly transitions: string
  /** `exclusive`, `shared`, `semaphore (limit 3)`. */
  readonly mode: string
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
  return expiryText(expiryOf(lease), now)
}

function expiryText(expiry: number | undefined, now: number): string {
  if (expiry === undefined) return '<unknown>'
  const left = expiry - now
  return left >= 0 ? humanDuration(left) : `expired ${humanDuration(-left)} ago`
}

/**
 * Whether a lease names a holder whose lease has not run out by the times written in it (one without a
 * duration never runs out). What the HOLDERS column counts: information, like EXPIRES IN; holders and
 * the controller judge expiry on their own clocks.
 */
export function isLive(lease: LeaseView, now: number): boolean {
  if (!isHeld(lease)) return false
  const expiry = expiryOf(lease)
  return expiry === undefined || expiry >= now
}

/** How long ago `value` was, as kubectl writes durations; `<none>` when absent or unreadable. */
export function ageSince(value: string | undefined, now: number): string {
  const at = timeOf(value)
  return at === undefined ? NONE : humanDuration(now - at)
}

export function lockNameOf(lease: LeaseView, keys: AnnotationKeys): string {
  return lease.annotations[keys.name] ?? lease.name
}

/** How a lock is held: one exclusive holder, shared holders, or a semaphore's `limit` holders. */
export type LockMode =
  | { readonly kind: 'exclusive' }
  | { readonly kind: 'shared' }
  | { readonly kind: 'semaphore'; readonly limit: number }
  /** A mode annotation this version cannot read (written by a newer one, or by hand): its value. */
  | { readonly kind: 'unknown'; readonly value: string }

export const EXCLUSIVE: LockMode = Object.freeze({ kind: 'exclusive' })

/** Who holds a lock besides (or instead of) its lease's holder: decided in `holders.ts`. */
export interface Holding {
  readonly mode: LockMode
  /**
   * The holder records that hold the lock, first in line first, with those whose leases ran out by the
   * times written in them; not the semaphore's holders beyond its limit, who wait.
   */
  readonly holders: readonly LeaseView[]
  /** How many of them hold it: those whose leases have not run out. */
  readonly count: number
}

/** The HOLDERS column: `0`/`1` for an exclusive lock, `2/3` for a semaphore of 3, `shared ×4`. */
export function holdersCell(mode: LockMode, count: number): string {
  switch (mode.kind) {
    case 'semaphore':
      return `${count}/${mode.limit}`
    case 'shared':
      return `shared ×${count}`
    default:
      return String(count)
  }
}

/** The MODE column, and the mode of each holder in `get`. */
export function modeCell(mode: LockMode): string {
  switch (mode.kind) {
    case 'semaphore':
      return `semaphore (limit ${mode.limit})`
    case 'unknown':
      return `unknown (${mode.value})`
    default:
      return mode.kind
  }
}

export const MIXED = '<mixed>'

/** The one value all of `values` have, else `<mixed>`. */
function common(values: readonly string[]): string {
  const [first = NONE, ...rest] = values
  return rest.every((value) => value === first) ? first : MIXED
}

/**
 * The row of a lock. Without `holding`, or when no holder record is live, it shows the holder of the
 * lock's own lease, as for every exclusive lock. Else it shows the live holder records: one as a lease
 * holder is shown; several as `<N holders>`, with what they have in common (else `<mixed>`), the
 * earliest acquisition, the latest renewal and the first lease to run out.
 */
export function lockRow(
  lease: LeaseView,
  now: number,
  keys: AnnotationKeys,
  waiting = 0,
  holding?: Holding,
): LockRow {
  const live = holding?.holders.filter((holder) => isLive(holder, now)) ?? []
  const ranOut = holding?.holders.filter((holder) => !isLive(holder, now)) ?? []
  // Whose details the row shows: live holders first, then the lease's own holder, then holders whose
  // leases ran out (as a lock whose holder's lease ran out shows that holder).
  const shown = live.length > 0 ? live : isHeld(lease) || ranOut.length === 0 ? [lease] : ranOut
  const held = shown.some(isHeld)
  const holderAnnotation = (key: string) =>
    common(shown.map((holder) => (held ? (holder.annotations[key] ?? NONE) : NONE)))
  const mode = holding?.mode ?? EXCLUSIVE
  const count = holding?.count ?? (isLive(lease, now) ? 1 : 0)
  const times = (pick: (holder: LeaseView) => string | undefined, earliest: boolean) => {
    const all = shown.map((holder) => timeOf(pick(holder))).filter((t): t is number => t !== undefined)
    return all.length === 0 ? undefined : earliest ? Math.min(...all) : Math.max(...all)
  }
  const age = (at: number | undefined) => (at === undefined ? NONE : humanDuration(now - at))
  const expiries = shown.map(expiryOf)
  const durations = shown.map((holder) =>
    holder.leaseDurationSeconds === undefined ? NONE : `${holder.leaseDurationSeconds}s`,
  )
  return {
    namespace: lease.namespace,
    name: lockNameOf(lease, keys),
    lease: lease.name,
    holder: !held
      ? NONE
      : shown.length === 1
        ? (shown[0]?.holderIdentity as string)
        : `<${shown.length} holders>`,
    service: holderAnnotation(keys.service),
    pod: holderAnnotation(keys.pod),
    node: holderAnnotation(keys.node),
    age: ageSince(lease.creationTimestamp, now),
    expiresIn: !held
      ? NONE
      : expiries.includes(undefined)
        ? '<unknown>'
        : expiryText(Math.min(...(expiries as number[])), now),
    holders: holdersCell(mode, count),
    waiting: String(waiting),
    transitions: String(lease.leaseTransitions ?? 0),
    duration: common(durations),
    acquired: held ? age(times((holder) => holder.acquireTime, true)) : NONE,
    renewed: held ? age(times((holder) => holder.renewTime, false)) : NONE,
    mode: modeCell(mode),
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
  holders: { header: 'HOLDERS', value: (row) => row.holders },
  waiting: { header: 'WAITING', value: (row) => row.waiting },
  transitions: { header: 'TRANSITIONS', value: (row) => row.transitions },
  lease: { header: 'LEASE', value: (row) => row.lease },
  duration: { header: 'DURATION', value: (row) => row.duration },
  acquired: { header: 'ACQUIRED', value: (row) => row.acquired },
  renewed: { header: 'RENEWED', value: (row) => row.renewed },
  pod: { header: 'POD', value: (row) => row.pod },
  node: { header: 'NODE', value: (row) => row.node },
  mode: { header: 'MODE', value: (row) => row.mode },
} satisfies Record<string, Column>

/**
 * The table's columns: NAMESPACE only across namespaces (`-A`), like kubectl; `wide` adds details.
 * HOLDERS sits beside WAITING, the two counts together; the columns before it keep their places.
 */
export function lockColumns(options: { readonly allNamespaces: boolean; readonly wide: boolean }): Column[] {
  const c = COLUMNS
  return [
    ...(options.allNamespaces ? [c.namespace] : []),
    c.name,
    c.holder,
    c.service,
    c.age,
    c.expiresIn,
    c.holders,
    c.waiting,
    c.transitions,
    ...(options.wide ? [c.lease, c.duration, c.acquired, c.renewed, c.pod, c.node, c.mode] : []),
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
