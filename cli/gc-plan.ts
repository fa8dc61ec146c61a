import { expiresAt, isFree, isTicket, type LeaseRecord, observe } from '../sdk/internal.ts'
import { humanDuration } from './duration.ts'
import { timeOf } from './rows.ts'

export { GC_DEFAULTS } from './flags.ts'

export interface GcOptions {
  readonly grace: number
  readonly retention: number
}

export interface GcAction {
  readonly lease: LeaseRecord
  /** `ticket`: a waiter's place in a fair lock's queue, which is deleted, never freed. */
  readonly kind: 'lock' | 'ticket'
  /**
   * `free`: the holder's lease ran out; `delete`: free for longer than the retention, or a ticket whose
   * waiter is gone or that names no waiter.
   */
  readonly action: 'free' | 'delete'
  readonly reason: string
}

/**
 * What the controller would do now to each lease, by its rule: a held lease unchanged for its duration
 * plus the grace is marked free (the SDK's `expiresAt`, which the controller uses too); a free lease
 * unchanged for the retention is deleted. The controller counts "unchanged" from when it first saw the
 * lease; a one-off look can only count from the last time written in it (`renewTime`, else
 * `acquireTime`, else the creation). Tickets follow the controller's rule for them: deleted once
 * unrenewed for their duration plus the grace, or at once when they name no waiter; never freed.
 * Leases it would leave alone are not in the result.
 */
export function gcPlan(leases: readonly LeaseRecord[], now: number, options: GcOptions): GcAction[] {
  const actions: GcAction[] = []
  for (const lease of leases) {
    const kind = isTicket(lease) ? 'ticket' : 'lock'
    if (kind === 'ticket' && isFree(lease)) {
      actions.push({ lease, kind, action: 'delete', reason: 'ticket names no waiter' })
      continue
    }
    const since = timeOf(lease.renewTime) ?? timeOf(lease.acquireTime) ?? timeOf(lease.creationTimestamp)
    if (since === undefined) continue
    if (!isFree(lease)) {
      const expiry = expiresAt(observe(undefined, lease, since), options.grace * 1000)
      if (now >= expiry) {
        const over = humanDuration(now - (expiry - options.grace * 1000))
        const rule = `(duration ${lease.leaseDurationSeconds}s + grace ${options.grace}s)`
        actions.push(
          kind === 'ticket'
            ? {
                lease,
                kind,
                action: 'delete',
                reason: `ticket expired ${over} ago ${rule}: its waiter is gone`,
              }
            : { lease, kind, action: 'free', reason: `expired ${over} ago ${rule}` },
        )
      }
      continue
    }
    const free = now - since
    if (free >= options.retention * 1000) {
      actions.push({
        lease,
        kind,
        action: 'delete',
        reason: `free for ${humanDuration(free)} (retention ${humanDuration(options.retention * 1000)})`,
      })
    }
  }
  return actions
}
