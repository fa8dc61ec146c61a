import {
  type AnnotationKeys,
  ageSince,
  type Column,
  expiresIn,
  isHeld,
  type LeaseView,
  type LockMode,
  modeCell,
  NONE,
} from './rows.ts'

// The tables `get` prints under a lock's row: its holders (of a shared lock or a semaphore) and its
// line (the waiters, first first). Pure functions of plain data, like the lock's row (rows.ts).

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

/** One holder of a shared lock or a semaphore, under the lock in `get`. */
export interface HolderRow {
  readonly holder: string
  /** The mode its record says (each record carries it). */
  readonly mode: string
  readonly service: string
  readonly pod: string
  readonly node: string
  readonly acquired: string
  readonly renewed: string
  readonly expiresIn: string
  /** The record's resourceVersion: the holder's fencing token until its first renewal, larger after. */
  readonly resourceVersion: string
  /** The holder record's Lease name. */
  readonly record: string
  readonly duration: string
}

export function holderRow(
  record: LeaseView & { readonly resourceVersion: string },
  mode: LockMode,
  now: number,
  keys: AnnotationKeys,
): HolderRow {
  const annotation = (key: string) => record.annotations[key] ?? NONE
  return {
    holder: isHeld(record) ? (record.holderIdentity as string) : NONE,
    mode: modeCell(mode),
    service: annotation(keys.service),
    pod: annotation(keys.pod),
    node: annotation(keys.node),
    acquired: ageSince(record.acquireTime, now),
    renewed: ageSince(record.renewTime, now),
    expiresIn: expiresIn(record, now),
    resourceVersion: record.resourceVersion,
    record: record.name,
    duration: record.leaseDurationSeconds === undefined ? NONE : `${record.leaseDurationSeconds}s`,
  }
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

const HOLDER_COLUMNS = {
  holder: { header: 'HOLDER', value: (row) => row.holder },
  mode: { header: 'MODE', value: (row) => row.mode },
  service: { header: 'SERVICE', value: (row) => row.service },
  pod: { header: 'POD', value: (row) => row.pod },
  acquired: { header: 'ACQUIRED', value: (row) => row.acquired },
  renewed: { header: 'RENEWED', value: (row) => row.renewed },
  expiresIn: { header: 'EXPIRES IN', value: (row) => row.expiresIn },
  resourceVersion: { header: 'RESOURCEVERSION', value: (row) => row.resourceVersion },
  record: { header: 'RECORD', value: (row) => row.record },
  node: { header: 'NODE', value: (row) => row.node },
  duration: { header: 'DURATION', value: (row) => row.duration },
} satisfies Record<string, Column<HolderRow>>

/** The holders' columns under a lock in `get`; `wide` adds the record's name, the node and the duration. */
export function holderColumns(options: { readonly wide: boolean }): Column<HolderRow>[] {
  const c = HOLDER_COLUMNS
  return [
    c.holder,
    c.mode,
    c.service,
    c.pod,
    c.acquired,
    c.renewed,
    c.expiresIn,
    c.resourceVersion,
    ...(options.wide ? [c.record, c.node, c.duration] : []),
  ]
}
