import { LIMIT_ANNOTATION, LOCK_NAME_ANNOTATION, MANAGED_BY_LABEL, MANAGED_BY_VALUE } from './constants.ts'
import {
  LeaseConflictError,
  LeaseNotManagedError,
  LockModeConflictError,
  LockUnavailableError,
} from './errors.ts'
import type { LeaseObservation } from './expiry.ts'
import { observe } from './expiry.ts'
import { discardIfHeldBy, discardRecord } from './held-lock.ts'
import type { HolderFacts, HolderVerdict } from './holders.ts'
import {
  describeMode,
  HolderSightings,
  holderDraft,
  holderSelector,
  isHolderRecord,
  isHolderRecordOf,
  judgeHolders,
  modeAnnotations,
} from './holders.ts'
import type { LeaseRecord } from './lease-record.ts'
import { freedRecord, isManaged } from './lease-record.ts'
import type { HolderMode } from './options.ts'
import { compareResourceVersions } from './resource-version.ts'
import { isTicket, isTicketOf, queueSelector, renewedTicket } from './ticket.ts'
import { backoff, Wakeup, withRequestDeadline } from './timers.ts'

/**
 * The acquire loop of a shared or semaphore holder, and the wait of an exclusive acquirer for such
 * holders to finish. The decisions are {@link judgeHolders}'s (see `sdk/holders.ts` for the protocol);
 * this file does the reads and writes they ask for, and the waiting between them.
 *
 * Waiting costs no reads: the shared watch wakes a waiter, which judges the hub's view first and reads
 * (consistently) only when that view says it might get in. So when one holder leaves, the waiters that
 * cannot get in stay asleep.
 */

/**
 * A record written less than this long ago (or a quarter of its validity, if shorter) counts as fresh:
 * a check right after it needs no renewal first.
 */
export const RECORD_FRESH_MS = 1000

import type { HolderWaitContext } from './holder-wait.ts'

export interface HolderAcquireContext extends HolderWaitContext {
  readonly mode: HolderMode
  readonly identity: string
  readonly durationSeconds: number
  /** Milliseconds a record stays valid after its last write was sent (`expires` − safety margin). */
  readonly validForMs: number
  /** The holder annotations of this process (service, pod, node). */
  readonly annotations: Readonly<Record<string, string>>
  /** Whether exclusive waiters in the lock's fair line come first. */
  readonly fair: boolean
}

/** The record of a holder: the lease, and when its last successful write was sent. */
export interface OwnRecord {
  readonly record: LeaseRecord
  readonly sentAt: number
}

export interface HolderAcquired extends OwnRecord {
  /**
   * The larger of the record's resourceVersion and that of the lock's lease as the passing check read
   * it. An exclusive holder that was in before the check wrote the lease before that read, so the
   * token is greater than its; one that comes later writes the lease after it, so its token is greater.
   */
  readonly fencingToken: string
}

/** Acquires a shared or semaphore hold on `ctx.lockName`: resolves with the holder's own record. */
export async function acquireHolder(ctx: HolderAcquireContext): Promise<HolderAcquired> {
  return new HolderAcquisition(ctx).run()
}

class HolderAcquisition {
  readonly #ctx: HolderAcquireContext
  readonly #records = new HolderSightings()
  readonly #tickets = new HolderSightings()
  readonly #wakeup = new Wakeup()
  #lease: LeaseObservation | undefined
  #own: OwnRecord | undefined
  /**
   * Records of this acquisition other than `#own`: creates that may have applied without an answer
   * (by name, until a list shows them) and records a list showed naming this acquisition. They do not
   * count for this acquisition (it is not waiting behind itself), and are deleted after the next
   * successful check and before the call ends.
   */
  readonly #strays = new Map<string, LeaseRecord | undefined>()
  #failures = 0
  /** Subscriptions to the watch, made once this acquisition first has to wait. */
  readonly #stops: (() => void)[] = []

  constructor(ctx: HolderAcquireContext) {
    this.#ctx = ctx
  }

  async run(): Promise<HolderAcquired> {
    let backedOff = false
    let stale = false
    try {
      for (;;) {
        const verdict = await this.#check(backedOff, stale)
        stale = false
        if (verdict === undefined) continue
        switch (verdict.kind) {
          case 'hold': {
            const own = this.#own
            const lease = this.#lease?.record
            if (own !== undefined && lease !== undefined && this.#now() < own.sentAt + this.#ctx.validForMs) {
              this.#own = undefined
              const [a, b] = [own.record.resourceVersion, lease.resourceVersion]
              return { ...own, fencingToken: compareResourceVersions(a, b) >= 0 ? a : b }
            }
            // The check outlasted the record's validity: renew it, then check again.
            stale = true
            continue
          }
          case 'announce':
            backedOff = false
            continue
          case 'mode-conflict':
            throw new LockModeConflictError({
              lockName: this.#ctx.lockName,
              namespace: this.#ctx.namespace,
              requested: describeMode(this.#ctx.mode),
              inUse: describeMode(verdict.inUse),
            })
          case 'mark':
            await this.#write(() => this.#mark())
            continue
          case 'free-expired':
            await this.#write(() => this.#freeExpired(verdict.lease))
            continue
          case 'back-off':
            if (this.#own !== undefined) await this.#discard()
            backedOff = true
            await this.#waitFor(verdict)
            continue
          case 'wait':
            await this.#waitFor(verdict)
            continue
        }
      }
    } finally {
      for (const stop of this.#stops) stop()
      this.#wakeup.dispose()
      if (this.#own !== undefined) await this.#discard()
      await this.#discardStrays()
    }
  }

  #now(): number {
    return this.#ctx.clock.now()
  }

  /**
   * Announces (or refreshes) this holder's record unless backed off, then reads the lock's lease, its
   * holder records and, if fair, its line, and judges them. `undefined`: a request failed; try again.
   */
  async #check(backedOff: boolean, stale: boolean): Promise<HolderVerdict | undefined> {
    // Backed off, the watch's view is enough to come back: the reads that count follow the record.
    if (backedOff && this.#hubVerdict()?.kind === 'announce') return { kind: 'announce' }
    try {
      if (!backedOff) {
        const freshMs = Math.min(RECORD_FRESH_MS, this.#ctx.validForMs / 4)
        if (this.#own === undefined) this.#own = await this.#announce()
        else if (stale || this.#now() - this.#own.sentAt >= freshMs) await this.#renew()
        if (this.#own === undefined) return undefined
      }
      const verdict = judgeHolders(await this.#read())
      this.#failures = 0
      await this.#discardStrays()
      return verdict
    } catch (error) {
      if (!(error instanceof LockUnavailableError)) throw error
      await this.#afterFailure(error)
      return undefined
    }
  }

  /** Consistent reads of everything a decision rests on; they start after this holder's last write. */
  async #read(): Promise<HolderFacts> {
    const { store, namespace, leaseName } = this.#ctx
    // The line is a matter of order, not of safety: the watch's view of it will do, when there is one.
    const known = this.#ctx.fair ? this.#ctx.hub.queue(leaseName)?.tickets : []
    // In parallel: each read only has to start after this holder's record was written.
    const [lease, records, tickets] = await Promise.all([
      this.#request((signal) => store.get(namespace, leaseName, { signal })),
      this.#request((signal) => store.list(namespace, { labelSelector: holderSelector(leaseName), signal })),
      known ??
        this.#request((signal) =>
          store.list(namespace, { labelSelector: queueSelector(leaseName), signal }),
        ).then((list) => list.items),
    ])
    if (lease !== undefined && (!isManaged(lease) || isTicket(lease) || isHolderRecord(lease))) {
      throw new LeaseNotManagedError({ leaseName, namespace, holder: lease.holderIdentity })
    }
    const now = this.#now()
    this.#lease = lease === undefined ? undefined : observe(this.#lease, lease, now)
    return this.#facts(
      this.#lease ?? 'absent',
      records.items.filter((r) => isHolderRecordOf(r, leaseName)),
      tickets.filter((t) => isTicketOf(t, leaseName)),
    )
  }

  #facts(
    lease: LeaseObservation | 'absent',
    records: readonly LeaseRecord[],
    tickets: readonly LeaseRecord[],
  ): HolderFacts {
    const now = this.#now()
    const ownName = this.#own?.record.name
    const others = records.filter((record) => {
      if (record.name === ownName || record.holderIdentity !== this.#ctx.identity) return true
      this.#strays.set(record.name, record)
      return false
    })
    return {
      mode: this.#ctx.mode,
      own: this.#own?.record,
      lease,
      records: this.#records.see(others, now),
      tickets: this.#tickets.see(tickets, now),
      leaseName: this.#ctx.leaseName,
      now,
      graceMs: this.#ctx.graceMs,
    }
  }

  /**
   * Sleeps until something could have changed the verdict: a change the watch delivers that the hub's
   * view says may let this holder in, the time the blocker could expire, this record's renewal, the
   * deadline (then the call fails), or a poll interval while the watch is failing.
   */
  async #waitFor(verdict: { readonly holder: string | undefined; readonly until: number }): Promise<void> {
    const { deadline, once, retryIntervalMs, hub } = this.#ctx
    if (once) throw this.#ctx.timedOut(verdict.holder)
    // A change between the last read and the subscription would be missed: check once more first.
    if (this.#subscribe()) return
    for (;;) {
      const now = this.#now()
      if (now >= deadline) throw this.#ctx.timedOut(verdict.holder)
      const renewAt =
        this.#own === undefined ? Number.POSITIVE_INFINITY : this.#own.sentAt + this.#renewEveryMs()
      const pollAt = hub.failing ? now + backoff(1, { baseMs: retryIntervalMs }) : Number.POSITIVE_INFINITY
      const until = Math.min(deadline, verdict.until, renewAt, pollAt)
      const notified = await this.#wakeup.sleep(until - now, this.#ctx.signals, true)
      if (this.#own !== undefined && this.#now() >= this.#own.sentAt + this.#renewEveryMs()) {
        await this.#write(() => this.#renew())
        if (this.#own === undefined) return
        // A renewal is no news: look again only if the watch's view says this waiter may get in.
        if (!this.#mayGetIn()) continue
        return
      }
      if (!notified || this.#mayGetIn()) return
    }
  }

  /** Subscribes to the changes that can matter, unless subscribed already; `true` if it just did. */
  #subscribe(): boolean {
    if (this.#stops.length > 0) return false
    const { hub, leaseName, fair } = this.#ctx
    const wake = () => this.#wakeup.notify()
    this.#stops.push(hub.subscribe(leaseName, wake), hub.subscribeHolders(leaseName, wake))
    if (fair) this.#stops.push(hub.subscribeQueue(leaseName, wake))
    return true
  }

  /** The verdict on the hub's view; `undefined` when the hub has none (not running, or unhealthy). */
  #hubVerdict(): HolderVerdict | undefined {
    const { hub, leaseName } = this.#ctx
    const lease = hub.lease(leaseName)
    const records = hub.holders(leaseName)
    const tickets = this.#ctx.fair ? hub.queue(leaseName)?.tickets : []
    if (lease === undefined || records === undefined || tickets === undefined) return undefined
    const observed = lease === 'absent' ? 'absent' : observe(this.#lease, lease, this.#now())
    return judgeHolders(this.#facts(observed, records, tickets))
  }

  /** Whether the hub's view says a check could let this holder in (or its view is unknown). */
  #mayGetIn(): boolean {
    const verdict = this.#hubVerdict()
    if (verdict === undefined) return true
    if (verdict.kind === 'wait') return false
    // A record kept while the exclusive holder is in would hold it up (it waits for every record it
    // listed): backing off is worth a check. Already backed off, there is nothing to do yet.
    if (verdict.kind === 'back-off') return this.#own !== undefined
    return true
  }

  /** Renewals of a waiting record: as often as a holder's (`expires / 3`). */
  #renewEveryMs(): number {
    return (this.#ctx.durationSeconds * 1000) / 3
  }

  async #announce(): Promise<OwnRecord | undefined> {
    const { store, namespace, leaseName, lockName, identity, mode, durationSeconds, annotations } = this.#ctx
    const draft = holderDraft({
      namespace,
      leaseName,
      lockName,
      identity,
      mode,
      durationSeconds,
      annotations,
      wallNow: this.#ctx.clock.wallNow(),
    })
    const sentAt = this.#now()
    try {
      const record = await this.#request((signal) => store.create(draft, { signal }), true)
      return { record, sentAt }
    } catch (error) {
      if (error instanceof LockUnavailableError && error.outcomeUnknown)
        this.#strays.set(draft.name, undefined)
      if (error instanceof LeaseConflictError) return undefined
      throw error
    }
  }

  /**
   * Renews this holder's record in place; if it was changed or deleted meanwhile, starts over. A record
   * is renewed in place only while its place is sure — until `expires − safetyMargin` after its last
   * write was sent: after that others may have passed it as gone, and keeping its place would let it in
   * beside those who passed it. Then it is deleted, and a new one joins at the back.
   */
  async #renew(): Promise<void> {
    const own = this.#own
    if (own === undefined) return
    const sentAt = this.#now()
    if (sentAt >= own.sentAt + this.#ctx.validForMs) {
      await this.#discard()
      return
    }
    try {
      const next = renewedTicket(own.record, this.#ctx.clock.wallNow())
      const record = await this.#request((signal) => this.#ctx.store.update(next, { signal }), true)
      this.#own = { record, sentAt }
    } catch (error) {
      if (!(error instanceof LeaseConflictError)) throw error
      // Judged expired and freed or deleted by someone (this process was paused), or a renewal whose
      // answer was lost applied: either way this place in line is not sure any more.
      this.#own = undefined
      await this.#discardUnsure(own.record.name)
    }
  }

  /** Puts the mark on the lock's lease: creates it free if absent, else adds the mark to the free lease. */
  async #mark(): Promise<void> {
    const { store, namespace, leaseName, lockName, mode } = this.#ctx
    const lease = this.#lease?.record
    const marks = modeAnnotations(mode)
    if (lease === undefined) {
      await this.#request(
        (signal) =>
          store.create(
            {
              namespace,
              name: leaseName,
              holderIdentity: undefined,
              leaseDurationSeconds: undefined,
              acquireTime: undefined,
              renewTime: undefined,
              leaseTransitions: 0,
              labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE },
              annotations: { [LOCK_NAME_ANNOTATION]: lockName, ...marks },
            },
            { signal },
          ),
        true,
      )
      return
    }
    const { [LIMIT_ANNOTATION]: _, ...kept } = lease.annotations
    await this.#request(
      (signal) => store.update({ ...lease, annotations: { ...kept, ...marks } }, { signal }),
      true,
    )
  }

  /** Frees the lock's lease, held by someone this process has seen unchanged past its duration. */
  async #freeExpired(lease: LeaseRecord): Promise<void> {
    const freed = freedRecord(lease, this.#ctx.clock.wallNow())
    await this.#request((signal) => this.#ctx.store.update(freed, { signal }), true)
    this.#ctx.logger.debug?.('freed an expired lock to take a shared hold', {
      lock: this.#ctx.lockName,
      namespace: this.#ctx.namespace,
      holder: lease.holderIdentity,
    })
  }

  /** A write whose compare-and-swap lost is simply followed by a fresh check. */
  async #write(send: () => Promise<void>): Promise<void> {
    try {
      await send()
    } catch (error) {
      if (error instanceof LeaseConflictError) return
      if (!(error instanceof LockUnavailableError)) throw error
      await this.#afterFailure(error)
    }
  }

  async #afterFailure(error: LockUnavailableError): Promise<void> {
    this.#failures++
    const delay = backoff(this.#failures, {
      baseMs: this.#ctx.retryIntervalMs,
      atLeastMs: error.retryAfterMs,
    })
    if (this.#now() + delay >= this.#ctx.deadline || this.#ctx.once) throw error
    await this.#wakeup.sleep(delay, this.#ctx.signals, false)
  }

  /** Deletes this holder's record (backing off, or giving up). Never throws. */
  async #discard(): Promise<void> {
    const own = this.#own
    if (own === undefined) return
    this.#own = undefined
    try {
      await discardRecord(this.#ctx.store, own.record, this.#ctx.requestTimeoutMs)
    } catch (error) {
      if (error instanceof LeaseConflictError) await this.#discardUnsure(own.record.name)
      else this.#warn('could not delete a holder record; it expires on its own', own.record.name, error)
    }
  }

  /** Deletes a record of this acquisition whose state is unknown, if it exists. Never throws. */
  async #discardUnsure(name: string): Promise<void> {
    const { store, namespace, identity, requestTimeoutMs } = this.#ctx
    try {
      await discardIfHeldBy(store, namespace, name, identity, requestTimeoutMs)
      this.#strays.delete(name)
    } catch (error) {
      this.#warn('could not delete a holder record; it expires on its own', name, error)
    }
  }

  /**
   * Deletes this acquisition's stray records: by their listed version (a conflict means someone freed
   * or changed it, so it no longer counts), or by name after a read. Never throws; what fails is kept
   * for the next try.
   */
  async #discardStrays(): Promise<void> {
    for (const [name, record] of [...this.#strays]) {
      if (record === undefined) {
        await this.#discardUnsure(name)
        continue
      }
      try {
        await discardRecord(this.#ctx.store, record, this.#ctx.requestTimeoutMs)
        this.#strays.delete(name)
      } catch (error) {
        if (error instanceof LeaseConflictError) this.#strays.delete(name)
        else this.#warn('could not delete a holder record; it expires on its own', name, error)
      }
    }
  }

  #warn(message: string, record: string, error: unknown): void {
    this.#ctx.logger.warn?.(message, {
      lock: this.#ctx.lockName,
      namespace: this.#ctx.namespace,
      record,
      error,
    })
  }

  /**
   * One request: a read is bounded by the call's deadline (a full request timeout with `timeout: 0`),
   * a write always gets a full request timeout, since only its answer tells whether it applied.
   */
  #request<T>(request: (signal: AbortSignal) => Promise<T>, write = false): Promise<T> {
    const { requestTimeoutMs, deadline, once, store, signals } = this.#ctx
    const left = deadline - this.#now()
    const ms = write || once ? requestTimeoutMs : Math.max(1, Math.min(requestTimeoutMs, left))
    return withRequestDeadline(request, {
      ms,
      server: store.server,
      signal: write ? undefined : AbortSignal.any([...signals]),
    })
  }
}
