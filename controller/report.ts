import { type LeaseRecord, LOCK_NAME_ANNOTATION, type Logger } from '../sdk/internal.ts'
import type { LockEvent } from './events.ts'
import type { ControllerMetrics } from './metrics.ts'

/**
 * What the controller tells people about what it did: one log line for every act, a metric for every
 * act, and Events on the lock's Lease for what concerns a lock. The wording lives here, apart from the
 * decisions and the writes.
 */
export interface Reporting {
  readonly events: { record(event: LockEvent): void }
  readonly metrics: ControllerMetrics
  readonly logger: Logger
}

/** The stable log keys of a lease (see docs/operations.md, "Logs"). */
export function leaseFields(record: LeaseRecord) {
  return {
    lock: record.annotations[LOCK_NAME_ANNOTATION] ?? record.name,
    namespace: record.namespace,
    lease: record.name,
    holder: record.holderIdentity,
    resourceVersion: record.resourceVersion,
  }
}

const tenths = (ms: number) => Math.round(ms / 100) / 10

function regarding(record: LeaseRecord): LockEvent['lease'] {
  return { namespace: record.namespace, name: record.name, uid: record.uid }
}

/** A held lock seen unchanged past its duration plus grace, before the write that frees it. */
export function reportExpired(to: Reporting, record: LeaseRecord, unchangedMs: number): void {
  const fields = leaseFields(record)
  const seconds = tenths(unchangedMs)
  to.metrics.expired.inc()
  to.logger.warn?.('lock expired', {
    ...fields,
    unchangedSeconds: seconds,
    leaseDurationSeconds: record.leaseDurationSeconds,
  })
  to.events.record({
    reason: 'LockExpired',
    type: 'Warning',
    action: 'Reclaim',
    lease: regarding(record),
    note:
      `lock \`${fields.lock}\` held by \`${record.holderIdentity}\` was neither renewed nor released for ` +
      `${seconds} s, past its expiry of ${record.leaseDurationSeconds} s: the holder died, or its code ` +
      'ran longer than `expires` — raise `expires` or use `renew: true`',
  })
}

export function reportReclaimed(to: Reporting, record: LeaseRecord, written: LeaseRecord): void {
  const fields = leaseFields(record)
  to.metrics.reclaimed.inc()
  to.logger.info?.('lock reclaimed: marked free', { ...fields, resourceVersion: written.resourceVersion })
  to.events.record({
    reason: 'LockReclaimed',
    type: 'Normal',
    action: 'Reclaim',
    lease: regarding(record),
    note: `expired lock \`${fields.lock}\` of \`${record.holderIdentity}\` marked free; waiters can take it now`,
  })
}

export function reportGarbageCollected(
  to: Reporting,
  record: LeaseRecord,
  freeMs: number,
  retentionMs: number,
): void {
  const fields = leaseFields(record)
  const seconds = Math.round(freeMs / 1000)
  to.metrics.deleted.inc()
  to.logger.info?.('lease garbage-collected', { ...fields, freeSeconds: seconds })
  to.events.record({
    reason: 'LockGarbageCollected',
    type: 'Normal',
    action: 'Delete',
    lease: regarding(record),
    note: `lease of lock \`${fields.lock}\` deleted after staying free for ${seconds} s (retention ${retentionMs / 1000} s)`,
  })
}

/**
 * A ticket deleted. No Event: on a busy lock waiters come and go by the thousand, a waiter that gives
 * up deletes its own ticket, and Events about a ticket would outlive it; the metric and the log line
 * are the record.
 */
export function reportTicketDeleted(
  to: Reporting,
  record: LeaseRecord,
  why: 'expired' | 'free',
  unchangedMs: number,
): void {
  to.metrics.ticketsDeleted.inc({ reason: why })
  to.logger.info?.(
    why === 'free' ? 'ticket deleted: it named no waiter' : 'ticket deleted: its waiter is gone',
    {
      ...leaseFields(record),
      unchangedSeconds: tenths(unchangedMs),
      leaseDurationSeconds: record.leaseDurationSeconds,
    },
  )
}
