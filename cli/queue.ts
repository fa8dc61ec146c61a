import { compareTickets, isTicket, isTicketOf, isWaiting, ticketLock } from '../sdk/internal.ts'
import type { Item } from './output.ts'

/**
 * Fair locks' queues as the CLI sees them. A waiter's ticket is a Lease of its own beside the lock's
 * (see `sdk/ticket.ts`): it carries the managed-by label like a lock, so every list the CLI makes
 * holds both, and the tickets are set apart here: never shown as locks, counted under the lock they
 * wait for (annotation `kube-locks.io/waits-for`, label `kube-locks.io/queue-for`, same namespace).
 */

export function splitTickets(items: readonly Item[]): { locks: Item[]; tickets: Item[] } {
  const locks: Item[] = []
  const tickets: Item[] = []
  for (const item of items) (isTicket(item.view) ? tickets : locks).push(item)
  return { locks, tickets }
}

/** The tickets in view, by the lock they wait for. */
export class Queues {
  /** `namespace/lock lease name` → ticket name → ticket. */
  readonly #byLock = new Map<string, Map<string, Item>>()

  constructor(tickets: Iterable<Item> = []) {
    for (const ticket of tickets) this.set(ticket)
  }

  /** The key of a lock's queue: its namespace and Lease name. */
  keyOf(lock: Item): string {
    return `${lock.view.namespace}/${lock.view.name}`
  }

  /** Adds or replaces a ticket; the key of the lock it waits for, `undefined` if it is no ticket. */
  set(ticket: Item): string | undefined {
    const key = this.#lockKey(ticket)
    if (key === undefined) return undefined
    let queue = this.#byLock.get(key)
    if (queue === undefined) {
      queue = new Map()
      this.#byLock.set(key, queue)
    }
    queue.set(ticket.view.name, ticket)
    return key
  }

  /** Forgets a ticket; the key of the lock it waited for, `undefined` if it is no ticket. */
  delete(ticket: Item): string | undefined {
    const key = this.#lockKey(ticket)
    if (key === undefined) return undefined
    const queue = this.#byLock.get(key)
    queue?.delete(ticket.view.name)
    if (queue?.size === 0) this.#byLock.delete(key)
    return key
  }

  /** The waiters of `lock`, first in line first; tickets that name no waiter are left out. */
  of(lock: Item): Item[] {
    const queue = this.#byLock.get(this.keyOf(lock))
    if (queue === undefined) return []
    return [...queue.values()]
      .filter((ticket) => isWaiting(ticket.view) && isTicketOf(ticket.view, lock.view.name))
      .sort((a, b) => compareTickets(a.view, b.view))
  }

  count(lock: Item): number {
    return this.of(lock).length
  }

  #lockKey(ticket: Item): string | undefined {
    const lease = ticketLock(ticket.view)
    return lease === undefined ? undefined : `${ticket.view.namespace}/${lease}`
  }
}
