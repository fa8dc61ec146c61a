import { humanDuration } from './duration.ts'
import { expiryOf, isHeld, type LeaseView, timeOf } from './rows.ts'

/** The controller's defaults: keep in step with its options. */
export const GC_DEFAULTS = Object.freeze({
  /** Seconds past a holder's lease duration before the controller marks the lease free. */
  grace: 2,
  /** Seconds a lease stays free before the controller deletes it. */
  retention: 300,
})

export interface GcOptions {
  readonly grace: number
  readonly retention: number
}

export interface GcAction<T extends LeaseView = LeaseView> {
  readonly lease: T
  /** `free`: the holder's lease ran out; `delete`: free for longer than the retention. */
  readonly action: 'free' | 'delete'
  readonly reason: string
}

/**
 * What the controller would do now to each lease, by its rule: a held lease whose duration plus the
 * grace has passed since its last renewal is marked free; a free lease older than the retention (counted
 * from its last write that carried a time, else its creation) is deleted. Leases it would leave alone are
 * not in the result.
 */
export function gcPlan<T extends LeaseView>(
  leases: readonly T[],
  now: number,
  options: GcOptions,
): GcAction<T>[] {
  const actions: GcAction<T>[] = []
  for (const lease of leases) {
    if (isHeld(lease)) {
      const expiry = expiryOf(lease)
      if (expiry === undefined) continue
      const over = now - expiry
      if (over > options.grace * 1000) {
        actions.push({
          lease,
          action: 'free',
          reason: `expired ${humanDuration(over)} ago (duration ${lease.leaseDurationSeconds}s + grace ${options.grace}s)`,
        })
      }
      continue
    }
    const since = timeOf(lease.renewTime) ?? timeOf(lease.acquireTime) ?? timeOf(lease.creationTimestamp)
    if (since === undefined) continue
    const free = now - since
    if (free > options.retention * 1000) {
      actions.push({
        lease,
        action: 'delete',
        reason: `free for ${humanDuration(free)} (retention ${humanDuration(options.retention * 1000)})`,
      })
    }
  }
  return actions
}
