import { expiresAt, type LeaseObservation } from './expiry.ts'
import { freedRecord, isFree, isManaged, type LeaseRecord } from './lease-record.ts'
import { isTicket } from './ticket.ts'

/**
 * The controller's reclaim rule: what to do with one lease, as a pure function of what one process has
 * observed and that process's own monotonic clock. The controller runs it on every change and requeue;
 * `locks gc` runs the same function on a one-off look, so the two cannot drift apart.
 *
 * Level-based: it is recomputed from the current observation every time, so a missed or repeated call
 * never does harm, and every write it asks for carries the observed `uid` and `resourceVersion` as
 * preconditions — a lease renewed, released or re-created after the observation makes the write fail
 * with a conflict instead of undoing that change.
 *
 * Safety of freeing rests on the expiry rule in DESIGN.md: the holder stops at
 * `sendTime + duration − margin` on its clock, and the observer cannot have seen that write before it
 * was sent, so `firstSeenAt + duration + grace` on the observer's clock always comes later.
 *
 * Tickets (a fair lock's waiters, see `sdk/ticket.ts`) are judged by the same rule but never freed: a
 * ticket stands for one waiter, so a ticket whose waiter is gone is deleted, and one that names no
 * waiter is deleted at once. Deleting a ticket only lets the waiters behind it move up; it never
 * touches the lock's lease, so it cannot make two holders valid.
 */

/**
 * The controller's defaults, in seconds; its flags (`--grace`, `--retention`), the chart and
 * `locks gc` read them from here.
 *
 * `grace` (2 s) is larger than the SDK's `expiryGrace` (1 s, see the SDK's `DEFAULTS`) on purpose. Both
 * are added to a lease's duration before its observer counts it expired, but they guard different
 * moves: a waiting client that takes an expired lock over writes its own acquisition with a compare-
 * and-swap, and a holder that was merely slow loses nothing it had not already given up at its own
 * deadline. The controller frees leases of processes it knows nothing about, in every namespace, from
 * one watch that can lag behind the API server; the extra second covers that lag and leaves a waiter
 * that already watches the lease the first chance to take it, so the controller acts only on leases no
 * client has taken over.
 */
export const RECLAIM_DEFAULTS = Object.freeze({
  /**
   * Seconds beyond a lease's `leaseDurationSeconds` that the observer must see a held lease unchanged
   * before it marks it free.
   */
  grace: 2,
  /** Seconds a lease must stay free (as seen by the observer) before it is deleted. */
  retention: 300,
})

export interface ReclaimSettings {
  readonly graceMs: number
  readonly retentionMs: number
}

export type ReclaimDecision =
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
 * One reclaim step. `now` is the observer's monotonic clock in milliseconds, on the same scale as
 * `observation.firstSeenAt`; `wallNow` (epoch milliseconds) only fills the informational `renewTime`
 * of a lease it frees.
 */
export function reclaimDecision(
  observation: LeaseObservation,
  now: number,
  wallNow: number,
  settings: ReclaimSettings,
): ReclaimDecision {
  // The watch selects on the label already; this keeps a lease that lost it (or a bug upstream) safe.
  if (!isManaged(observation.record)) return { kind: 'ignore', why: 'not managed by kube-locks' }
  return reclaimManagedDecision(observation, now, wallNow, settings)
}

/**
 * {@link reclaimDecision} for a lease known to be managed by kube-locks — one listed or watched by the
 * managed-by selector — without checking its label again.
 */
export function reclaimManagedDecision(
  observation: LeaseObservation,
  now: number,
  wallNow: number,
  settings: ReclaimSettings,
): ReclaimDecision {
  const { record, firstSeenAt } = observation
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
