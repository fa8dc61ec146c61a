import type { AcquireState, LeaseView, StepResult } from './acquire-step.ts'
import { forgetView, INITIAL_STATE } from './acquire-step.ts'
import type { LockUnavailableError } from './errors.ts'
import type { LeaseObservation } from './expiry.ts'
import { observe } from './expiry.ts'
import type { LeaseRecord } from './lease-record.ts'
import { backoff, jitter } from './timers.ts'
import { isNewer } from './watch-hub.ts'

/**
 * The wait loop of `acquire()` as a pure function: (state, observation) → (next state, action). The
 * shell in `locks.ts` performs the action — an acquire step, a sleep, a look at what the watch and the
 * line delivered — and feeds back what it saw; this function makes every decision in between, so a
 * table of cases covers the loop the way one covers {@link acquireStep}.
 *
 * The loop in words: attempt (one {@link acquireStep}); on a held lock (or others ahead in line) watch
 * until the lease or the line changes, the holder's lease would expire, the first waiter ahead could
 * stop counting, a poll is due while the watch is unhealthy, or the deadline passes; then attempt
 * again. A lost compare-and-swap is tried again at once, then with a short backoff; an API failure with
 * the full backoff; `timeout: 0` is one attempt and never waits.
 *
 * Order of a fair lock rests on two rules of the line (docs/guarantees.md, "Waiting in line";
 * model/fair-queue.pml), which this loop keeps by never deciding about the line itself:
 * - R1: a waiter ahead is passed as gone only on a fresh read of the line that shows its ticket
 *   unchanged for its duration plus grace. Line news and the moment a waiter ahead could stop counting
 *   only lead to another attempt, whose `mayTake` reads the line afresh before it passes anyone.
 * - R2: a ticket renewal answered after the place's deadline does not restore the place: the shell
 *   tends the line before every look, and joins again at the back when `WaitLine.mustRejoin` says so.
 * Exclusion never rests on the line: every taking write is a compare-and-swap in the acquire step.
 */

/** What the loop is doing; each phase is left by the observation of the action it asked for. */
export type WaitPhase =
  /** An acquire step was asked for. */
  | { readonly name: 'attempting' }
  /** The lease was taken: the shell holds it and reports whether it arrived still valid. */
  | { readonly name: 'holding' }
  /** Sleeping a backoff after a fruitless attempt or a failure; no notification ends it. */
  | { readonly name: 'backing-off' }
  /** Held by someone else (or others ahead in line): watching for a reason to attempt again. */
  | {
      readonly name: 'watching'
      /** When the holder's lease counts as expired on this process's clock. */
      readonly takeOverAt: number
      /** When the first waiter ahead in line (if any) could stop counting. */
      readonly lineChangesAt: number
    }

export interface WaitState {
  readonly phase: WaitPhase
  /** What the acquire step knows of the lease. */
  readonly acquire: AcquireState
  /** The failure of the latest attempt, if it failed: what a deadline reached meanwhile reports. */
  readonly lastError: LockUnavailableError | undefined
  /** Attempts in a row that failed on the API: they set the backoff. */
  readonly failures: number
  /** Attempts in a row that wrote nothing useful (lost compare-and-swaps, locks learned too late). */
  readonly fruitless: number
  /**
   * Set when the watch was unhealthy at any time since the last poll: a hub that keeps failing flips
   * between states, and each flip must not postpone the poll.
   */
  readonly pollWanted: boolean
  /** When the lease is read again although the watch told nothing (only while `pollWanted`). */
  readonly nextPollAt: number | undefined
}

export interface WaitConfig {
  /** Monotonic time at which the caller's `timeout` ends. */
  readonly deadline: number
  /** `timeout: 0`: one attempt, no waiting. */
  readonly once: boolean
  readonly retryIntervalMs: number
  /** @default Math.random */
  readonly random?: (() => number) | undefined
  /** The error of a wait that timed out, naming the holder last seen. */
  readonly timedOut: (holder: string | undefined) => Error
  /** The error of an `expires` too short to outlast one round trip (measured) and the safety margin. */
  readonly tooShort: (roundTripMs: number) => Error
}

/** The latest lease event of the watch since the last look. */
export interface LeaseNews {
  readonly lease: LeaseRecord | undefined
  readonly resourceVersion: string
}

export type WaitEvent =
  /** The attempt could not start: no time is left for a read. */
  | { readonly type: 'out-of-time' }
  /** An acquire step ended. `lineChangesAt`: see {@link WaitPhase} (infinite without a line). */
  | {
      readonly type: 'attempted'
      readonly now: number
      readonly result: StepResult
      readonly lineChangesAt: number
    }
  /**
   * The lease that was taken had passed its deadline on arrival, and was handed back (and the shell
   * took a fresh identity: if the hand-back failed, the old lease must look like anyone else's).
   */
  | {
      readonly type: 'arrived-late'
      readonly now: number
      readonly sentAt: number
      readonly readBack: boolean
    }
  /** What the watch and the line delivered since the last look (the line tended first). */
  | {
      readonly type: 'looked'
      readonly now: number
      readonly news: LeaseNews | undefined
      /** Somebody ahead in line went away (or the line was read anew). */
      readonly lineNews: boolean
      /** The watch reported itself unhealthy since the last look (or was failing when subscribed). */
      readonly unhealthy: boolean
      /** When the line must be tended next: a ticket to renew, a join to retry (infinite without a line). */
      readonly lineAt: number
    }
  /** A sleep ended: by a notification, or when its time came. */
  | { readonly type: 'slept'; readonly now: number; readonly notified: boolean; readonly hubFailing: boolean }

export type WaitAction =
  /** Run one acquire step (reading the line anew first, for a fair lock, when `readLine`). */
  | { readonly kind: 'attempt'; readonly readLine: boolean }
  /** The lease is this acquisition's: hold it, and report `arrived-late` if it is already past its deadline. */
  | {
      readonly kind: 'hold'
      readonly record: LeaseRecord
      readonly sentAt: number
      readonly readBack: boolean
    }
  /** Subscribe (once), tend the line, and report what arrived. */
  | { readonly kind: 'look' }
  /** Sleep until the monotonic time `until`; a notification ends it early only when `wake`. */
  | { readonly kind: 'sleep'; readonly until: number; readonly wake: boolean }
  /** Give up with `error`. */
  | { readonly kind: 'fail'; readonly error: unknown }

export interface WaitTransition {
  readonly state: WaitState
  readonly action: WaitAction
}

/** The first transition: attempt at once, with the line read beside the first read of the lease. */
export function startWait(previous: LeaseObservation | undefined): WaitTransition {
  return {
    state: {
      phase: { name: 'attempting' },
      acquire: { ...INITIAL_STATE, previous },
      lastError: undefined,
      failures: 0,
      fruitless: 0,
      pollWanted: false,
      nextPollAt: undefined,
    },
    action: { kind: 'attempt', readLine: true },
  }
}

export function waitStep(config: WaitConfig, state: WaitState, event: WaitEvent): WaitTransition {
  switch (event.type) {
    case 'out-of-time':
      return fail(state, state.lastError ?? config.timedOut(holderOf(state.acquire.view)))
    case 'attempted':
      return attempted(config, state, event.result, event.now, event.lineChangesAt)
    case 'arrived-late':
      // Straight from its own write: `expires` cannot outlast a round trip, and trying again would
      // only spin. Learned late, from a read after a write whose answer was lost: try again.
      if (!event.readBack) return fail(state, config.tooShort(event.now - event.sentAt))
      if (config.once) return fail(state, config.timedOut(undefined))
      return backOff(config, { ...state, fruitless: state.fruitless + 1 }, event.now, state.fruitless + 1, 10)
    case 'looked':
      return looked(config, state, event)
    case 'slept':
      return slept(config, state, event)
  }
}

function attempted(
  config: WaitConfig,
  state: WaitState,
  result: StepResult,
  now: number,
  lineChangesAt: number,
): WaitTransition {
  if (result.kind === 'acquired') {
    // Whatever was pending is settled: this acquisition holds the lease now.
    return {
      state: { ...state, phase: { name: 'holding' }, acquire: INITIAL_STATE },
      action: { kind: 'hold', record: result.record, sentAt: result.sentAt, readBack: result.readBack },
    }
  }
  const next = { ...state, acquire: result.state }
  switch (result.kind) {
    case 'too-slow':
      return fail(next, config.tooShort(result.roundTripMs))
    case 'conflict': {
      // A lost compare-and-swap is the answer of a single attempt.
      if (config.once) return fail(next, config.timedOut(holderOf(next.acquire.view)))
      // Someone else wrote first: read again at once, but not in a tight loop.
      const fruitless = state.fruitless + 1
      if (fruitless === 1) return attempt({ ...next, fruitless })
      return backOff(config, { ...next, fruitless }, now, fruitless - 1, 10)
    }
    case 'unavailable': {
      const failures = state.failures + 1
      const failed = { ...next, lastError: result.error, failures }
      if (config.once || now >= config.deadline) return fail(failed, result.error)
      return backOff(config, failed, now, failures, 1, result.error.retryAfterMs)
    }
    case 'held':
    case 'queued': {
      const waiting: WaitState = {
        ...next,
        lastError: undefined,
        failures: 0,
        fruitless: 0,
        phase: {
          name: 'watching',
          takeOverAt: result.kind === 'held' ? result.expiresAt : Number.POSITIVE_INFINITY,
          lineChangesAt,
        },
      }
      if (config.once) return fail(waiting, config.timedOut(holderOf(waiting.acquire.view)))
      return { state: waiting, action: { kind: 'look' } }
    }
  }
}

function looked(
  config: WaitConfig,
  state: WaitState,
  event: Extract<WaitEvent, { type: 'looked' }>,
): WaitTransition {
  if (state.phase.name !== 'watching') throw new Error(`a look while ${state.phase.name}`)
  const { takeOverAt, lineChangesAt } = state.phase
  const { now, news } = event
  const view = state.acquire.view
  const seen = typeof view === 'object' ? view : undefined
  const pollWanted = state.pollWanted || event.unhealthy
  // Only news newer than what the last attempt acted on says something; older news is dropped.
  if (news !== undefined && isNewer(news.resourceVersion, seen?.record.resourceVersion)) {
    const next: LeaseView = news.lease === undefined ? 'absent' : observe(seen, news.lease, now)
    return attempt({ ...state, pollWanted, acquire: { ...state.acquire, view: next } })
  }
  // Somebody ahead went away, or may stop counting now: the attempt's `mayTake` decides (R1).
  if (event.lineNews) return attempt({ ...state, pollWanted })
  if (now >= config.deadline) return fail(state, config.timedOut(seen?.record.holderIdentity))
  if (now >= takeOverAt || now >= lineChangesAt) return attempt({ ...state, pollWanted })
  const nextPollAt = pollWanted
    ? (state.nextPollAt ?? now + jitter(config.retryIntervalMs, config.random))
    : state.nextPollAt
  const until = Math.min(
    config.deadline,
    takeOverAt,
    nextPollAt ?? Number.POSITIVE_INFINITY,
    lineChangesAt,
    event.lineAt,
  )
  return { state: { ...state, pollWanted, nextPollAt }, action: { kind: 'sleep', until, wake: true } }
}

function slept(
  config: WaitConfig,
  state: WaitState,
  event: Extract<WaitEvent, { type: 'slept' }>,
): WaitTransition {
  if (state.phase.name === 'backing-off') return attempt(state)
  if (state.phase.name !== 'watching') throw new Error(`a sleep while ${state.phase.name}`)
  const pollAt = state.nextPollAt ?? Number.POSITIVE_INFINITY
  // A poll reads the lease and the line again. At the deadline the next look reports the timeout.
  if (!event.notified && event.now >= pollAt && event.now < config.deadline) {
    return {
      state: {
        ...state,
        phase: { name: 'attempting' },
        acquire: forgetView(state.acquire),
        nextPollAt: undefined,
        pollWanted: event.hubFailing,
      },
      action: { kind: 'attempt', readLine: true },
    }
  }
  return { state, action: { kind: 'look' } }
}

function attempt(state: WaitState): WaitTransition {
  return { state: { ...state, phase: { name: 'attempting' } }, action: { kind: 'attempt', readLine: false } }
}

/**
 * Sleeps retry `attempt`'s backoff over `retryIntervalMs / divisor` (at least `atLeastMs`), never past
 * the deadline.
 */
function backOff(
  config: WaitConfig,
  state: WaitState,
  now: number,
  attempt: number,
  divisor: number,
  atLeastMs?: number,
): WaitTransition {
  const delay = backoff(attempt, {
    baseMs: config.retryIntervalMs / divisor,
    atLeastMs,
    random: config.random,
  })
  return {
    state: { ...state, phase: { name: 'backing-off' } },
    action: { kind: 'sleep', until: Math.min(now + delay, config.deadline), wake: false },
  }
}

function fail(state: WaitState, error: unknown): WaitTransition {
  return { state, action: { kind: 'fail', error } }
}

function holderOf(view: LeaseView): string | undefined {
  return typeof view === 'object' ? view.record.holderIdentity : undefined
}
