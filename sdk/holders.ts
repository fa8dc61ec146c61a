import { randomBytes } from 'node:crypto'
import {
  HOLDER_OF_LABEL,
  HOLDS_ANNOTATION,
  LIMIT_ANNOTATION,
  LOCK_NAME_ANNOTATION,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  MODE_ANNOTATION,
} from './constants.ts'
import type { LeaseObservation } from './expiry.ts'
import { expiresAt, observe } from './expiry.ts'
import { leaseLabelValue, leaseNameBeside } from './lease-name.ts'
import type { LeaseDraft, LeaseRecord } from './lease-record.ts'
import { isFree, isManaged } from './lease-record.ts'
import { formatMicroTime } from './micro-time.ts'
import type { HolderMode } from './options.ts'
import { compareResourceVersions } from './resource-version.ts'
import { compareTickets, isTicketOf, isWaiting, ticketPosition } from './ticket.ts'

/**
 * Holder records: how a lock is held by several holders at once — a semaphore (`limit: N`) or a
 * shared lock (`shared: true`). Each such holder has a small Lease of its own beside the lock's lease,
 * renewed and judged exactly like a lock (its own expiry, signal and fencing token); the lock's lease
 * itself stays the exclusive holder's.
 *
 * - Name: `<lock lease name>.h-<16 random base32 characters>`, so `kubectl get leases` sorts a lock's
 *   holders under it. Label {@link HOLDER_OF_LABEL}: the lock's queue key (as for tickets), so one
 *   list reads every holder of one lock. Annotation {@link HOLDS_ANNOTATION}: the lock's lease name.
 * - Mode: {@link MODE_ANNOTATION} `shared` or `semaphore` (with {@link LIMIT_ANNOTATION}) on each
 *   record, and on the lock's lease once any such holder has used it (the mark).
 * - Order: the resourceVersion of a record's creation (kept in the position annotation by renewals, as
 *   a ticket keeps it). A semaphore holder holds when fewer than `limit` live records are ahead of it.
 *
 * The protocol (model/shared-lock.pml checks it) is announce-then-check, against the exclusive holder:
 * - A shared or semaphore acquirer first creates its record, and only then reads the lock's lease. If
 *   the lease is held (and not expired) it backs off: deletes its record and waits for the lease to come
 *   free. If the lease is free it makes sure the lease carries the mark (a compare-and-swap, or a create
 *   of a free lease); then it holds, when the count allows.
 * - An exclusive acquirer takes the lock's lease as always; if the lease it took carries the mark (a
 *   create always writes it: a lease that was deleted may have been marked), it lists the records and
 *   waits until every live one it listed is gone or expired. Records created after its list back off.
 *   Reads are consistent, so either the shared acquirer's read sees the exclusive holder, or the
 *   exclusive holder's list sees the record: never neither.
 */

const HOLDER_INFIX = '.h-'

/** The value of {@link HOLDER_OF_LABEL} for a lock: its lease name, or a hash if that is too long. */
export function holderKeyFor(leaseName: string): string {
  return leaseLabelValue(leaseName, 'h')
}

/** The label selector of one lock's holder records. */
export function holderSelector(leaseName: string): string {
  return `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE},${HOLDER_OF_LABEL}=${holderKeyFor(leaseName)}`
}

/** A fresh holder record name for `leaseName`. */
export function newHolderRecordName(leaseName: string, random: Uint8Array = randomBytes(10)): string {
  return leaseNameBeside(leaseName, HOLDER_INFIX, random)
}

/** Whether a managed lease is a holder record (one shared or semaphore holder) rather than a lock. */
export function isHolderRecord(record: Pick<LeaseRecord, 'labels'>): boolean {
  return isManaged(record) && record.labels[HOLDER_OF_LABEL] !== undefined
}

/** The lock lease a holder record holds; `undefined` for anything else. */
export function holderRecordLock(record: Pick<LeaseRecord, 'labels' | 'annotations'>): string | undefined {
  return isHolderRecord(record) ? record.annotations[HOLDS_ANNOTATION] : undefined
}

export function isHolderRecordOf(
  record: Pick<LeaseRecord, 'labels' | 'annotations'>,
  leaseName: string,
): boolean {
  return (
    isHolderRecord(record) &&
    record.labels[HOLDER_OF_LABEL] === holderKeyFor(leaseName) &&
    record.annotations[HOLDS_ANNOTATION] === leaseName
  )
}

/** The mark of a lease created by an exclusive acquirer, which has yet to look for holder records. */
export const EXCLUSIVE_MARK = 'exclusive'

/** The annotations of the lock's lease that the mark consists of. */
export const MARK_ANNOTATIONS: readonly string[] = Object.freeze([MODE_ANNOTATION, LIMIT_ANNOTATION])

/** The annotations that say `mode`. */
export function modeAnnotations(mode: HolderMode): Record<string, string> {
  return mode.kind === 'shared'
    ? { [MODE_ANNOTATION]: 'shared' }
    : { [MODE_ANNOTATION]: 'semaphore', [LIMIT_ANNOTATION]: String(mode.limit) }
}

/**
 * The mode a lease's annotations say: `undefined` if none, else the mode, or a string describing an
 * annotation kube-locks cannot read (written by a newer version, or by hand).
 */
export function modeOf(annotations: Readonly<Record<string, string>>): HolderMode | string | undefined {
  const mode = annotations[MODE_ANNOTATION]
  if (mode === undefined || mode === EXCLUSIVE_MARK) return undefined
  if (mode === 'shared') return { kind: 'shared' }
  const limit = Number(annotations[LIMIT_ANNOTATION])
  if (mode === 'semaphore' && Number.isInteger(limit) && limit >= 1) return { kind: 'semaphore', limit }
  return `lock of unknown mode \`${mode}\` (limit \`${annotations[LIMIT_ANNOTATION] ?? ''}\`)`
}

/** How a mode reads in messages and in the CLI: `shared lock`, `semaphore (limit 3)`. */
export function describeMode(mode: HolderMode | string): string {
  if (typeof mode === 'string') return mode
  return mode.kind === 'shared' ? 'shared lock' : `semaphore (limit ${mode.limit})`
}

export function sameMode(a: HolderMode, b: HolderMode | string): boolean {
  if (typeof b === 'string') return false
  return a.kind === b.kind && (a.kind === 'shared' || (b.kind === 'semaphore' && a.limit === b.limit))
}

export interface HolderDraftOptions {
  readonly namespace: string
  readonly leaseName: string
  readonly lockName: string
  readonly identity: string
  readonly mode: HolderMode
  readonly durationSeconds: number
  /** The holder annotations of this process (service, pod, node). */
  readonly annotations: Readonly<Record<string, string>>
  readonly wallNow: number
  readonly name?: string | undefined
}

/** What a shared or semaphore acquirer creates to announce itself. */
export function holderDraft(options: HolderDraftOptions): LeaseDraft {
  const time = formatMicroTime(options.wallNow)
  return {
    namespace: options.namespace,
    name: options.name ?? newHolderRecordName(options.leaseName),
    holderIdentity: options.identity,
    leaseDurationSeconds: options.durationSeconds,
    acquireTime: time,
    renewTime: time,
    leaseTransitions: 0,
    labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [HOLDER_OF_LABEL]: holderKeyFor(options.leaseName) },
    annotations: {
      ...options.annotations,
      ...modeAnnotations(options.mode),
      [LOCK_NAME_ANNOTATION]: options.lockName,
      [HOLDS_ANNOTATION]: options.leaseName,
    },
  }
}

/**
 * Whether an exclusive acquirer must wait for holder records after taking `record` (the lease as its
 * acquiring write left it): when the lease carries the mark — a create always writes it, since a lease
 * deleted while free may have been marked — or when the acquisition was learnt from a read.
 *
 * The mark must outlive every failure of an exclusive holder while holders may be in: so it is written
 * by the create itself, kept by every takeover and release, and dropped only by an exclusive holder that
 * has waited for every record it listed (then no shared holder is in, and none gets in before it
 * releases; the next one marks the free lease again before it holds).
 */
export function mayHaveHolders(record: LeaseRecord, readBack: boolean): boolean {
  return readBack || record.annotations[MODE_ANNOTATION] !== undefined
}

/** What this process has seen of one lock's holder records: first-seen times, for the expiry rule. */
export class HolderSightings {
  readonly #seen = new Map<string, LeaseObservation>()

  /** Records a consistent list (or the hub's view) of the records; forgets those no longer in it. */
  see(records: readonly LeaseRecord[], now: number): readonly LeaseObservation[] {
    const next = new Map<string, LeaseObservation>()
    for (const record of records) next.set(record.name, observe(this.#seen.get(record.name), record, now))
    this.#seen.clear()
    for (const [name, observation] of next) this.#seen.set(name, observation)
    return [...next.values()]
  }
}

/** Live: names a holder, and not seen unchanged past its duration plus the grace. */
export function isLive(observation: LeaseObservation, now: number, graceMs: number): boolean {
  return !isFree(observation.record) && now < expiresAt(observation, graceMs)
}

export type HolderVerdict =
  /** Holders of another mode are in: fail with the mode in use. */
  | { readonly kind: 'mode-conflict'; readonly inUse: HolderMode | string }
  /** The exclusive holder (or an exclusive waiter ahead, in a fair line) is in the way: back off. */
  | { readonly kind: 'back-off'; readonly holder: string | undefined; readonly until: number }
  /** The lock's lease is absent, or free without the mark: write the mark first. */
  | { readonly kind: 'mark' }
  /** The lock's lease is held but expired: free it first. */
  | { readonly kind: 'free-expired'; readonly lease: LeaseRecord }
  /** `limit` live records are ahead: wait; `until` is when the first of them could expire. */
  | { readonly kind: 'wait'; readonly holder: string | undefined; readonly until: number }
  | { readonly kind: 'hold' }
  /** Backed off, and nothing is in the way any more: announce again (create a new record). */
  | { readonly kind: 'announce' }

export interface HolderFacts {
  readonly mode: HolderMode
  /** This acquirer's record; `undefined` while backed off (then only the lease and the line count). */
  readonly own: LeaseRecord | undefined
  readonly lease: LeaseObservation | 'absent'
  readonly records: readonly LeaseObservation[]
  /** The exclusive waiters of a fair line, or none when not fair. */
  readonly tickets: readonly LeaseObservation[]
  readonly leaseName: string
  readonly now: number
  readonly graceMs: number
}

/**
 * The decision of one check: a pure function of what was read (a consistent read when acting on it,
 * the hub's view when deciding whether a read is worth it).
 */
export function judgeHolders(facts: HolderFacts): HolderVerdict {
  const { lease, now, graceMs, mode } = facts
  const ownName = facts.own?.name
  for (const observation of facts.records) {
    if (observation.record.name === ownName || !isLive(observation, now, graceMs)) continue
    const theirs = modeOf(observation.record.annotations)
    if (theirs !== undefined && !sameMode(mode, theirs)) return { kind: 'mode-conflict', inUse: theirs }
  }
  if (lease !== 'absent') {
    const marked = modeOf(lease.record.annotations)
    const anyLive = facts.records.some((o) => o.record.name !== ownName && isLive(o, now, graceMs))
    // The mark outlives its holders; it binds only while one of them is still in.
    if (marked !== undefined && anyLive && !sameMode(mode, marked)) {
      return { kind: 'mode-conflict', inUse: marked }
    }
    if (!isFree(lease.record)) {
      const expiry = expiresAt(lease, graceMs)
      if (now < expiry) return { kind: 'back-off', holder: lease.record.holderIdentity, until: expiry }
      return { kind: 'free-expired', lease: lease.record }
    }
  }
  const position = facts.own === undefined ? undefined : ticketPosition(facts.own)
  const ahead = (o: LeaseObservation) =>
    position === undefined || compareResourceVersions(ticketPosition(o.record), position) < 0
  const waiter = facts.tickets
    .filter((t) => isWaiting(t.record) && isTicketOf(t.record, facts.leaseName) && isLive(t, now, graceMs))
    .filter(ahead)
    .sort((a, b) => compareTickets(a.record, b.record))[0]
  if (waiter !== undefined) {
    return { kind: 'back-off', holder: waiter.record.holderIdentity, until: expiresAt(waiter, graceMs) }
  }
  if (facts.own === undefined) return { kind: 'announce' }
  if (lease === 'absent' || !sameModeMark(lease.record, mode)) return { kind: 'mark' }
  if (mode.kind === 'shared') return { kind: 'hold' }
  const before = facts.records
    .filter((o) => o.record.name !== ownName && isLive(o, now, graceMs) && ahead(o))
    .sort((a, b) => compareTickets(a.record, b.record))
  if (before.length < mode.limit) return { kind: 'hold' }
  const until = Math.min(...before.map((o) => expiresAt(o, graceMs)))
  return { kind: 'wait', holder: before[0]?.record.holderIdentity, until }
}

function sameModeMark(lease: LeaseRecord, mode: HolderMode): boolean {
  const marked = modeOf(lease.annotations)
  return marked !== undefined && sameMode(mode, marked)
}
