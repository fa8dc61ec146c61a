import { randomBytes } from 'node:crypto'
import {
  LOCK_NAME_ANNOTATION,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  QUEUE_LABEL,
  QUEUE_POSITION_ANNOTATION,
  WAITS_FOR_ANNOTATION,
} from './constants.ts'
import { leaseLabelValue, leaseNameBeside } from './lease-name.ts'
import type { LeaseDraft, LeaseRecord } from './lease-record.ts'
import { isFree, isManaged } from './lease-record.ts'
import { formatMicroTime } from './micro-time.ts'
import { compareResourceVersions } from './resource-version.ts'

/**
 * Tickets: the queue of a fair lock. A waiter that has to wait creates one small Lease of its own — a
 * ticket — beside the lock's lease, and renews it while it waits. The lock's lease is never written by
 * waiters, so a holder's compare-and-swap renewals see only its own writes.
 *
 * - Name: `<lock lease name>.q-<16 random base32 characters>`, so `kubectl get leases` sorts a lock's
 *   tickets under it (a lock lease name too long to prefix is cut, keeping the name valid).
 * - Label {@link QUEUE_LABEL}: the queue key of the lock ({@link queueKeyFor}), so
 *   `-l kube-locks.io/queue-for=<key>` lists one queue and `-l '!kube-locks.io/queue-for'` leaves
 *   tickets out. Annotation {@link WAITS_FOR_ANNOTATION}: the lock's lease name, exactly.
 * - Spec: `holderIdentity` is the waiter's identity, `leaseDurationSeconds` how long the ticket lives
 *   without a renewal, `acquireTime` when the waiter began waiting (wall clock, for people).
 * - Order: the resourceVersion of the ticket's creation, as etcd orders waiters by create revision.
 *   Until its first renewal a ticket's resourceVersion is that revision; every renewal writes it into
 *   annotation {@link QUEUE_POSITION_ANNOTATION}, so every observer reads the same position.
 *
 * A ticket whose holder is gone is judged as a lease is: dead once this process has seen it unchanged
 * for its duration plus a grace (`observe` / `expiresAt`); no other machine's clock is trusted.
 */

const TICKET_INFIX = '.q-'

/**
 * The value of {@link QUEUE_LABEL} for a lock's lease: the lease name when it fits a label value,
 * else `q-` and 160 bits of its SHA-256 in base32.
 */
export function queueKeyFor(leaseName: string): string {
  return leaseLabelValue(leaseName, 'q')
}

/** The label selector of one lock's tickets. */
export function queueSelector(leaseName: string): string {
  return `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE},${QUEUE_LABEL}=${queueKeyFor(leaseName)}`
}

/** A fresh ticket name for a waiter of `leaseName`. */
export function newTicketName(leaseName: string, random: Uint8Array = randomBytes(10)): string {
  return leaseNameBeside(leaseName, TICKET_INFIX, random)
}

/** Whether a managed lease is a ticket (in a queue) rather than a lock. */
export function isTicket(record: Pick<LeaseRecord, 'labels'>): boolean {
  return isManaged(record) && record.labels[QUEUE_LABEL] !== undefined
}

/** The lock lease a ticket waits for; `undefined` for anything that is not a ticket. */
export function ticketLock(record: Pick<LeaseRecord, 'labels' | 'annotations'>): string | undefined {
  return isTicket(record) ? record.annotations[WAITS_FOR_ANNOTATION] : undefined
}

/** Whether `ticket` is a ticket of the lock whose lease is `leaseName`. */
export function isTicketOf(ticket: Pick<LeaseRecord, 'labels' | 'annotations'>, leaseName: string): boolean {
  return (
    isTicket(ticket) &&
    ticket.labels[QUEUE_LABEL] === queueKeyFor(leaseName) &&
    ticket.annotations[WAITS_FOR_ANNOTATION] === leaseName
  )
}

/** A ticket's place in line: the resourceVersion of its creation. */
export function ticketPosition(ticket: Pick<LeaseRecord, 'resourceVersion' | 'annotations'>): string {
  return ticket.annotations[QUEUE_POSITION_ANNOTATION] ?? ticket.resourceVersion
}

/** Orders tickets by position (earliest first), then by name for tickets of equal position. */
export function compareTickets(
  a: Pick<LeaseRecord, 'name' | 'resourceVersion' | 'annotations'>,
  b: Pick<LeaseRecord, 'name' | 'resourceVersion' | 'annotations'>,
): number {
  const byPosition = compareResourceVersions(ticketPosition(a), ticketPosition(b))
  if (byPosition !== 0) return byPosition
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0
}

/** Whether a ticket still stands for a waiter: it names one (the controller clears none, it deletes). */
export function isWaiting(ticket: Pick<LeaseRecord, 'holderIdentity'>): boolean {
  return !isFree(ticket)
}

export interface TicketDraftOptions {
  readonly namespace: string
  readonly leaseName: string
  readonly lockName: string
  readonly identity: string
  readonly durationSeconds: number
  /** The holder annotations of this process (service, pod, node). */
  readonly annotations: Readonly<Record<string, string>>
  readonly wallNow: number
  readonly name?: string | undefined
}

/** What a waiter creates to join the line. */
export function ticketDraft(options: TicketDraftOptions): LeaseDraft {
  const time = formatMicroTime(options.wallNow)
  return {
    namespace: options.namespace,
    name: options.name ?? newTicketName(options.leaseName),
    holderIdentity: options.identity,
    leaseDurationSeconds: options.durationSeconds,
    acquireTime: time,
    renewTime: time,
    leaseTransitions: 0,
    labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [QUEUE_LABEL]: queueKeyFor(options.leaseName) },
    annotations: {
      ...options.annotations,
      [LOCK_NAME_ANNOTATION]: options.lockName,
      [WAITS_FOR_ANNOTATION]: options.leaseName,
    },
  }
}

/** A renewal of `ticket`: a new `renewTime`, and its position written down for every observer. */
export function renewedTicket(ticket: LeaseRecord, wallNow: number): LeaseRecord {
  return {
    ...ticket,
    renewTime: formatMicroTime(wallNow),
    annotations: { ...ticket.annotations, [QUEUE_POSITION_ANNOTATION]: ticketPosition(ticket) },
  }
}
