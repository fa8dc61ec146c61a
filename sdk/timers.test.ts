import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { LockUnavailableError } from './errors.ts'
import { backoff, jitter, MAX_TIMER_MS, requestDeadline, Wakeup, withRequestDeadline } from './timers.ts'

describe('backoff', () => {
  const middle = () => 0.5
  it.each([
    // attempt, options, expected delay
    [1, { baseMs: 1000 }, 1000],
    [2, { baseMs: 1000 }, 2000],
    [4, { baseMs: 1000 }, 8000],
    [9, { baseMs: 1000 }, 8000],
    [3, { baseMs: 100, maxFactor: 2 }, 200],
    [1, { baseMs: 1000, atLeastMs: 5000 }, 5000],
    [1, { baseMs: 1000, atLeastMs: undefined }, 1000],
  ])('attempt %i with %o waits %i ms at the middle of its spread', (attempt, options, expected) => {
    expect(backoff(attempt, { ...options, random: middle })).toBe(expected)
  })

  it('spreads over ±spread of the delay', () => {
    expect(backoff(1, { baseMs: 1000, random: () => 0 })).toBe(500)
    expect(backoff(1, { baseMs: 1000, random: () => 0.999 })).toBeCloseTo(1499)
    expect(backoff(1, { baseMs: 1000, spread: 0.2, random: () => 0 })).toBeCloseTo(800)
    expect(backoff(1, { baseMs: 1000, spread: 0.2, random: () => 0.999 })).toBeCloseTo(1199.6)
  })

  it('is jitter on the first attempt', () => {
    for (const r of [0, 0.25, 0.9])
      expect(backoff(1, { baseMs: 700, random: () => r })).toBe(jitter(700, () => r))
  })
})

describe('request deadline', () => {
  beforeEach(() => {
    vi.useFakeTimers()
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('aborts with an outcome-unknown LockUnavailableError naming the server and the time', async () => {
    const timer = requestDeadline(2500, 'https://api')
    const signal = timer.start()
    expect(timer.start()).toBe(signal)
    await vi.advanceTimersByTimeAsync(2499)
    expect(signal.aborted).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    const reason = signal.reason as LockUnavailableError
    expect(reason).toBeInstanceOf(LockUnavailableError)
    expect(reason.outcomeUnknown).toBe(true)
    expect(reason.server).toBe('https://api')
    expect(reason.message).toContain('did not answer within 2.5 s')
  })

  it('is not armed before start(), and clear() disarms it', async () => {
    const timer = requestDeadline(10, 'https://api')
    await vi.advanceTimersByTimeAsync(100)
    const signal = timer.start()
    timer.clear()
    await vi.advanceTimersByTimeAsync(100)
    expect(signal.aborted).toBe(false)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('withRequestDeadline fails a request that outlives it, and clears its timer otherwise', async () => {
    const slow = withRequestDeadline(
      (signal) =>
        new Promise((_, reject) =>
          signal.addEventListener('abort', () => reject(signal.reason), { once: true }),
        ),
      { ms: 1000, server: 'https://api' },
    )
    const failed = expect(slow).rejects.toThrow(LockUnavailableError)
    await vi.advanceTimersByTimeAsync(1000)
    await failed
    await expect(withRequestDeadline(async () => 7, { ms: 1000, server: 'https://api' })).resolves.toBe(7)
    expect(vi.getTimerCount()).toBe(0)
  })

  it("withRequestDeadline is aborted by the caller's signal too", async () => {
    const caller = new AbortController()
    const request = withRequestDeadline(
      (signal) =>
        new Promise((_, reject) =>
          signal.addEventListener('abort', () => reject(signal.reason), { once: true }),
        ),
      { ms: 60_000, server: 'https://api', signal: caller.signal },
    )
    caller.abort(new Error('caller gave up'))
    await expect(request).rejects.toThrow('caller gave up')
    expect(vi.getTimerCount()).toBe(0)
  })
})

describe('Wakeup', () => {
  beforeEach(() => {
    vi.useFakeTimers()
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('ends a sleep on notify, or when the time passed', async () => {
    const wakeup = new Wakeup()
    const woken = wakeup.sleep(5000, [], true)
    wakeup.notify()
    await expect(woken).resolves.toBe(true)
    const timed = wakeup.sleep(5000, [], true)
    await vi.advanceTimersByTimeAsync(5000)
    await expect(timed).resolves.toBe(false)
  })

  it('keeps a notification that came while awake for the next sleep that wakes on it', async () => {
    const wakeup = new Wakeup()
    wakeup.notify()
    // A backoff does not end early, and does not consume the notification.
    const backOff = wakeup.sleep(100, [], false)
    await vi.advanceTimersByTimeAsync(100)
    await expect(backOff).resolves.toBe(false)
    await expect(wakeup.sleep(5000, [], true)).resolves.toBe(true)
  })

  it('rejects with the reason of an aborted signal and leaves no timer', async () => {
    const wakeup = new Wakeup()
    const controller = new AbortController()
    const sleeping = wakeup.sleep(5000, [controller.signal], true)
    controller.abort(new Error('closed'))
    await expect(sleeping).rejects.toThrow('closed')
    expect(vi.getTimerCount()).toBe(0)
    // An already aborted signal throws at once: the loop never starts a sleep it must not take.
    expect(() => wakeup.sleep(10, [controller.signal], true)).toThrow('closed')
  })

  it('cuts a sleep beyond the timer limit into timer-sized pieces', async () => {
    const wakeup = new Wakeup()
    const long = wakeup.sleep(MAX_TIMER_MS * 3, [], true)
    await vi.advanceTimersByTimeAsync(MAX_TIMER_MS)
    await expect(long).resolves.toBe(false)
  })

  it('sleeps without a timer when the time is infinite, until notified', async () => {
    const wakeup = new Wakeup()
    const forever = wakeup.sleep(Number.POSITIVE_INFINITY, [], true)
    expect(vi.getTimerCount()).toBe(0)
    wakeup.notify()
    await expect(forever).resolves.toBe(true)
  })
})
