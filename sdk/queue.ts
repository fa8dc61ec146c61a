import { LeaseConflictError, LeaseNotFoundError, LockUnavailableError } from './errors.ts'
import type { LeaseObservation } from './expiry.ts'
import { expiresAt, observe } from './expiry.ts'
import type { LeaseRecord } from './lease-record.ts'
import type { LeaseStore } from './lease-store.ts'
import { defaultSafetyMargin } from './options.ts'
import { compareResourceVersions } from './resource-version.ts'
import type { TicketDraftOptions } from './ticket.ts'
import {
  compareTickets,
  isTicketOf,
  isWaiting,
  queueSelector,
  renewedTicket,
  ticketDraft,
  ticketPosition,
} from './ticket.ts'
import type { QueueNews, QueueSnapshot } from './watch-hub.ts'

/**
 * One fair acquisition's view of its lock's line, and its own ticket in it (see `sdk/ticket.ts` for
 * the format). Only the head of the line tries to take a released lock; everyone else sleeps on the
 * shared watch. The line is a matter of order, never of safety: taking the lock is the same
 * compare-and-swap on the lock's lease as without a line, so a stale or wrong view of the line can
 * only make a waiter wait longer or take its turn early, never make two holders valid.
 *
 * - Joining: a waiter that has to wait creates its ticket; the resourceVersion of that create is its
 *   place in line.
 * - Staying: it renews the ticket every `renewEveryMs`. Its place is sure only until
 *   `sentAt(last confirmed ticket write) + duration − margin` on its own clock: after that, others may
 *   have judged the ticket dead and let later waiters pass, so it never renews in place — it leaves
 *   and joins again at the back ({@link WaitLine.mustRejoin}).
 * - Others' tickets count until this process has seen them unchanged for their duration plus the
 *   grace (`observe` / `expiresAt`, the rule for leases): a waiter that died holds up the line for at
 *   most that long, and only while it is the head. A ticket naming the lock's current holder is skipped
 *   (its waiter got the lock and deletes it).
 * - Leaving: the waiter deletes its ticket when it acquires, times out or gives up (under its uid and
 *   resourceVersion); the controller deletes tickets nobody renews.
 */

/** A ticket renewal is due this fraction of its duration after the last confirmed write. */
export const TICKET_RENEW_RATIO = 0.5

export interface WaitLineOptions extends Omit<TicketDraftOptions, 'wallNow' | 'name'> {
  readonly store: LeaseStore
  readonly graceMs: number
  readonly now: () => number
  readonly wallNow: () => number
}

export interface OwnTicket {
  readonly record: LeaseRecord
  /** Monotonic time at which the last confirmed write of the ticket was sent. */
  readonly sentAt: number
}

export class WaitLine {
  readonly #options: WaitLineOptions
  readonly #tickets = new Map<string, LeaseObservation>()
  /** The resourceVersion of the newest snapshot applied: older ones are ignored. */
  #seenAt: string | undefined
  #own: OwnTicket | undefined
  /** The name of a create whose answer was lost: the ticket may exist. */
  #unconfirmed: { readonly name: string; readonly sentAt: number } | undefined

  constructor(options: WaitLineOptions) {
    this.#options = options
  }

  get own(): OwnTicket | undefined {
    return this.#own
  }

  get renewEveryMs(): number {
    return this.#options.durationSeconds * 1000 * TICKET_RENEW_RATIO
  }

  /** When the own ticket's next renewal is due; `Infinity` when not in line. */
  get renewDueAt(): number {
    return this.#own === undefined ? Number.POSITIVE_INFINITY : this.#own.sentAt + this.renewEveryMs
  }

  /** When the line next needs tending: joining at once when not in line, else the next renewal. */
  get dueAt(): number {
    return this.#own === undefined ? Number.NEGATIVE_INFINITY : this.renewDueAt
  }

  /**
   * Whether the view of the line is at least as new as the own ticket's create, and so shows every
   * ticket created before it. Always true when not in line.
   */
  get seesOwnJoin(): boolean {
    const own = this.#own?.record
    if (own === undefined) return true
    return this.#seenAt !== undefined && compareResourceVersions(this.#seenAt, ticketPosition(own)) >= 0
  }

  /** Until when the own place is sure (see the class comment); `-Infinity` when not in line. */
  get placeSureUntil(): number {
    if (this.#own === undefined) return Number.NEGATIVE_INFINITY
    const { durationSeconds } = this.#options
    return this.#own.sentAt + (durationSeconds - defaultSafetyMargin(durationSeconds)) * 1000
  }

  /** True when the own ticket was not confirmed in time: leave, and join again at the back. */
  mustRejoin(now: number): boolean {
    return this.#own !== undefined && now >= this.placeSureUntil
  }

  /** Applies what the watch (or a list) knows of the line; a snapshot older than one applied is ignored. */
  update(snapshot: QueueSnapshot): void {
    const { resourceVersion } = snapshot
    if (
      this.#seenAt !== undefined &&
      resourceVersion !== '' &&
      compareResourceVersions(resourceVersion, this.#seenAt) < 0
    ) {
      return
    }
    if (resourceVersion !== '') this.#seenAt = resourceVersion
    const now = this.#options.now()
    const seen = new Set<string>()
    for (const ticket of snapshot.tickets) {
      if (!isTicketOf(ticket, this.#options.leaseName)) continue
      seen.add(ticket.name)
      this.#tickets.set(ticket.name, observe(this.#tickets.get(ticket.name), ticket, now))
    }
    for (const name of [...this.#tickets.keys()]) if (!seen.has(name)) this.#tickets.delete(name)
  }

  /**
   * Applies one ticket change the watch saw. Returns whether it may let this waiter move up: a ticket
   * ahead of it left, stopped naming a waiter or changed its place. A renewal and a new arrival (always
   * behind everyone in line) return false, so the waiters of a long line are not woken by each other's
   * renewals.
   */
  apply(change: Extract<QueueNews, { kind: 'ticket' }>): boolean {
    const { ticket, deleted, resourceVersion } = change
    if (!isTicketOf(ticket, this.#options.leaseName)) return false
    if (this.#seenAt !== undefined && compareResourceVersions(resourceVersion, this.#seenAt) < 0) return false
    this.#seenAt = resourceVersion
    const known = this.#tickets.get(ticket.name)
    if (deleted) this.#tickets.delete(ticket.name)
    else this.#tickets.set(ticket.name, observe(known, ticket, this.#options.now()))
    if (known === undefined) return false
    const own = this.#own?.record
    if (own !== undefined && compareTickets(known.record, own) >= 0) return false
    return (
      deleted ||
      ticket.holderIdentity !== known.record.holderIdentity ||
      ticketPosition(ticket) !== ticketPosition(known.record)
    )
  }

  /** Reads the line from the store (a consistent list of the lock's tickets). */
  async read(signal?: AbortSignal): Promise<void> {
    const { store, namespace, leaseName } = this.#options
    const list = await store.list(namespace, { labelSelector: queueSelector(leaseName), signal })
    this.update({ tickets: list.items, resourceVersion: list.resourceVersion })
  }

  /**
   * The waiters ahead of this one that still count at `now`, when the first of them could stop
   * counting (the earliest time to look again), and how many ahead were `passed` as gone (unchanged
   * for their duration plus the grace, as this waiter saw them). Before joining, every waiting ticket
   * is ahead. Pass a waiter as gone only on a fresh {@link read}: a watch that lags may not have
   * shown its latest renewal yet.
   */
  ahead(
    now: number,
    lockHolder: string | undefined,
  ): { readonly count: number; readonly until: number; readonly passed: number } {
    const own = this.#own?.record
    let count = 0
    let passed = 0
    let until = Number.POSITIVE_INFINITY
    for (const observation of this.#tickets.values()) {
      const ticket = observation.record
      if (own !== undefined && (ticket.name === own.name || compareTickets(ticket, own) >= 0)) continue
      if (!isWaiting(ticket) || ticket.holderIdentity === lockHolder) continue
      const deadAt = expiresAt(observation, this.#options.graceMs)
      if (now >= deadAt) {
        passed++
        continue
      }
      count++
      until = Math.min(until, deadAt)
    }
    return { count, until, passed }
  }

  /**
   * Creates the own ticket (at the back of the line). A create whose answer was lost is looked up
   * first: the ticket it made, if any, is this waiter's. Throws `LockUnavailableError` when the API
   * failed; the waiter is then not (yet) in line.
   */
  async join(signal?: AbortSignal): Promise<void> {
    const { store, namespace } = this.#options
    const unconfirmed = this.#unconfirmed
    if (unconfirmed !== undefined) {
      const found = await store.get(namespace, unconfirmed.name, { signal })
      this.#unconfirmed = undefined
      if (found !== undefined && found.holderIdentity === this.#options.identity) {
        this.#adopt(found, unconfirmed.sentAt)
        return
      }
    }
    for (let attempt = 0; ; attempt++) {
      const draft = ticketDraft({ ...this.#options, wallNow: this.#options.wallNow() })
      const sentAt = this.#options.now()
      try {
        this.#adopt(await store.create(draft, { signal }), sentAt)
        return
      } catch (error) {
        // A name taken already: 80 random bits make this someone's deliberate choice; pick another.
        if (error instanceof LeaseConflictError && attempt < 2) continue
        if (error instanceof LockUnavailableError && error.outcomeUnknown) {
          this.#unconfirmed = { name: draft.name, sentAt }
        }
        throw error
      }
    }
  }

  /**
   * Renews the own ticket (compare-and-swap). A ticket that is gone or was changed by someone else (the
   * controller deleted it) leaves the waiter out of line: it joins again. A renewal answered after
   * {@link placeSureUntil} keeps no place either ({@link mustRejoin}). Throws `LockUnavailableError`
   * when the API failed; the place stays sure until {@link placeSureUntil}.
   */
  async renew(signal?: AbortSignal): Promise<void> {
    const own = this.#own
    if (own === undefined) return
    const sentAt = this.#options.now()
    try {
      const record = await this.#options.store.update(renewedTicket(own.record, this.#options.wallNow()), {
        signal,
      })
      if (this.#own !== own) return
      // Answered after the place stopped being sure: others may have passed the ticket meanwhile, so
      // the answer must not restore the place. The record is kept (to delete it by its new version),
      // the old send time too, so the waiter leaves and joins again at the back.
      const late = this.#options.now() >= this.placeSureUntil
      this.#adopt(record, late ? own.sentAt : sentAt)
    } catch (error) {
      if (error instanceof LeaseConflictError || error instanceof LeaseNotFoundError) {
        this.#own = undefined
        return
      }
      throw error
    }
  }

  /**
   * Deletes the own ticket, bounded by `signal`. Never throws: a ticket left behind stops counting once
   * others have seen it unrenewed for its duration, and the controller deletes it.
   */
  async leave(signal?: AbortSignal): Promise<void> {
    const own = this.#own
    this.#own = undefined
    const { store, namespace } = this.#options
    try {
      if (own !== undefined) {
        const { uid, resourceVersion } = own.record
        await store.delete(namespace, own.record.name, { uid, resourceVersion }, { signal })
      } else if (this.#unconfirmed !== undefined) {
        const { name } = this.#unconfirmed
        this.#unconfirmed = undefined
        const found = await store.get(namespace, name, { signal })
        if (found !== undefined && found.holderIdentity === this.#options.identity) {
          await store.delete(namespace, name, found, { signal })
        }
      }
    } catch {
      // Judged dead by everyone after its duration; deleted by the controller.
    }
  }

  #adopt(record: LeaseRecord, sentAt: number): void {
    this.#own = { record, sentAt }
    this.#tickets.set(record.name, observe(this.#tickets.get(record.name), record, this.#options.now()))
  }
}
