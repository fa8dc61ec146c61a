// Renewals the API server throttled (429 Too Many Requests): the request was not executed, so the lease
// is unchanged and the lock still valid until its deadline. The holder retries no sooner than the
// server asked, and the signal still fires at the deadline if no renewal got through.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { LockLostError, LockUnavailableError } from './errors.ts'
import { HeldLock } from './held-lock.ts'
import type { LeaseRecord } from './lease-record.ts'
import { createMemoryLeaseStore, type MemoryLeaseStore } from './memory-store.ts'
import { fakeClock } from './testing/helpers.ts'

const NS = 'shop'
// expires 9 s, margin 0.9 s: renewals every 3 s, deadline 8.1 s after the last successful write.
const EXPIRES_MS = 9000
const MARGIN_MS = 900
const RENEW_EVERY_MS = 3000
const RETRY_INTERVAL_MS = 1000

let store: MemoryLeaseStore
let held: HeldLock[]

beforeEach(() => {
  vi.useFakeTimers({ now: Date.UTC(2030, 0, 1) })
  store = createMemoryLeaseStore()
  held = []
})

afterEach(async () => {
  await Promise.all(held.map((lock) => lock.release()))
  expect(vi.getTimerCount()).toBe(0)
  vi.useRealTimers()
})

async function hold(name: string): Promise<HeldLock> {
  const sentAt = fakeClock.now()
  const record: LeaseRecord = await store.create({
    namespace: NS,
    name,
    holderIdentity: 'pod-a',
    leaseDurationSeconds: EXPIRES_MS / 1000,
    acquireTime: '2030-01-01T00:00:00.000000Z',
    renewTime: '2030-01-01T00:00:00.000000Z',
    leaseTransitions: 0,
    labels: { 'app.kubernetes.io/managed-by': 'kube-locks' },
    annotations: {},
  })
  const lock = new HeldLock({
    store,
    clock: fakeClock,
    logger: {},
    lockName: name,
    record,
    sentAt,
    expiresMs: EXPIRES_MS,
    safetyMarginMs: MARGIN_MS,
    renew: true,
    requestTimeoutMs: 10_000,
    retryIntervalMs: RETRY_INTERVAL_MS,
    onReleased: () => {},
  })
  held.push(lock)
  return lock
}

const throttled = (retryAfterMs: number | undefined) => () =>
  new LockUnavailableError({
    server: 'memory',
    problem: 'is throttling requests (429 Too Many Requests)',
    outcomeUnknown: false,
    status: 429,
    retryAfterMs,
  })

const renewals = () => store.calls.filter((call) => call.operation === 'update').length

describe('a renewal answered 429 Too Many Requests', () => {
  it('is retried no sooner than Retry-After, and the lock stays valid meanwhile', async () => {
    const lock = await hold('throttled')
    store.failNext('update', throttled(4000))
    await vi.advanceTimersByTimeAsync(RENEW_EVERY_MS)
    expect(renewals(), 'the throttled renewal').toBe(1)
    expect(lock.signal.aborted, 'a 429 was not applied: the lock is not in doubt').toBe(false)
    // The usual retry (jittered, at most 1.5 × retryInterval) would have come by now.
    await vi.advanceTimersByTimeAsync(3999)
    expect(renewals(), 'nothing before Retry-After').toBe(1)
    await vi.advanceTimersByTimeAsync(1)
    expect(renewals(), 'the retry, at Retry-After').toBe(2)
    expect(lock.signal.aborted).toBe(false)
    // The deadline counts from the retry that got through.
    expect(lock.deadline).toBe(Date.UTC(2030, 0, 1) + RENEW_EVERY_MS + 4000 + EXPIRES_MS - MARGIN_MS)
  })

  it('waits the usual retry interval when the server asked for less or named no delay', async () => {
    for (const retryAfterMs of [0, undefined]) {
      store = createMemoryLeaseStore()
      const lock = await hold(`short-${retryAfterMs}`)
      store.failNext('update', throttled(retryAfterMs))
      await vi.advanceTimersByTimeAsync(RENEW_EVERY_MS)
      expect(renewals()).toBe(1)
      // jitter(retryInterval) lies in [0.5, 1.5) × retryInterval.
      await vi.advanceTimersByTimeAsync(RETRY_INTERVAL_MS / 2 - 1)
      expect(renewals(), `no retry before half the retry interval (Retry-After ${retryAfterMs})`).toBe(1)
      await vi.advanceTimersByTimeAsync(RETRY_INTERVAL_MS)
      expect(renewals(), 'retried within 1.5 × the retry interval').toBe(2)
      expect(lock.signal.aborted).toBe(false)
      await lock.release()
    }
  })

  it('sends nothing when Retry-After lies past the deadline, and the signal fires at the deadline', async () => {
    const lock = await hold('beyond')
    store.failNext('update', throttled(60_000))
    await vi.advanceTimersByTimeAsync(RENEW_EVERY_MS)
    expect(renewals()).toBe(1)
    await vi.advanceTimersByTimeAsync(EXPIRES_MS - MARGIN_MS - RENEW_EVERY_MS - 1)
    expect(lock.signal.aborted, 'valid until the deadline').toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    expect(lock.signal.aborted, 'lost at the deadline, not later').toBe(true)
    expect((lock.signal.reason as LockLostError).reason).toBe('expired')
    await vi.advanceTimersByTimeAsync(60_000)
    expect(renewals(), 'no renewal after the lock ended').toBe(1)
  })

  it('throttled until the deadline: the signal fires at the deadline, and no renewal is sent after it', async () => {
    const lock = await hold('flooded')
    store.failNext('update', throttled(1000), { times: 100 })
    const deadline = lock.deadline
    let abortedAt: number | undefined
    lock.signal.addEventListener('abort', () => {
      abortedAt = Date.now()
    })
    await vi.advanceTimersByTimeAsync(EXPIRES_MS)
    expect(abortedAt).toBe(deadline)
    expect(lock.signal.reason).toBeInstanceOf(LockLostError)
    // Renewals at 3 s, then one per Retry-After (or jittered interval, if longer) while before the deadline.
    expect(renewals()).toBeGreaterThanOrEqual(3)
    expect(renewals()).toBeLessThanOrEqual(6)
    const sent = renewals()
    await vi.advanceTimersByTimeAsync(30_000)
    expect(renewals()).toBe(sent)
  })

  it('other failures that never reached the server still retry on the usual interval', async () => {
    const lock = await hold('refused')
    store.failNext(
      'update',
      () =>
        new LockUnavailableError({
          server: 'memory',
          problem: 'could not be reached (ECONNREFUSED)',
          outcomeUnknown: false,
        }),
    )
    await vi.advanceTimersByTimeAsync(RENEW_EVERY_MS + RETRY_INTERVAL_MS * 1.5)
    expect(renewals()).toBe(2)
    expect(lock.signal.aborted).toBe(false)
  })
})
