import {
  expiresAt,
  freedRecord,
  isFree,
  isManaged,
  isTicket,
  type LeaseObservation,
  type LeaseRecord,
} from '../sdk/internal.ts'

export { observe } from '../sdk/internal.ts'

/**
 * The controller's decision for one lease, as a pure function of what this process has observed and
 * its own monotonic clock. Level-based: it is recomputed from the current observation every time, so a
 * missed or repeated call never does harm, and every write it asks for carries the observed `uid` and
 * `resourceVersion` as preconditions — a lease renewed, released or re-created after the observation
 * makes the write fail with a conflict instead of undoing that change.
 *
 * Safety of freeing rests on the expiry rule in DESIGN.md: the holder stops at
 * `sendTime + duration − margin` on its clock, and this process cannot have seen that write before it
 * was sent, so `firstSeenAt + duration + grace` on this process's clock always comes later.
 *
 * Tickets (a fair lock's waiters, see `sdk/ticket.ts`) are judged by the same rule but never freed: a
 * ticket stands for one waiter, so a ticket whose waiter is gone is deleted, and one that names no
 * waiter is deleted at once. Deleting a ticket only lets the waiters behind it move up; it never
 * touches the lock's lease, so it cannot make two holders valid.
 */

/** What this process knows about a lease: the record and when it first saw that `resourceVersion`. */
export type Observation = LeaseObservation

export interface ReconcileSettings {
  readonly graceMs: number
  readonly retentionMs: number
}

export type Decision =
  /** Nothing to do now; look again after `requeueAfterMs` (or on the next change). */
  | {
      readonly kind: 'wait'
      /** `waiting`: a ticket that still stands for a waiter. */
      readonly state: 'held' | 'free' | 'waiting'
      readonly requeueAfterMs: number
    }
  /** Not ours to act on (not managed, or held without a duration); never written. */
  | { readonly kind: 'ignore'; readonly why: string }
  /** Held past `duration + grace` unchanged: write `update`, which clears the holder. */
  | { readonly kind: 'free'; readonly update: LeaseRecord; readonly unchangedMs: number }
  /** Free for the retention period unchanged: delete under these preconditions. */
  | {
      readonly kind: 'delete'
      readonly preconditions: { readonly uid: string; readonly resourceVersion: string }
      readonly freeMs: number
    }
  /**
   * A ticket to delete under these preconditions: `expired` when unchanged past `duration + grace`
   * (its waiter died, hangs or was cut off), `free` when it names no waiter.
   */
  | {
      readonly kind: 'delete-ticket'
      readonly why: 'expired' | 'free'
      readonly preconditions: { readonly uid: string; readonly resourceVersion: string }
      readonly unchangedMs: number
    }

/**
 * One reconcile step. `now` is this process's monotonic clock in milliseconds; `wallNow` (epoch
 * milliseconds) only fills the informational `renewTime` of a lease it frees.
 */
export function reconcile(
  observation: Observation,
  now: number,
  wallNow: number,
  settings: ReconcileSettings,
): Decision {
  const { record, firstSeenAt } = observation
  // The watch selects on the label already; this keeps a lease that lost it (or a bug upstream) safe.
  if (!isManaged(record)) return { kind: 'ignore', why: 'not managed by kube-locks' }
  const unchangedMs = Math.max(0, now - firstSeenAt)
  const preconditions = { uid: record.uid, resourceVersion: record.resourceVersion }
  if (isTicket(record)) {
    if (isFree(record)) return { kind: 'delete-ticket', why: 'free', preconditions, unchangedMs }
    const expiry = expiresAt(observation, settings.graceMs)
    if (expiry === Number.POSITIVE_INFINITY) {
      return { kind: 'ignore', why: 'ticket without a positive leaseDurationSeconds, so it never expires' }
    }
    if (now >= expiry) return { kind: 'delete-ticket', why: 'expired', preconditions, unchangedMs }
    return { kind: 'wait', state: 'waiting', requeueAfterMs: expiry - now }
  }
  if (isFree(record)) {
    if (unchangedMs >= settings.retentionMs) {
      return { kind: 'delete', preconditions, freeMs: unchangedMs }
    }
    return { kind: 'wait', state: 'free', requeueAfterMs: settings.retentionMs - unchangedMs }
  }
  // The same rule as a waiting client's, so the controller never frees a lease earlier than a client
  // with the same grace would take it over.
  const expiry = expiresAt(observation, settings.graceMs)
  if (expiry === Number.POSITIVE_INFINITY) {
    return { kind: 'ignore', why: 'held without a positive leaseDurationSeconds, so it never expires' }
  }
  if (now >= expiry) return { kind: 'free', update: freedRecord(record, wallNow), unchangedMs }
  return { kind: 'wait', state: 'held', requeueAfterMs: expiry - now }
}
