import { describe, expect, it } from 'vitest'
import type { AcquireState, StepResult } from './acquire-step.ts'
import { INITIAL_STATE } from './acquire-step.ts'
import { LeaseConflictError, LockUnavailableError } from './errors.ts'
import type { LeaseObservation } from './expiry.ts'
import type { LeaseRecord } from './lease-record.ts'
import type { WaitAction, WaitConfig, WaitEvent, WaitState } from './wait-step.ts'
import { startWait, waitStep } from './wait-step.ts'

const NOW = 50_000
const DEADLINE = 60_000
const RETRY = 1000

/** Errors stand for what the shell would raise: the table checks which one, and with what. */
const config: WaitConfig = {
  deadline: DEADLINE,
  once: false,
  retryIntervalMs: RETRY,
  // Jitter at its middle: every backoff is its undisturbed value.
  random: () => 0.5,
  timedOut: (holder) => new Error(`timed out; holder ${holder}`),
  tooShort: (roundTripMs) => new Error(`too short; round trip ${roundTripMs}`),
}
const once: WaitConfig = { ...config, once: true }

function lease(overrides: Partial<LeaseRecord> = {}): LeaseRecord {
  return {
    namespace: 'ns',
    name: 'orders',
    uid: 'uid-1',
    resourceVersion: '900719925474099300',
    holderIdentity: 'other_1_aaaa',
    leaseDurationSeconds: 20,
    acquireTime: '2030-01-01T00:00:00.000000Z',
    renewTime: '2030-01-01T00:00:00.000000Z',
    leaseTransitions: 3,
    labels: { 'app.kubernetes.io/managed-by': 'kube-locks' },
    annotations: {},
    creationTimestamp: '2030-01-01T00:00:00Z',
    ...overrides,
  }
}

const seen: LeaseObservation = { record: lease(), firstSeenAt: 40_000 }
const heldView: AcquireState = { view: seen, pendingSentAt: undefined }
const unavailable = (retryAfterMs?: number) =>
  new LockUnavailableError({
    server: 'https://api',
    problem: retryAfterMs === undefined ? 'answered 503' : 'answered 429',
    outcomeUnknown: false,
    ...(retryAfterMs === undefined ? {} : { status: 429, retryAfterMs }),
  })
const conflict = new LeaseConflictError({ reason: 'Conflict', leaseName: 'orders', namespace: 'ns' })

function waitState(overrides: Partial<WaitState> = {}): WaitState {
  return { ...startWait(undefined).state, ...overrides }
}
const watching = (overrides: Partial<WaitState> = {}, takeOverAt = 55_000, lineChangesAt = Infinity) =>
  waitState({
    acquire: heldView,
    phase: { name: 'watching', takeOverAt, lineChangesAt },
    ...overrides,
  })
const attempted = (result: StepResult, now = NOW, lineChangesAt = Infinity): WaitEvent => ({
  type: 'attempted',
  now,
  result,
  lineChangesAt,
})
const looked = (overrides: Partial<Extract<WaitEvent, { type: 'looked' }>> = {}): WaitEvent => ({
  type: 'looked',
  now: NOW,
  news: undefined,
  lineNews: false,
  unhealthy: false,
  lineAt: Infinity,
  ...overrides,
})
const slept = (notified: boolean, now = NOW, hubFailing = false): WaitEvent => ({
  type: 'slept',
  now,
  notified,
  hubFailing,
})
const failsWith = (message: string) => (action: WaitAction) => {
  expect(action.kind).toBe('fail')
  expect(String((action as { error: unknown }).error)).toContain(message)
}

interface Case {
  readonly name: string
  readonly config?: WaitConfig
  readonly state: WaitState
  readonly event: WaitEvent
  readonly action: WaitAction | ((action: WaitAction) => void)
  readonly next?: (state: WaitState) => void
}

const cases: Case[] = [
  // ---- after an attempt ----
  {
    name: 'acquired: hold it, and nothing is pending any more',
    state: waitState({ acquire: { view: 'unknown', pendingSentAt: 123 } }),
    event: attempted({ kind: 'acquired', record: lease(), sentAt: 49_000, readBack: true }),
    action: { kind: 'hold', record: lease(), sentAt: 49_000, readBack: true },
    next: (s) => {
      expect(s.acquire).toBe(INITIAL_STATE)
      expect(s.phase.name).toBe('holding')
    },
  },
  {
    name: 'a read slower than the lock stays valid: fail, naming the round trip',
    state: waitState(),
    event: attempted({ kind: 'too-slow', state: heldView, roundTripMs: 700 }),
    action: failsWith('round trip 700'),
  },
  {
    name: 'a first lost compare-and-swap: read again at once',
    state: waitState(),
    event: attempted({ kind: 'conflict', state: INITIAL_STATE, error: conflict }),
    action: { kind: 'attempt', readLine: false },
    next: (s) => expect(s.fruitless).toBe(1),
  },
  {
    name: 'a second lost compare-and-swap in a row: a tenth of the retry interval',
    state: waitState({ fruitless: 1 }),
    event: attempted({ kind: 'conflict', state: INITIAL_STATE, error: conflict }),
    action: { kind: 'sleep', until: NOW + RETRY / 10, wake: false },
    next: (s) => expect(s.phase.name).toBe('backing-off'),
  },
  {
    name: 'lost compare-and-swaps back off doubling, at most 8 times',
    state: waitState({ fruitless: 9 }),
    event: attempted({ kind: 'conflict', state: INITIAL_STATE, error: conflict }),
    action: { kind: 'sleep', until: NOW + (RETRY / 10) * 8, wake: false },
  },
  {
    name: 'timeout 0: a lost compare-and-swap is the answer',
    config: once,
    state: waitState(),
    event: attempted({ kind: 'conflict', state: INITIAL_STATE, error: conflict }),
    action: failsWith('timed out; holder undefined'),
  },
  {
    name: 'an API failure: back off by the retry interval, remembering the error',
    state: waitState(),
    event: attempted({ kind: 'unavailable', state: INITIAL_STATE, error: unavailable() }),
    action: { kind: 'sleep', until: NOW + RETRY, wake: false },
    next: (s) => {
      expect(s.failures).toBe(1)
      expect(s.lastError).toBeInstanceOf(LockUnavailableError)
    },
  },
  {
    name: 'API failures in a row double the backoff',
    state: waitState({ failures: 2 }),
    event: attempted({ kind: 'unavailable', state: INITIAL_STATE, error: unavailable() }),
    action: { kind: 'sleep', until: NOW + 4 * RETRY, wake: false },
  },
  {
    name: "a throttled request waits at least the server's Retry-After",
    state: waitState(),
    event: attempted({ kind: 'unavailable', state: INITIAL_STATE, error: unavailable(3000) }),
    action: { kind: 'sleep', until: NOW + 3000, wake: false },
  },
  {
    name: 'no backoff sleeps past the deadline',
    state: waitState({ failures: 7 }),
    event: attempted({ kind: 'unavailable', state: INITIAL_STATE, error: unavailable() }, 55_000),
    action: { kind: 'sleep', until: DEADLINE, wake: false },
  },
  {
    name: 'an API failure at the deadline is the answer',
    state: waitState(),
    event: attempted({ kind: 'unavailable', state: INITIAL_STATE, error: unavailable() }, DEADLINE),
    action: failsWith('answered 503'),
  },
  {
    name: 'timeout 0: an API failure is the answer',
    config: once,
    state: waitState(),
    event: attempted({ kind: 'unavailable', state: INITIAL_STATE, error: unavailable() }),
    action: failsWith('answered 503'),
  },
  {
    name: 'held: watch until it expires, and forget the failures',
    state: waitState({ failures: 3, fruitless: 2, lastError: unavailable() }),
    event: attempted({ kind: 'held', state: heldView, observation: seen, expiresAt: 61_000 }, NOW, 58_000),
    action: { kind: 'look' },
    next: (s) => {
      expect(s.phase).toEqual({ name: 'watching', takeOverAt: 61_000, lineChangesAt: 58_000 })
      expect([s.failures, s.fruitless, s.lastError]).toEqual([0, 0, undefined])
    },
  },
  {
    name: 'timeout 0: held is the answer, naming the holder',
    config: once,
    state: waitState(),
    event: attempted({ kind: 'held', state: heldView, observation: seen, expiresAt: 61_000 }),
    action: failsWith('holder other_1_aaaa'),
  },
  {
    name: 'queued (free, others ahead in line): watch with no expiry to wait for',
    state: waitState(),
    event: attempted({ kind: 'queued', state: { view: 'absent', pendingSentAt: undefined } }, NOW, 57_000),
    action: { kind: 'look' },
    next: (s) => expect(s.phase).toEqual({ name: 'watching', takeOverAt: Infinity, lineChangesAt: 57_000 }),
  },
  {
    name: 'timeout 0: others in line is the answer',
    config: once,
    state: waitState(),
    event: attempted({ kind: 'queued', state: { view: 'absent', pendingSentAt: undefined } }),
    action: failsWith('timed out'),
  },

  // ---- before an attempt ----
  {
    name: 'no time left for a read: the last failure is the answer',
    state: waitState({ lastError: unavailable() }),
    event: { type: 'out-of-time' },
    action: failsWith('answered 503'),
  },
  {
    name: 'no time left for a read, no failure: a timeout naming the holder last seen',
    state: waitState({ acquire: heldView }),
    event: { type: 'out-of-time' },
    action: failsWith('holder other_1_aaaa'),
  },

  // ---- a lock that arrived past its deadline ----
  {
    name: 'straight from its own write: expires is too short, naming the round trip',
    state: waitState({ phase: { name: 'holding' } }),
    event: { type: 'arrived-late', now: NOW, sentAt: NOW - 900, readBack: false },
    action: failsWith('round trip 900'),
  },
  {
    name: 'learned late from a read-back: try again after a short backoff',
    state: waitState({ phase: { name: 'holding' }, fruitless: 1 }),
    event: { type: 'arrived-late', now: NOW, sentAt: NOW - 900, readBack: true },
    action: { kind: 'sleep', until: NOW + (RETRY / 10) * 2, wake: false },
    next: (s) => expect(s.fruitless).toBe(2),
  },
  {
    name: 'timeout 0: learned late is a timeout',
    config: once,
    state: waitState({ phase: { name: 'holding' } }),
    event: { type: 'arrived-late', now: NOW, sentAt: NOW - 900, readBack: true },
    action: failsWith('timed out'),
  },

  // ---- watching ----
  {
    name: 'news newer than the view: attempt on it without a read',
    state: watching(),
    event: looked({
      news: {
        lease: lease({ resourceVersion: '900719925474099301' }),
        resourceVersion: '900719925474099301',
      },
    }),
    action: { kind: 'attempt', readLine: false },
    next: (s) => {
      const view = s.acquire.view as LeaseObservation
      expect(view.record.resourceVersion).toBe('900719925474099301')
      expect(view.firstSeenAt).toBe(NOW)
    },
  },
  {
    name: 'news of a deletion: the lease is absent',
    state: watching(),
    event: looked({ news: { lease: undefined, resourceVersion: '900719925474099301' } }),
    action: { kind: 'attempt', readLine: false },
    next: (s) => expect(s.acquire.view).toBe('absent'),
  },
  {
    name: 'news no newer than the view is dropped: keep sleeping',
    state: watching(),
    event: looked({ news: { lease: lease(), resourceVersion: '900719925474099299' } }),
    action: { kind: 'sleep', until: 55_000, wake: true },
    next: (s) => expect(s.acquire).toBe(heldView),
  },
  {
    name: 'somebody ahead in line went away: attempt (mayTake reads the line afresh, R1)',
    state: watching(),
    event: looked({ lineNews: true }),
    action: { kind: 'attempt', readLine: false },
  },
  {
    name: 'line news beats the deadline: the attempt may still take the lock',
    state: watching(),
    event: looked({ lineNews: true, now: DEADLINE }),
    action: { kind: 'attempt', readLine: false },
  },
  {
    name: 'the deadline passed: a timeout naming the holder',
    state: watching(),
    event: looked({ now: DEADLINE }),
    action: failsWith('holder other_1_aaaa'),
  },
  {
    name: 'the holder expired on this clock: attempt a takeover',
    state: watching(),
    event: looked({ now: 55_000 }),
    action: { kind: 'attempt', readLine: false },
  },
  {
    name: 'the first waiter ahead may stop counting: attempt',
    state: watching({}, Infinity, 52_000),
    event: looked({ now: 52_000 }),
    action: { kind: 'attempt', readLine: false },
  },
  {
    name: 'sleep until the earliest of deadline, expiry, line change and line tending',
    state: watching({}, 58_000, 57_000),
    event: looked({ lineAt: 56_000 }),
    action: { kind: 'sleep', until: 56_000, wake: true },
  },
  {
    name: 'an unhealthy watch schedules a poll one (jittered) retry interval out',
    state: watching(),
    event: looked({ unhealthy: true }),
    action: { kind: 'sleep', until: NOW + RETRY, wake: true },
    next: (s) => {
      expect(s.pollWanted).toBe(true)
      expect(s.nextPollAt).toBe(NOW + RETRY)
    },
  },
  {
    name: 'a watch that keeps flipping does not postpone the poll',
    state: watching({ pollWanted: true, nextPollAt: NOW + 200 }),
    event: looked({ now: NOW + 100 }),
    action: { kind: 'sleep', until: NOW + 200, wake: true },
    next: (s) => expect(s.nextPollAt).toBe(NOW + 200),
  },
  {
    name: 'a notification: look again',
    state: watching({ pollWanted: true, nextPollAt: NOW }),
    event: slept(true),
    action: { kind: 'look' },
  },
  {
    name: 'the poll is due: read the lease and the line again, keeping what was seen',
    state: watching({ pollWanted: true, nextPollAt: NOW }),
    event: slept(false, NOW, false),
    action: { kind: 'attempt', readLine: true },
    next: (s) => {
      expect(s.acquire).toEqual({ view: 'unknown', pendingSentAt: undefined, previous: seen })
      expect([s.pollWanted, s.nextPollAt]).toEqual([false, undefined])
    },
  },
  {
    name: 'after a poll while the watch still fails, the next poll is wanted',
    state: watching({ pollWanted: true, nextPollAt: NOW }),
    event: slept(false, NOW, true),
    action: { kind: 'attempt', readLine: true },
    next: (s) => expect(s.pollWanted).toBe(true),
  },
  {
    name: 'no poll at the deadline: the look reports the timeout',
    state: watching({ pollWanted: true, nextPollAt: NOW }),
    event: slept(false, DEADLINE),
    action: { kind: 'look' },
  },
  {
    name: 'a timer-sized piece of a long sleep ended: look again',
    state: watching(),
    event: slept(false),
    action: { kind: 'look' },
  },
  {
    name: 'a backoff ended: attempt, without reading the line',
    state: waitState({ phase: { name: 'backing-off' } }),
    event: slept(false),
    action: { kind: 'attempt', readLine: false },
  },
]

describe('waitStep', () => {
  it('starts with an attempt that reads the line beside the lease, keeping an earlier observation', () => {
    const { state, action } = startWait(seen)
    expect(action).toEqual({ kind: 'attempt', readLine: true })
    expect(state.acquire).toEqual({ view: 'unknown', pendingSentAt: undefined, previous: seen })
  })

  it.each(cases)('$name', (c) => {
    const { state, action } = waitStep(c.config ?? config, c.state, c.event)
    if (typeof c.action === 'function') c.action(action)
    else expect(action).toEqual(c.action)
    c.next?.(state)
  })

  it('only an acquire step that took the lease leads to holding it', () => {
    for (const c of cases) {
      const { action } = waitStep(c.config ?? config, c.state, c.event)
      const tookIt = c.event.type === 'attempted' && c.event.result.kind === 'acquired'
      expect(action.kind === 'hold', c.name).toBe(tookIt)
    }
  })

  it('refuses an observation that does not belong to the phase', () => {
    expect(() => waitStep(config, waitState(), looked())).toThrow(/a look while attempting/)
    expect(() => waitStep(config, waitState(), slept(false))).toThrow(/a sleep while attempting/)
  })
})
