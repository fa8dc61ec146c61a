import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createLocks } from './create-locks.ts'
import {
  InvalidLockOptionsError,
  LockClosedError,
  LockLostError,
  LockPermissionError,
  LockTimeoutError,
  LockUnavailableError,
  WatchExpiredError,
} from './errors.ts'
import type { Lock } from './held-lock.ts'
import type { Locks } from './locks.ts'
import type { MemoryLeaseStore } from './memory-store.ts'
import { createMemoryLeaseStore } from './memory-store.ts'
import type { LocksOptions } from './options.ts'
import { compareResourceVersions } from './resource-version.ts'
import { fakeClock, settle, track } from './testing/helpers.ts'

const NS = 'shop'
let store: MemoryLeaseStore
const opened: Locks[] = []

function locks(options: LocksOptions = {}): Locks {
  const instance = createLocks({
    store,
    namespace: NS,
    service: 'update-customer',
    identity: 'pod-a',
    pod: 'pod-a',
    node: 'node-1',
    clock: fakeClock,
    ...options,
  })
  opened.push(instance)
  return instance
}

const unknownOutcome = () =>
  new LockUnavailableError({ server: 'memory', problem: 'answered 504', outcomeUnknown: true, status: 504 })
const notSent = () =>
  new LockUnavailableError({
    server: 'memory',
    problem: 'could not be reached (ECONNREFUSED)',
    outcomeUnknown: false,
  })

beforeEach(() => {
  vi.useFakeTimers({ now: Date.UTC(2030, 0, 1) })
  store = createMemoryLeaseStore()
})

afterEach(async () => {
  await Promise.all(opened.splice(0).map((instance) => instance.close()))
  // Every test leaves nothing running: no timer, no watch.
  expect(vi.getTimerCount()).toBe(0)
  expect(store.openWatches).toBe(0)
  vi.useRealTimers()
})

describe('acquire and release', () => {
  it('creates a labelled, annotated lease; release marks it free and keeps it', async () => {
    const client = locks()
    const lock = await client.acquire('Orders/EU')
    const lease = store.peek(NS, lock.leaseName)
    expect(lease).toMatchObject({
      holderIdentity: lock.holder,
      leaseDurationSeconds: 20,
      labels: { 'app.kubernetes.io/managed-by': 'kube-locks' },
      annotations: {
        'kube-locks.io/name': 'Orders/EU',
        'kube-locks.io/service': 'update-customer',
        'kube-locks.io/pod': 'pod-a',
        'kube-locks.io/node': 'node-1',
      },
    })
    expect(lock).toMatchObject({ name: 'Orders/EU', namespace: NS, fencingToken: lease?.resourceVersion })
    expect(lock.holder).toMatch(/^pod-a_\d+_[a-z2-7]{26}$/)
    expect(lock.signal.aborted).toBe(false)

    await lock.release()
    expect(lock.signal.aborted).toBe(true)
    expect((lock.signal.reason as Error).name).toBe('AbortError')
    const freed = store.peek(NS, lock.leaseName)
    expect(freed?.holderIdentity).toBeUndefined()
    expect(freed?.annotations).toEqual({ 'kube-locks.io/name': 'Orders/EU' })
    expect(freed?.labels).toEqual({ 'app.kubernetes.io/managed-by': 'kube-locks' })
  })

  it('release is idempotent and writes once', async () => {
    const lock = await locks().acquire('a')
    await Promise.all([lock.release(), lock.release()])
    await lock.release()
    expect(store.calls.filter((call) => call.operation === 'update')).toHaveLength(1)
  })

  it('works with await using', async () => {
    const client = locks()
    let leaseName = ''
    {
      await using lock = await client.acquire('scoped')
      leaseName = lock.leaseName
      expect(store.peek(NS, leaseName)?.holderIdentity).toBe(lock.holder)
    }
    expect(store.peek(NS, leaseName)?.holderIdentity).toBeUndefined()
  })

  it('defaults the name to the service; without a service a name is required', async () => {
    const lock = await locks().acquire({ expires: 180 })
    expect(lock.name).toBe('update-customer')
    expect(store.peek(NS, 'update-customer')?.leaseDurationSeconds).toBe(180)
    await lock.release()
    await expect(locks({ service: undefined }).acquire()).rejects.toThrow(InvalidLockOptionsError)
  })

  it('records the duration rounded up to whole seconds', async () => {
    const lock = await locks().acquire('frac', { expires: 2.2 })
    expect(store.peek(NS, 'frac')?.leaseDurationSeconds).toBe(3)
    await lock.release()
  })

  it('validates options, saying what was expected and what was given', async () => {
    const client = locks()
    await expect(client.acquire('x', { timeout: -1 })).rejects.toThrow(
      'Expected `timeout` to be a number (or Infinity) of seconds >= 0, got `-1` (number)',
    )
    await expect(client.acquire('x', { expires: 0 })).rejects.toThrow(InvalidLockOptionsError)
    await expect(client.acquire('x', { renew: 'yes' as unknown as boolean })).rejects.toThrow(
      'Expected `renew` to be a boolean, got `yes` (string)',
    )
    expect(store.calls).toHaveLength(0)
  })

  it('raises a permission error at once, naming verb, resource and namespace', async () => {
    store.failNext(
      'get',
      () =>
        new LockPermissionError({
          verb: 'get',
          resource: 'leases.coordination.k8s.io',
          namespace: NS,
          status: 403,
        }),
    )
    const error = await locks()
      .acquire('p')
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(LockPermissionError)
    expect(String(error)).toMatch(
      /cannot get leases.coordination.k8s.io in namespace `shop`.*kube-locks-client/,
    )
  })
})

describe('waiting', () => {
  it('is mutually exclusive, and a release wakes the waiter through the watch without polling', async () => {
    const a = await locks().acquire('orders')
    const b = track(locks({ identity: 'pod-b' }).acquire('orders', { timeout: 10 }))
    await settle()
    expect(b.status).toBe('pending')
    expect(store.openWatches).toBe(1)

    const before = store.calls.length
    const releasedAt = Date.now()
    await a.release()
    await settle()
    expect(b.status).toBe('fulfilled')
    // Woken by the watch event, at the same instant, and took the lease from the event: no read, no poll.
    expect(b.settledAt).toBe(releasedAt)
    const after = store.calls.slice(before)
    expect(after.filter((call) => call.name === 'orders').map((call) => call.operation)).toEqual([
      'update',
      'update',
    ])
    // And the waiter's place in line, no longer needed, is given up.
    expect(after.filter((call) => call.name !== 'orders').map((call) => call.operation)).toEqual(['delete'])
    const lockB = b.value as Lock
    expect(compareResourceVersions(lockB.fencingToken, a.fencingToken)).toBeGreaterThan(0)
    await lockB.release()
  })

  it('serves all waiters of a process with one watch', async () => {
    const client = locks()
    const holder = await client.acquire('hot')
    const waiters = [1, 2, 3, 4, 5].map(() => track(client.acquire('hot', { timeout: 60 })))
    const other = await client.acquire('cold')
    await settle()
    expect(store.calls.filter((call) => call.operation === 'watch')).toHaveLength(1)
    expect(store.openWatches).toBe(1)

    await holder.release()
    await settle()
    const won = waiters.filter((waiter) => waiter.status === 'fulfilled')
    expect(won).toHaveLength(1)
    await other.release()
    for (let i = 0; i < 4; i++) {
      await (won[0] as (typeof waiters)[number]).value?.release()
      await settle()
      const next = waiters.filter((waiter) => waiter.status === 'fulfilled' && !won.includes(waiter))
      expect(next).toHaveLength(1)
      won.unshift(next[0] as (typeof waiters)[number])
    }
    await (won[0] as (typeof waiters)[number]).value?.release()
    await settle()
    expect(store.openWatches).toBe(0)
  })

  it('is not re-entrant: a second acquire of a held name waits like any other', async () => {
    const client = locks()
    const lock = await client.acquire('once')
    await expect(client.acquire('once', { timeout: 0 })).rejects.toBeInstanceOf(LockTimeoutError)
    await lock.release()
  })

  it('timeout 0 fails at once, naming the holder', async () => {
    const a = await locks().acquire('busy')
    const started = Date.now()
    const error = await locks({ identity: 'pod-b' })
      .acquire('busy', { timeout: 0 })
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(LockTimeoutError)
    expect(Date.now()).toBe(started)
    expect((error as LockTimeoutError).holder).toBe(a.holder)
    expect(String(error)).toContain('`timeout` is 0, so it did not wait')
    expect(store.openWatches).toBe(0)
    await a.release()
  })

  it('timeout 2 fails after exactly 2 s', async () => {
    const a = await locks().acquire('busy')
    const b = track(locks({ identity: 'pod-b' }).acquire('busy', { timeout: 2 }))
    await vi.advanceTimersByTimeAsync(1999)
    expect(b.status).toBe('pending')
    await vi.advanceTimersByTimeAsync(1)
    expect(b.status).toBe('rejected')
    expect(b.error).toBeInstanceOf(LockTimeoutError)
    expect(String(b.error)).toContain('longer than the `timeout` of 2 s')
    await a.release()
  })

  it('the caller signal cancels a wait', async () => {
    const a = await locks().acquire('busy')
    const controller = new AbortController()
    const b = track(locks({ identity: 'pod-b' }).acquire('busy', { timeout: 60, signal: controller.signal }))
    await settle()
    controller.abort(new Error('caller gave up'))
    await settle()
    expect(b.status).toBe('rejected')
    expect((b.error as Error).message).toBe('caller gave up')
    await a.release()
  })

  it('polls with jitter while the watch cannot connect, and still hands over', async () => {
    const a = await locks().acquire('w')
    store.failNext('watch', notSent, { times: 1000 })
    const b = track(locks({ identity: 'pod-b', retryInterval: 1 }).acquire('w', { timeout: 30 }))
    await vi.advanceTimersByTimeAsync(100)
    await a.release()
    await vi.advanceTimersByTimeAsync(1500)
    expect(b.status).toBe('fulfilled')
    await (b.value as Lock).release()
  })

  it('does not poll while the watch is healthy', async () => {
    const a = await locks().acquire('quiet')
    const b = track(locks({ identity: 'pod-b' }).acquire('quiet', { timeout: 15 }))
    await settle()
    const before = store.calls.length
    await vi.advanceTimersByTimeAsync(14_000)
    const calls = store.calls.slice(before)
    const isTicket = (call: { name: string | undefined }) => call.name?.startsWith('quiet.q-') === true
    expect(calls.filter((call) => !isTicket(call))).toEqual([])
    // Only the waiter's ticket is renewed, every half of its 15 s.
    expect(calls.filter(isTicket).map((call) => call.operation)).toEqual(['update'])
    await a.release()
    await settle()
    expect(b.status).toBe('fulfilled')
    await (b.value as Lock).release()
  })

  it('re-lists after 410 Gone and keeps waking waiters', async () => {
    const a = await locks().acquire('g')
    const b = track(locks({ identity: 'pod-b' }).acquire('g', { timeout: 30 }))
    await settle()
    const lists = () => store.calls.filter((call) => call.operation === 'list').length
    const before = lists()
    store.compact()
    store.endWatches(new WatchExpiredError())
    await settle()
    expect(lists() - before).toBe(1)
    await a.release()
    await settle()
    expect(b.status).toBe('fulfilled')
    await (b.value as Lock).release()
  })

  it('resumes a watch the server ended, from the last resourceVersion', async () => {
    const a = await locks().acquire('r')
    const b = track(locks({ identity: 'pod-b' }).acquire('r', { timeout: 30 }))
    await settle()
    const lists = () => store.calls.filter((call) => call.operation === 'list').length
    const before = lists()
    store.endWatches()
    await a.release()
    await settle()
    expect(b.status).toBe('fulfilled')
    expect(lists() - before).toBe(0)
    await (b.value as Lock).release()
  })
})

describe('expiry', () => {
  it.each([1, 5, 20, 90])(
    'expires %s: the holder signal aborts before another process takes the lock over',
    async (expires) => {
      const events: string[] = []
      const a = await locks().acquire('e', { expires })
      const acquiredAt = Date.now()
      a.signal.addEventListener('abort', () => events.push(`abort@${Date.now() - acquiredAt}`))
      const b = track(locks({ identity: 'pod-b' }).acquire('e', { timeout: 200 }))
      void b.promise.then(() => events.push(`taken@${Date.now() - acquiredAt}`))
      await vi.advanceTimersByTimeAsync((expires + 1) * 1000 + 10)
      expect(b.status).toBe('fulfilled')
      const margin = Math.min(expires * 0.1, 2) * 1000
      expect(events).toEqual([
        `abort@${expires * 1000 - margin}`,
        `taken@${Math.ceil(expires) * 1000 + 1000}`,
      ])
      expect(a.signal.reason).toBeInstanceOf(LockLostError)
      expect((a.signal.reason as LockLostError).reason).toBe('expired')
      // The old holder's release must not free the new holder's lease.
      await a.release()
      expect(store.peek(NS, 'e')?.holderIdentity).toBe((b.value as Lock).holder)
      await (b.value as Lock).release()
    },
  )

  it('a late waiter counts the full duration from its own first sight (no trust in renewTime)', async () => {
    const a = await locks().acquire('late', { expires: 10 })
    await vi.advanceTimersByTimeAsync(8000)
    const b = track(locks({ identity: 'pod-b' }).acquire('late', { timeout: 60 }))
    await vi.advanceTimersByTimeAsync(10_999)
    expect(b.status).toBe('pending')
    await vi.advanceTimersByTimeAsync(1)
    expect(b.status).toBe('fulfilled')
    await a.release()
    await (b.value as Lock).release()
  })

  it('callers with a timeout shorter than expires still take over a dead holder, on a later call', async () => {
    const dead = await locks().acquire('abandoned', { expires: 20 })
    const client = locks({ identity: 'pod-b' })
    const started = Date.now()
    let lock: Lock | undefined
    while (lock === undefined && Date.now() - started < 60_000) {
      const attempt = track(client.acquire('abandoned', { timeout: 5 }))
      await vi.advanceTimersByTimeAsync(5000)
      if (attempt.status === 'fulfilled') lock = attempt.value
      else expect(attempt.error).toBeInstanceOf(LockTimeoutError)
    }
    // Seen unchanged since the first call: 20 s + 1 s grace after it, not 21 s after the last call.
    expect(lock).toBeDefined()
    expect(Date.now() - started).toBeLessThanOrEqual(25_000)
    await dead.release()
    await lock?.release()
  })

  it('renew: true keeps the lock past expires until released', async () => {
    const a = await locks().acquire('kept', { expires: 3, renew: true })
    const b = track(locks({ identity: 'pod-b' }).acquire('kept', { timeout: 60 }))
    await vi.advanceTimersByTimeAsync(30_000)
    expect(b.status).toBe('pending')
    expect(a.signal.aborted).toBe(false)
    expect(store.calls.filter((call) => call.operation === 'update').length).toBeGreaterThanOrEqual(29)
    expect(a.fencingToken).not.toBe(store.peek(NS, 'kept')?.resourceVersion)
    await a.release()
    await settle()
    expect(b.status).toBe('fulfilled')
    await (b.value as Lock).release()
  })

  it('a renewal that may not have applied (504) aborts the signal at once', async () => {
    const a = await locks().acquire('flaky', { expires: 9, renew: true })
    store.failNext('update', unknownOutcome, { phase: 'after' })
    await vi.advanceTimersByTimeAsync(3000)
    expect(a.signal.aborted).toBe(true)
    expect((a.signal.reason as LockLostError).reason).toBe('renewal-failed')
    await a.release()
  })

  it('a renewal that lost the compare-and-swap aborts the signal', async () => {
    const a = await locks().acquire('stolen', { expires: 9, renew: true })
    const current = store.peek(NS, 'stolen')
    if (!current) throw new Error('lease missing')
    store.seed({ ...current, holderIdentity: 'intruder' })
    await vi.advanceTimersByTimeAsync(3000)
    expect((a.signal.reason as LockLostError).reason).toBe('taken')
    await a.release()
    expect(store.peek(NS, 'stolen')?.holderIdentity).toBe('intruder')
  })

  it('release waits for a renewal in flight and frees the lease with its resourceVersion', async () => {
    const a = await locks().acquire('inflight', { expires: 9, renew: true })
    const gate = store.pause('update')
    await vi.advanceTimersByTimeAsync(3000)
    expect(gate.waiting).toBe(1)
    const releasing = track(a.release())
    await settle()
    expect(a.signal.aborted).toBe(true)
    expect(releasing.status).toBe('pending')
    gate.resume()
    await settle()
    expect(releasing.status).toBe('fulfilled')
    expect(store.peek(NS, 'inflight')?.holderIdentity).toBeUndefined()
  })

  it('a holder paused past its deadline sends no renewal when it runs again', async () => {
    // The process stops (SIGSTOP, a long GC pause): its monotonic clock runs on, its timers do not.
    let paused = 0
    const clock = { now: () => Date.now() + paused, wallNow: () => Date.now() + paused }
    const a = await locks({ clock }).acquire('paused', { expires: 3, renew: true })
    const writes = () => store.calls.filter((call) => call.operation === 'update').length
    const before = writes()
    paused = 5000
    await vi.advanceTimersByTimeAsync(1000)
    expect(a.signal.aborted).toBe(true)
    expect((a.signal.reason as LockLostError).reason).toBe('expired')
    expect(writes()).toBe(before)
    await a.release()
  })

  it('valid reports a lock past its deadline as lost before the deadline timer has run', async () => {
    let paused = 0
    const clock = { now: () => Date.now() + paused, wallNow: () => Date.now() + paused }
    const a = await locks({ clock }).acquire('checked', { expires: 3 })
    expect(a.valid).toBe(true)
    paused = 5000
    expect(a.signal.aborted).toBe(false)
    expect(a.valid).toBe(false)
    expect((a.signal.reason as LockLostError).reason).toBe('expired')
    await a.release()
    expect(a.valid).toBe(false)
  })

  it('a renewal that never reached the server is retried while time is left', async () => {
    const a = await locks().acquire('retry', { expires: 9, renew: true })
    store.failNext('update', notSent, { times: 2 })
    await vi.advanceTimersByTimeAsync(6000)
    expect(a.signal.aborted).toBe(false)
    await a.release()
  })
})

describe('unknown outcomes', () => {
  it('a create applied whose answer was lost: re-reads, finds itself holder, and holds the lock', async () => {
    store.failNext('create', unknownOutcome, { phase: 'after' })
    const client = locks({ retryInterval: 0.1 })
    const pending = track(client.acquire('lost-answer', { timeout: 5 }))
    await vi.advanceTimersByTimeAsync(200)
    expect(pending.status).toBe('fulfilled')
    const lock = pending.value as Lock
    const lease = store.peek(NS, 'lost-answer')
    expect(lease?.holderIdentity).toBe(lock.holder)
    expect(lock.fencingToken).toBe(lease?.resourceVersion)
    expect(store.calls.filter((call) => call.operation === 'create')).toHaveLength(1)
    await lock.release()
  })

  it('never returns a lock whose deadline passed while the answer was lost', async () => {
    store.failNext('create', unknownOutcome, { phase: 'after' })
    const client = locks({ retryInterval: 10 })
    const pending = track(client.acquire('too-late', { timeout: 120, expires: 2 }))
    for (let waited = 0; pending.status === 'pending' && waited < 30_000; waited += 100) {
      await vi.advanceTimersByTimeAsync(100)
    }
    expect(pending.status).toBe('fulfilled')
    const lock = pending.value as Lock
    expect(lock.signal.aborted).toBe(false)
    expect(store.calls.filter((call) => call.name === 'too-late').map((call) => call.operation)).toEqual([
      'get',
      'create',
      'get',
      'update',
      'get',
      'update',
    ])
    // Handed back, then taken afresh: the lock has the token of the fresh write.
    expect(store.peek(NS, 'too-late')?.resourceVersion).toBe(lock.fencingToken)
    await lock.release()
  })

  it('an unreachable server fails at the deadline with an error naming it, never later', async () => {
    store.failNext('get', notSent, { times: 1000 })
    const pending = track(locks().acquire('down', { timeout: 2 }))
    await vi.advanceTimersByTimeAsync(1999)
    expect(pending.status).toBe('pending')
    await vi.advanceTimersByTimeAsync(1)
    expect(pending.status).toBe('rejected')
    expect(pending.error).toBeInstanceOf(LockUnavailableError)
    expect(String(pending.error)).toContain('the Kubernetes API server at memory could not be reached')
  })

  it('a server that does not answer is abandoned at the deadline', async () => {
    const gate = store.pause('get')
    const pending = track(locks().acquire('hang', { timeout: 2 }))
    await vi.advanceTimersByTimeAsync(2000)
    expect(pending.status).toBe('rejected')
    expect(String(pending.error)).toContain('did not answer within 2 s')
    gate.resume()
  })

  it('timeout 0 still gets one full request, then fails', async () => {
    store.failNext('get', notSent)
    await expect(locks().acquire('down0', { timeout: 0 })).rejects.toBeInstanceOf(LockUnavailableError)
  })
})

describe('fencing tokens', () => {
  it('increase strictly across release, expiry, delete and re-create', async () => {
    const client = locks()
    const tokens: string[] = []
    const take = async (options = {}) => {
      const lock = await client.acquire('fence', options)
      tokens.push(lock.fencingToken)
      return lock
    }
    await (await take()).release()
    await (await take()).release()
    const expiring = await take({ expires: 1 })
    const takeover = track(locks({ identity: 'pod-b' }).acquire('fence', { timeout: 10 }))
    await vi.advanceTimersByTimeAsync(2100)
    tokens.push((takeover.value as Lock).fencingToken)
    await expiring.release()
    await (takeover.value as Lock).release()
    store.remove(NS, 'fence')
    await (await take()).release()
    for (let i = 1; i < tokens.length; i++) {
      expect(compareResourceVersions(tokens[i] as string, tokens[i - 1] as string)).toBe(1)
    }
    expect(tokens).toHaveLength(5)
    // The in-memory store starts above 2^53: tokens must not go through Number().
    expect(BigInt(tokens[4] as string) > BigInt(Number.MAX_SAFE_INTEGER)).toBe(true)
  })
})

describe('withLock', () => {
  it('runs the function under the lock and releases afterwards, returning its value', async () => {
    const client = locks()
    const result = await client.withLock('w1', async (signal, lock) => {
      expect(signal).toBe(lock.signal)
      expect(store.peek(NS, 'w1')?.holderIdentity).toBe(lock.holder)
      return 42
    })
    expect(result).toBe(42)
    expect(store.peek(NS, 'w1')?.holderIdentity).toBeUndefined()
  })

  it('releases when the function throws', async () => {
    const client = locks()
    await expect(
      client.withLock('w2', () => {
        throw new Error('boom')
      }),
    ).rejects.toThrow('boom')
    expect(store.peek(NS, 'w2')?.holderIdentity).toBeUndefined()
  })

  it('accepts (fn), (name, fn), (options, fn) and (name, options, fn)', async () => {
    const client = locks()
    const names: string[] = []
    await client.withLock((_signal, lock) => names.push(lock.name))
    await client.withLock('n', (_signal, lock) => names.push(lock.name))
    await client.withLock({ expires: 5 }, (_signal, lock) => names.push(lock.name))
    await client.withLock('m', { timeout: 0 }, (_signal, lock) => names.push(lock.name))
    expect(names).toEqual(['update-customer', 'n', 'update-customer', 'm'])
    await expect(client.withLock('x' as never)).rejects.toThrow(InvalidLockOptionsError)
  })
})

describe('close', () => {
  it('releases held locks, rejects waiters with LockClosedError and stops the watch', async () => {
    const client = locks()
    const held = await client.acquire('c1')
    const other = await locks({ identity: 'pod-b' }).acquire('c2')
    const waiting = track(client.acquire('c2', { timeout: 60 }))
    await settle()
    expect(store.openWatches).toBe(1)
    await client.close()
    expect(waiting.error).toBeInstanceOf(LockClosedError)
    expect(held.signal.aborted).toBe(true)
    expect(store.peek(NS, 'c1')?.holderIdentity).toBeUndefined()
    expect(store.openWatches).toBe(0)
    await expect(client.acquire('c3')).rejects.toBeInstanceOf(LockClosedError)
    await client.close()
    await other.release()
  })
})

describe('waiting while the watch is down', () => {
  it('polling does not postpone expiry: the first sight of a resourceVersion counts', async () => {
    store.failNext('watch', notSent, { times: 1000 })
    const a = await locks().acquire('poll-expiry', { expires: 5 })
    const b = track(locks({ identity: 'pod-b' }).acquire('poll-expiry', { timeout: 60 }))
    await vi.advanceTimersByTimeAsync(5999)
    expect(b.status).toBe('pending')
    expect(store.calls.filter((call) => call.operation === 'get').length).toBeGreaterThan(3)
    await vi.advanceTimersByTimeAsync(1)
    expect(b.status).toBe('fulfilled')
    await a.release()
    await (b.value as Lock).release()
  })
})
