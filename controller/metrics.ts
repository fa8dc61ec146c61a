import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'

/**
 * The controller's Prometheus metrics, in a registry of its own. Names follow `kube_locks_…`, counters
 * end in `_total`, durations in `_seconds`; `docs/operations.md` lists them with suggested alerts.
 */
export interface ControllerMetrics {
  readonly registry: Registry
  /** Locks' leases in scope, by `state` (`held` or `free`), as this replica sees them; tickets apart. */
  readonly leases: Gauge<'state'>
  /** Tickets in scope: waiters in fair locks' queues, as this replica sees them. */
  readonly tickets: Gauge
  /** Tickets deleted, by `reason` (`expired`: the waiter is gone; `free`: it named no waiter). */
  readonly ticketsDeleted: Counter<'reason'>
  readonly expired: Counter
  readonly reclaimed: Counter
  readonly deleted: Counter
  /** Writes that lost their preconditions: the lease changed after the controller looked. */
  readonly conflicts: Counter<'action'>
  readonly reconcileErrors: Counter<'action'>
  readonly reconcileDuration: Histogram<'action'>
  readonly watchRestarts: Counter<'reason'>
  readonly events: Counter<'reason'>
  readonly eventsDropped: Counter<'reason'>
  readonly leader: Gauge
  readonly leaderTransitions: Counter
  readonly queueDepth: Gauge
}

export function createMetrics(options: { readonly processMetrics?: boolean } = {}): ControllerMetrics {
  const registry = new Registry()
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry })
  const registers = [registry]
  return {
    registry,
    leases: new Gauge({
      name: 'kube_locks_leases',
      help: "Locks' leases in scope, by state (held or free), as this replica sees them; tickets are counted in kube_locks_tickets.",
      labelNames: ['state'],
      registers,
    }),
    tickets: new Gauge({
      name: 'kube_locks_tickets',
      help: "Tickets in scope (waiters in fair locks' queues), as this replica sees them.",
      registers,
    }),
    ticketsDeleted: new Counter({
      name: 'kube_locks_tickets_deleted_total',
      help: 'Tickets this controller deleted, by reason (expired: unrenewed past its duration plus grace, the waiter is gone; free: it named no waiter).',
      labelNames: ['reason'],
      registers,
    }),
    expired: new Counter({
      name: 'kube_locks_expired_total',
      help: 'Locks seen held past their expiry plus grace without a renewal or release.',
      registers,
    }),
    reclaimed: new Counter({
      name: 'kube_locks_reclaimed_total',
      help: 'Expired locks this controller marked free.',
      registers,
    }),
    deleted: new Counter({
      name: 'kube_locks_deleted_total',
      help: 'Free leases this controller deleted after the retention period.',
      registers,
    }),
    conflicts: new Counter({
      name: 'kube_locks_reconcile_conflicts_total',
      help: 'Frees or deletes refused because the lease changed after the controller looked (expected under contention), by action (free, delete, delete-ticket).',
      labelNames: ['action'],
      registers,
    }),
    reconcileErrors: new Counter({
      name: 'kube_locks_reconcile_errors_total',
      help: 'Frees or deletes that failed for another reason; retried with backoff.',
      labelNames: ['action'],
      registers,
    }),
    reconcileDuration: new Histogram({
      name: 'kube_locks_reconcile_duration_seconds',
      help: 'Time of one free or delete request to the API server.',
      labelNames: ['action'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    watchRestarts: new Counter({
      name: 'kube_locks_watch_restarts_total',
      help: 'Lease watches started again, by reason (expired: 410 Gone, then a new list; error: failed, resumed after backoff).',
      labelNames: ['reason'],
      registers,
    }),
    events: new Counter({
      name: 'kube_locks_events_total',
      help: 'Occurrences recorded as Kubernetes Events, by reason (including those folded into a series).',
      labelNames: ['reason'],
      registers,
    }),
    eventsDropped: new Counter({
      name: 'kube_locks_events_dropped_total',
      help: 'Event writes skipped by the rate limit or failed.',
      labelNames: ['reason'],
      registers,
    }),
    leader: new Gauge({
      name: 'kube_locks_controller_leader',
      help: '1 while this replica is the leader that acts, else 0.',
      registers,
    }),
    leaderTransitions: new Counter({
      name: 'kube_locks_controller_leader_transitions_total',
      help: 'Times this replica became the leader.',
      registers,
    }),
    queueDepth: new Gauge({
      name: 'kube_locks_queue_depth',
      help: 'Leases waiting to be reconciled now.',
      registers,
    }),
  }
}
