import type { LeaseRecord } from './lease-record.ts'
import { isFree } from './lease-record.ts'

/**
 * The expiry rule shared by waiters and the controller. Another machine's clock is never trusted: a
 * lease held by someone else counts as expired only when *this* process's monotonic clock has seen the
 * same `resourceVersion` unchanged for `leaseDurationSeconds` plus a grace. The holder stops at
 * `sendTime + expires − safetyMargin` on its own clock, and nobody can observe a write before it was
 * sent, so the observer's expiry point always comes later (only a difference in clock *rate* larger
 * than the margin could break this).
 */
export interface LeaseObservation {
  readonly record: LeaseRecord
  /** Monotonic milliseconds when this process first saw `record.resourceVersion`. */
  readonly firstSeenAt: number
}

/**
 * Records a new read of a lease: keeps the first-seen time while the lease is unchanged, restarts it
 * when it changed. "Unchanged" compares the holder's fields as well as uid and resourceVersion, as
 * client-go compares the whole record: after an etcd restore, resourceVersions can repeat.
 */
export function observe(
  previous: LeaseObservation | undefined,
  record: LeaseRecord,
  now: number,
): LeaseObservation {
  if (
    previous !== undefined &&
    previous.record.uid === record.uid &&
    previous.record.resourceVersion === record.resourceVersion &&
    previous.record.holderIdentity === record.holderIdentity &&
    previous.record.renewTime === record.renewTime &&
    previous.record.leaseTransitions === record.leaseTransitions &&
    previous.record.leaseDurationSeconds === record.leaseDurationSeconds
  ) {
    return previous.record === record ? previous : { record, firstSeenAt: previous.firstSeenAt }
  }
  return { record, firstSeenAt: now }
}

/**
 * Monotonic milliseconds from which the observed lease may be taken over: at once if it is free,
 * never (`Infinity`) if it carries no duration, else `firstSeenAt + leaseDurationSeconds + grace`.
 */
export function expiresAt(observation: LeaseObservation, graceMs: number): number {
  const { record } = observation
  if (isFree(record)) return Number.NEGATIVE_INFINITY
  const duration = record.leaseDurationSeconds
  if (duration === undefined || !Number.isFinite(duration) || duration <= 0) return Number.POSITIVE_INFINITY
  return observation.firstSeenAt + duration * 1000 + graceMs
}

export function isExpired(observation: LeaseObservation, now: number, graceMs: number): boolean {
  return now >= expiresAt(observation, graceMs)
}
