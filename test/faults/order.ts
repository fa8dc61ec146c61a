import { leaseNameFor, newTicketName } from '../../sdk/internal.ts'
import { compareTokens } from './checker.ts'

/**
 * The order of fair locks, judged from what the workers reported. Waiters are served in the order their
 * tickets were created: an acquisition's place in line is the resourceVersion of the create of its last
 * ticket (a waiter that was cut off from the line joins again at the back), its turn is its fencing
 * token (the resourceVersion of its acquiring write). Order is a quality promise, not a safety one: a
 * waiter that died, was paused or was cut off loses its place legitimately, so under faults inversions
 * are reported, and only a fault-free run must have none.
 */

/** A create the SDK's store sent for one acquisition (its holder identity), as the worker reported it. */
export interface CreateRecord {
  readonly holder: string
  /** The lease it created: the lock's, or a ticket. */
  readonly name: string
  /** Send time on the coordinator's timebase. */
  readonly sentAt: number
  /** `unknown`: it may have applied, but no answer told where it stands. */
  readonly outcome: 'applied' | 'unknown'
  readonly resourceVersion?: string | undefined
}

/** One acquisition: the lock, who took it, its fencing token. */
export interface Acquisition {
  readonly lock: string
  readonly worker: string
  readonly holder: string
  readonly token: string
}

export type Place =
  /** It waited in line with a ticket created at `position`. */
  | { readonly kind: 'queued'; readonly position: string }
  /** It took the lock without joining the line. */
  | { readonly kind: 'direct' }
  /** It joined the line, but the answer to its last ticket's create was lost: its place is unknown. */
  | { readonly kind: 'unplaced' }

export interface OrderResult {
  readonly queued: number
  readonly direct: number
  readonly unplaced: number
  /** Pairs of queued acquisitions of one lock served against the order of their tickets. */
  readonly inversions: number
  /** Queued acquisitions served after at least one whose ticket was created later. */
  readonly overtaken: number
  /** A few inversions, for failure messages. */
  readonly examples: readonly string[]
}

const RANDOM_CHARACTERS = 16

/** Whether `name` is a ticket name of the lock whose lease is `leaseName` (see `sdk/ticket.ts`). */
export function isTicketNameOf(name: string, leaseName: string): boolean {
  // The SDK's own format, with the random part cut off: what every ticket of this lock begins with.
  const prefix = newTicketName(leaseName, new Uint8Array(10)).slice(0, -RANDOM_CHARACTERS)
  return name.length === prefix.length + RANDOM_CHARACTERS && name.startsWith(prefix)
}

/** Where `acquisition` stood in line, from the creates its identity sent (in any order). */
export function placeOf(acquisition: Acquisition, creates: readonly CreateRecord[]): Place {
  const leaseName = leaseNameFor(acquisition.lock)
  const tickets = creates
    .filter((c) => c.holder === acquisition.holder && isTicketNameOf(c.name, leaseName))
    .sort((a, b) => a.sentAt - b.sentAt)
  const last = tickets.at(-1)
  if (last === undefined) return { kind: 'direct' }
  if (last.outcome === 'applied' && last.resourceVersion !== undefined) {
    return { kind: 'queued', position: last.resourceVersion }
  }
  return { kind: 'unplaced' }
}

/**
 * Counts, per lock, the queued acquisitions served against ticket order. `createsOf(holder)` returns the
 * creates sent under one holder identity.
 */
export function judgeOrder(
  acquisitions: readonly Acquisition[],
  createsOf: (holder: string) => readonly CreateRecord[],
): OrderResult {
  let direct = 0
  let unplaced = 0
  const queued = new Map<string, { acquisition: Acquisition; position: string }[]>()
  for (const acquisition of acquisitions) {
    const place = placeOf(acquisition, createsOf(acquisition.holder))
    if (place.kind === 'direct') direct++
    else if (place.kind === 'unplaced') unplaced++
    else {
      const list = queued.get(acquisition.lock) ?? []
      list.push({ acquisition, position: place.position })
      queued.set(acquisition.lock, list)
    }
  }
  let inversions = 0
  let overtaken = 0
  let count = 0
  const examples: string[] = []
  for (const [lock, turns] of queued) {
    count += turns.length
    // In the order they were served; each one against those served before it.
    const served = [...turns].sort((a, b) => compareTokens(a.acquisition.token, b.acquisition.token))
    for (let j = 0; j < served.length; j++) {
      const a = served[j] as (typeof served)[number]
      let passed = false
      for (let i = 0; i < j; i++) {
        const b = served[i] as (typeof served)[number]
        // `b` was served before `a` although `a`'s ticket came first.
        if (compareTokens(b.position, a.position) <= 0) continue
        inversions++
        if (!passed) overtaken++
        passed = true
        if (examples.length < 5) {
          examples.push(
            `${lock}: ${a.acquisition.worker} (ticket ${a.position}, token ${a.acquisition.token}) was served ` +
              `after ${b.acquisition.worker} (ticket ${b.position}, token ${b.acquisition.token})`,
          )
        }
      }
    }
  }
  return { queued: count, direct, unplaced, inversions, overtaken, examples }
}
