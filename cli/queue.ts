import { compareTickets, isTicket, isTicketOf, isWaiting, ticketLock } from '../sdk/internal.ts'
import { ByLock } from './by-lock.ts'
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
export class Queues extends ByLock {
  constructor(tickets: Iterable<Item> = []) {
    super((ticket) => ticketLock(ticket.view), tickets)
  }

  /** The waiters of `lock`, first in line first; tickets that name no waiter are left out. */
  of(lock: Item): Item[] {
    return this.itemsOf(this.keyOf(lock))
      .filter((ticket) => isWaiting(ticket.view) && isTicketOf(ticket.view, lock.view.name))
      .sort((a, b) => compareTickets(a.view, b.view))
  }

  count(lock: Item): number {
    return this.of(lock).length
  }
}
