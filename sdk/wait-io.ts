import type { Clock, Logger } from './clock.ts'
import { LockUnavailableError } from './errors.ts'
import type { LeaseObservation } from './expiry.ts'
import type { WaitLine } from './queue.ts'
import type { Wakeup } from './timers.ts'
import { backoff, withRequestDeadline } from './timers.ts'
import type { LeaseNews } from './wait-step.ts'
import type { HubEvent, QueueNews, QueueSnapshot } from './watch-hub.ts'
import { isNewer } from './watch-hub.ts'

/**
 * What the watch delivered for one waiter since its last look: the newest lease event, whether the
 * line changed in a way that matters, and whether the watch was unhealthy meanwhile. A delivery wakes
 * the waiter, unless it waits in line behind others who still count: then no change of the lock or of
 * the line lets it take the lock, and it sleeps on (its timers still wake it when the first one ahead
 * could stop counting). So a release wakes the first in line, not the whole line. {@link take} hands
 * the lot to the wait step and starts afresh.
 */
export class WaitInbox {
  readonly #wakeup: Wakeup
  readonly #line: WaitLine | undefined
  readonly #now: () => number
  #news: LeaseNews | undefined
  /** The lock's holder as the newest lease event named it: its ticket does not count as ahead. */
  #holder: { readonly identity: string | undefined; readonly resourceVersion: string } | undefined
  #lineNews = false
  /** The watch reported itself unhealthy (or was failing when subscribed) since the last look. */
  unhealthy = false

  constructor(wakeup: Wakeup, line: WaitLine | undefined, now: () => number) {
    this.#wakeup = wakeup
    this.#line = line
    this.#now = now
  }

  readonly onHub = (event: HubEvent): void => {
    if (event.type === 'health') {
      this.unhealthy ||= !event.healthy
      this.#wakeup.notify()
      return
    }
    if (this.#news === undefined || isNewer(event.resourceVersion, this.#news.resourceVersion)) {
      this.#news = event
    }
    // Kept apart from the news, which each look clears: a late replay must not bring back an older holder.
    if (isNewer(event.resourceVersion, this.#holder?.resourceVersion)) {
      this.#holder = { identity: event.lease?.holderIdentity, resourceVersion: event.resourceVersion }
    }
    if (!this.#othersAhead()) this.#wakeup.notify()
  }

  readonly onLine = (news: QueueNews): void => {
    const line = this.#line
    if (line === undefined) return
    if (news.kind === 'line') line.update(news)
    // A renewal or a later arrival: nobody ahead went away, so there is nothing to look at.
    else if (!line.apply(news) || this.#othersAhead()) return
    this.#lineNews = true
    this.#wakeup.notify()
  }

  /** Whether someone ahead in line still counts, so that this waiter cannot take the lock yet. */
  #othersAhead(): boolean {
    return this.#line !== undefined && this.#line.ahead(this.#now(), this.#holder?.identity).count > 0
  }

  take(): { news: LeaseNews | undefined; lineNews: boolean; unhealthy: boolean } {
    const taken = { news: this.#news, lineNews: this.#lineNews, unhealthy: this.unhealthy }
    this.#news = undefined
    this.#lineNews = false
    this.unhealthy = false
    return taken
  }
}

export interface LineTenderOptions {
  readonly lockName: string
  readonly namespace: string
  readonly server: string
  readonly clock: Clock
  readonly logger: Logger
  readonly requestTimeoutMs: number
  readonly retryIntervalMs: number
  /** The caller's signals: they abort a request to the line. */
  readonly signals: readonly AbortSignal[]
}

/** Keeps a waiter's place in line: joins, renews the ticket, or joins again at the back. */
export class LineTender {
  readonly #line: WaitLine
  readonly #options: LineTenderOptions
  /** When joining or renewing may be tried again after a failure. */
  #retryAt = Number.NEGATIVE_INFINITY

  constructor(line: WaitLine, options: LineTenderOptions) {
    this.#line = line
    this.#options = options
  }

  /**
   * Does what the time has come for, and returns when to tend the line next. A renewal answered after
   * the place's deadline keeps no place (rule R2, see wait-step.ts): `mustRejoin` then says to leave and
   * join again at the back. Failures of the API are retried with backoff; other errors are thrown.
   */
  async tend(): Promise<number> {
    const { clock, logger, signals } = this.#options
    const line = this.#line
    const now = clock.now()
    if (now >= this.#retryAt) {
      const signal = AbortSignal.any([...signals])
      try {
        if (line.mustRejoin(now)) await this.#bounded((s) => line.leave(s), signal)
        if (line.own === undefined) await this.#bounded((s) => line.join(s), signal)
        else if (now >= line.renewDueAt) await this.#bounded((s) => line.renew(s), signal)
        this.#retryAt = Number.NEGATIVE_INFINITY
      } catch (error) {
        if (!(error instanceof LockUnavailableError)) throw error
        const delay = backoff(1, { baseMs: this.#options.retryIntervalMs, atLeastMs: error.retryAfterMs })
        this.#retryAt = clock.now() + delay
        logger.debug?.('could not join or renew a place in line; retrying', {
          lock: this.#options.lockName,
          namespace: this.#options.namespace,
          error,
        })
      }
    }
    return Math.max(this.#retryAt, line.dueAt)
  }

  #bounded<T>(request: (signal: AbortSignal) => Promise<T>, signal: AbortSignal): Promise<T> {
    return withRequestDeadline(request, {
      ms: this.#options.requestTimeoutMs,
      server: this.#options.server,
      signal,
    })
  }
}

/**
 * A fair waiter's knowledge of its line: taken from the watch when it runs, otherwise read beside the
 * first read of the lease (and after every poll), kept current by the watch after that.
 */
export class LineKnowledge {
  readonly #line: WaitLine
  readonly #known: () => QueueSnapshot | undefined
  /** Reads the line afresh within the time left; never throws (see `WaitLine.read`). */
  readonly #readFresh: () => Promise<void>
  readonly #now: () => number
  #reading: Promise<void> | undefined

  constructor(
    line: WaitLine,
    options: {
      readonly known: () => QueueSnapshot | undefined
      readonly readFresh: () => Promise<void>
      readonly now: () => number
    },
  ) {
    this.#line = line
    this.#known = options.known
    this.#readFresh = options.readFresh
    this.#now = options.now
  }

  /** Starts learning the line anew: from the watch's snapshot if it has one, otherwise by a read. */
  refresh(): void {
    const known = this.#known()
    if (known !== undefined) this.#line.update(known)
    else this.#reading = this.#readFresh()
  }

  /**
   * The acquire step's `mayTake`: whether this waiter is first in line for a lock held by `holder`
   * (or free). Rule R1 of the line (see wait-step.ts): passing waiters as gone, or deciding on a view
   * older than the own ticket (which may miss a waiter that joined just before), only on a fresh read,
   * which shows every ticket and any renewal the watch has not delivered yet. A read that fails leaves
   * the last view to decide: order gives way to progress, and the taking write is a compare-and-swap
   * either way.
   */
  readonly mayTake = async (view: 'absent' | LeaseObservation): Promise<boolean> => {
    await this.#reading
    const line = this.#line
    const holder = view === 'absent' ? undefined : view.record.holderIdentity
    const ahead = line.ahead(this.#now(), holder)
    if (ahead.count > 0) return false
    if (ahead.passed === 0 && line.seesOwnJoin) return true
    await this.#readFresh()
    return line.ahead(this.#now(), holder).count === 0
  }
}
