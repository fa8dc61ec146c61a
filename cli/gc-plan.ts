import {
  type LeaseRecord,
  observe,
  RECLAIM_DEFAULTS,
  type ReclaimDecision,
  reclaimManagedDecision,
} from '../sdk/internal.ts'
import { humanDuration } from './duration.ts'
import { timeOf } from './rows.ts'

/** The controller's defaults (the SDK's `RECLAIM_DEFAULTS`), in seconds. */
export const GC_DEFAULTS = RECLAIM_DEFAULTS

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
  /** The reclaim rule's decision, with the write it asks for and that write's preconditions. */
  readonly decision: Extract<ReclaimDecision, { readonly kind: 'free' | 'delete' | 'delete-ticket' }>
}

/**
 * What the controller would do now to each lease of a list by the managed-by selector: the SDK's
 * reclaim rule, which the controller runs (sdk/reclaim.ts). The controller counts "unchanged" from
 * when it first saw the lease on its own monotonic clock; a one-off look can only count from the last
 * time written in it (`renewTime`, else `acquireTime`, else the creation), so here the observation is
 * dated by that time and judged against the wall clock. Leases it would leave alone are not in the
 * result.
 */
export function gcPlan(leases: readonly LeaseRecord[], now: number, options: GcOptions): GcAction[] {
  const settings = { graceMs: options.grace * 1000, retentionMs: options.retention * 1000 }
  const actions: GcAction[] = []
  for (const lease of leases) {
    const since = timeOf(lease.renewTime) ?? timeOf(lease.acquireTime) ?? timeOf(lease.creationTimestamp)
    const decision = reclaimManagedDecision(observe(undefined, lease, since ?? now), now, now, settings)
    // Without any time in it, a lease can only be judged where no time counts: a ticket naming no waiter.
    if (since === undefined && !(decision.kind === 'delete-ticket' && decision.why === 'free')) continue
    const action = actionOf(lease, decision, options)
    if (action !== undefined) actions.push(action)
  }
  return actions
}

function actionOf(lease: LeaseRecord, decision: ReclaimDecision, options: GcOptions): GcAction | undefined {
  const rule = `(duration ${lease.leaseDurationSeconds}s + grace ${options.grace}s)`
  const over = (unchangedMs: number) => humanDuration(unchangedMs - (lease.leaseDurationSeconds ?? 0) * 1000)
  switch (decision.kind) {
    case 'wait':
    case 'ignore':
      return undefined
    case 'free':
      return {
        decision,
        lease,
        kind: 'lock',
        action: 'free',
        reason: `expired ${over(decision.unchangedMs)} ago ${rule}`,
      }
    case 'delete':
      return {
        decision,
        lease,
        kind: 'lock',
        action: 'delete',
        reason: `free for ${humanDuration(decision.freeMs)} (retention ${humanDuration(options.retention * 1000)})`,
      }
    case 'delete-ticket':
      return {
        decision,
        lease,
        kind: 'ticket',
        action: 'delete',
        reason:
          decision.why === 'free'
            ? 'ticket names no waiter'
            : `ticket expired ${over(decision.unchangedMs)} ago ${rule}: its waiter is gone`,
      }
  }
}
