import {
  type LeaseObservation,
  type ReclaimDecision,
  type ReclaimSettings,
  reclaimDecision,
} from '../sdk/internal.ts'

export { observe } from '../sdk/internal.ts'

// The controller's decision for one lease is the SDK's reclaim rule (sdk/reclaim.ts), which `locks gc`
// runs too. What it rests on, and why it is safe, is stated there.

/** What this process knows about a lease: the record and when it first saw that `resourceVersion`. */
export type Observation = LeaseObservation

export type ReconcileSettings = ReclaimSettings

export type Decision = ReclaimDecision

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
  return reclaimDecision(observation, now, wallNow, settings)
}
