// Edge cases of acquire/renew/release: leases of other components, writes cut short, one-attempt
// calls, long timers, leases left behind, misspelt options. Memory store and fake timers throughout.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createLocks } from './create-locks.ts'
import {
  InvalidLockOptionsError,
  LeaseConflictError,
  LeaseNotManagedError,
  type LockLostError,
  LockTimeoutError,
  LockUnavailableError,
} from './errors.ts'
import { observe } from './expiry.ts'
import type { LeaseRecord } from './lease-record.ts'
import type { LeaseStore } from './lease-store.ts'
import type { Locks } from './locks.ts'
import type { MemoryLeaseStore } from './memory-store.ts'
import { createMemoryLeaseStore } from './memory-store.ts'
import type { LocksOptions } from './options.ts'
import { resolveAcquireOptions } from './options.ts'
import { fakeClock, settle, track } from './testing/helpers.ts'

const NS = 'shop'
const MANAGED = { 'app.kubernetes.io/managed-by': 'kube-locks' }
let memory: MemoryLeaseStore
const opened: Locks[] = []

function locks(options: LocksOptions = {}): Locks {
  const instance = createLocks({
    store: memory,
    namespace: NS,
    service: 'svc',
    identity: 'pod-a',
    clock: fakeClock,
    ...options,
  })
  opened.push(instance)
  return instance
}

const writes = () => memory.calls.filter((call) => call.operation === 'create' || call.operation === 'update')
const unknownOutcome = () =>
  new LockUnavailableError({ server: 'memory', problem: 'answered 504', outcomeUnknown: true, status: 504 })

/** A store whose every request takes `ms` (fake) milliseconds on the way back; the request applies at once. */
function slowAnswers(inner: LeaseStore, ms: number, only?: ReadonlySet<string>): LeaseStore {
  const late =
    <A extends unknown[], R>(name: string, run: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      const options = args.at(-1) as { signal?: AbortSignal } | undefined
      // The server applies the request whatever happens to its answer.
      const result = await (run as (...all: unknown[]) => Promise<R>)(...args.slice(0, -1), {})
      if (only !== undefined && !only.has(name)) return result
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, ms)
        options?.signal?.addEventListener(
          'abort',
          () => {
            clearTimeout(timer)
            reject(options.signal?.reason)
          },
          { once: true },
        )
      })
      return result
    }
  return {
    server: inner.server,
    get: late('get', (ns: string, name: string, o?: object) => inner.get(ns, name, o)),
    create: late('create', (draft: Parameters<LeaseStore['create']>[0], o?: object) =>
      inner.create(draft, o),
    ),
    update: late('update', (record: LeaseRecord, o?: object) => inner.update(record, o)),
    delete: late(
      'delete',
      (ns: string, name: string, p: { uid: string; resourceVersion: string }, o?: object) =>
        inner.delete(ns, name, p, o),
    ),
    list: (ns, o) => inner.list(ns, o),
    watch: (ns, o, onEvent) => inner.watch(ns, o, onEvent),
  }
}

beforeEach(() => {
  vi.useFakeTimers({ now: Date.UTC(2030, 0, 1) })
  memory = createMemoryLeaseStore()
})

afterEach(async () => {
  await Promise.all(opened.splice(0).map((instance) => instance.close()))
  expect(vi.getTimerCount()).toBe(0)
  expect(memory.openWatches).toBe(0)
  vi.useRealTimers()
})

describe('leases of other components', () => {
  it('an unlabelled lease (a leader election) is never written, however expired it looks', async () => {
    const foreign = memory.seed({
      namespace: NS,
      name: 'kube-scheduler',
      holderIdentity: undefined,
      leaseDurationSeconds: 15,
      acquireTime: '2001-01-01T00:00:00.000000Z',
      renewTime: '2001-01-01T00:00:00.000000Z',
      leaseTransitions: 7,
      labels: {},
      annotations: { 'control-plane.alpha.kubernetes.io/leader': 'x' },
    })
    const error = await locks()
      .acquire('kube-scheduler', { timeout: 0 })
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(LeaseNotManagedError)
    expect((error as LeaseNotManagedError).code).toBe('LEASE_NOT_MANAGED')
    expect((error as Error).message).toContain(`${NS}/kube-scheduler`)
    expect(memory.peek(NS, 'kube-scheduler')).toBe(foreign)
    expect(writes()).toEqual([])
  })

  it('a held foreign lease fails at once, even with a long timeout, and is not taken over later', async () => {
    const foreign = memory.seed({
      namespace: NS,
      name: 'node-1',
      holderIdentity: 'node-1',
      leaseDurationSeconds: 1,
      acquireTime: undefined,
      renewTime: '2001-01-01T00:00:00.000000Z',
      leaseTransitions: undefined,
      labels: { team: 'nodes' },
      annotations: {},
    })
    const attempt = track(locks().acquire('node-1', { timeout: 60 }))
    await vi.advanceTimersByTimeAsync(5000)
    expect(attempt.status).toBe('rejected')
    expect(attempt.error).toBeInstanceOf(LeaseNotManagedError)
    expect(memory.peek(NS, 'node-1')).toBe(foreign)
    expect(writes()).toEqual([])
  })

  it('fields kube-locks does not own survive acquire, renewal and release', async () => {
    const retained = {
      metadata: {
        ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: 'u-1' }],
        finalizers: ['example.com/keep'],
      },
      spec: { preferredHolder: 'someone' },
    }
    memory.seed({
      namespace: NS,
      name: 'owned',
      holderIdentity: undefined,
      leaseDurationSeconds: 20,
      acquireTime: undefined,
      renewTime: undefined,
      leaseTransitions: 1,
      labels: { ...MANAGED, team: 'a' },
      annotations: { 'kube-locks.io/name': 'owned', 'example.com/note': 'kept' },
      retained,
    })
    const lock = await locks().acquire('owned', { expires: 3, renew: true })
    expect(memory.peek(NS, 'owned')?.retained).toEqual(retained)
    await vi.advanceTimersByTimeAsync(1500)
    expect(memory.calls.filter((c) => c.operation === 'update')).toHaveLength(2)
    expect(memory.peek(NS, 'owned')?.retained).toEqual(retained)
    await lock.release()
    const after = memory.peek(NS, 'owned')
    expect(after?.holderIdentity).toBeUndefined()
    expect(after?.retained).toEqual(retained)
    expect(after?.labels).toEqual({ ...MANAGED, team: 'a' })
    expect(after?.annotations).toEqual({ 'kube-locks.io/name': 'owned', 'example.com/note': 'kept' })
  })
})

describe('writes cut short', () => {
  it('a taking write that answers after the deadline leaves no lease held by a caller that gave up', async () => {
    const holder = await locks().acquire('ghost', { expires: 60 })
    const waiters = createLocks({
      store: slowAnswers(memory, 50, new Set(['update'])),
      namespace: NS,
      identity: 'pod-b',
      clock: fakeClock,
    })
    const waiter = track(waiters.acquire('ghost', { timeout: 1 }))
    await vi.advanceTimersByTimeAsync(990)
    void holder.release()
    await vi.advanceTimersByTimeAsync(2000)
    await settle()
    const lease = memory.peek(NS, holder.leaseName)
    if (waiter.status === 'fulfilled') {
      expect(lease?.holderIdentity).toBe(waiter.value?.holder)
      expect(waiter.value?.valid).toBe(true)
    } else {
      expect(waiter.status).toBe('rejected')
      expect(lease?.holderIdentity, 'no lease held by an identity nobody owns').toBeUndefined()
    }
    const closed = waiters.close()
    await vi.advanceTimersByTimeAsync(100)
    await closed
  })

  it('close() during an acquiring write frees the lease once the write answers', async () => {
    const slow = createLocks({
      store: slowAnswers(memory, 50, new Set(['create'])),
      namespace: NS,
      identity: 'pod-b',
      clock: fakeClock,
    })
    const attempt = track(slow.acquire('closing'))
    await vi.advanceTimersByTimeAsync(10)
    const closed = slow.close()
    await vi.advanceTimersByTimeAsync(1000)
    await closed
    expect(attempt.status).toBe('rejected')
    expect(memory.peek(NS, 'closing')?.holderIdentity).toBeUndefined()
  })

  it('after a write with an unknown outcome, a caller that gives up frees the lease if it got it', async () => {
    memory.failNext('create', unknownOutcome, { phase: 'after' })
    const error = await locks()
      .acquire('unknown', { timeout: 0 })
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(LockUnavailableError)
    expect(memory.peek(NS, 'unknown')?.holderIdentity).toBeUndefined()
  })
})

describe('one attempt, short locks', () => {
  it('timeout: 0 after a lost compare-and-swap fails at once with one write', async () => {
    memory.seed({
      namespace: NS,
      name: 'race',
      holderIdentity: undefined,
      leaseDurationSeconds: 20,
      acquireTime: undefined,
      renewTime: undefined,
      leaseTransitions: 0,
      labels: MANAGED,
      annotations: { 'kube-locks.io/name': 'race' },
    })
    memory.failNext(
      'update',
      () => new LeaseConflictError({ reason: 'Conflict', leaseName: 'race', namespace: NS }),
    )
    const error = await locks()
      .acquire('race', { timeout: 0 })
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(LockTimeoutError)
    expect(writes()).toHaveLength(1)
  })

  it.each([0, 5])(
    'an expires shorter than a round trip fails with a clear error, not a spin (timeout %d)',
    async (timeout) => {
      const slow = createLocks({
        store: slowAnswers(memory, 60),
        namespace: NS,
        identity: 'p',
        clock: fakeClock,
      })
      opened.push(slow)
      const attempt = track(slow.acquire('tiny', { expires: 0.05, timeout }))
      await vi.advanceTimersByTimeAsync(1000)
      expect(attempt.status).toBe('rejected')
      expect(attempt.error).toBeInstanceOf(InvalidLockOptionsError)
      expect((attempt.error as Error).message).toMatch(/`expires`.*round trip \(60 ms measured\)/)
      expect(writes().length).toBeLessThanOrEqual(1)
    },
  )
})

describe('long timers', () => {
  it.each([3e6, 1e7])('expires of %d s with renew: true arms no hot timer', async (expires) => {
    const lock = await locks().acquire('long', { expires, renew: true })
    const before = memory.calls.length
    const timers = vi.spyOn(globalThis, 'setTimeout')
    await vi.advanceTimersByTimeAsync(10)
    expect(memory.calls.length, 'no renewal within 10 ms').toBe(before)
    expect(timers.mock.calls.length, 'no timer re-armed within 10 ms').toBe(0)
    timers.mockRestore()
    expect(lock.valid).toBe(true)
    await lock.release()
  })

  it('a requestTimeout beyond what a timer can hold is refused', () => {
    expect(() => locks({ requestTimeout: 3e6 })).toThrow(InvalidLockOptionsError)
  })
})

describe('renewals answered late', () => {
  it('a renewal whose answer comes after the deadline does not extend a lock that already ended', async () => {
    // The process is starved while the renewal is in flight: its clock passes the deadline (2.7 s
    // after the acquiring write), and the answer runs before the deadline timer has had a chance to.
    // The renewal was sent at 1 s, so a deadline counted from it (3.7 s) would still be ahead: the
    // lock must not come back to life once it has ended.
    let starved = 0
    const clock = { now: () => Date.now() + starved, wallNow: () => Date.now() + starved }
    const lock = await locks({ clock }).acquire('starved', { expires: 3, renew: true })
    const gate = memory.pause('update')
    await vi.advanceTimersByTimeAsync(1000)
    expect(gate.waiting, 'the renewal is in flight').toBe(1)
    starved = 2100
    gate.resume()
    await settle()
    expect(lock.valid).toBe(false)
    expect((lock.signal.reason as LockLostError).reason).toBe('expired')
    await lock.release()
    expect(memory.peek(NS, lock.leaseName)?.holderIdentity).toBeUndefined()
  })
})

describe('leases left held', () => {
  it('after a renewal with an unknown outcome, release still frees the lease', async () => {
    const lock = await locks().acquire('lost', { expires: 9, renew: true })
    memory.failNext('update', unknownOutcome, { phase: 'after' })
    await vi.advanceTimersByTimeAsync(3000)
    expect(lock.signal.aborted).toBe(true)
    await lock.release()
    expect(memory.peek(NS, lock.leaseName)?.holderIdentity).toBeUndefined()
  })

  it('a foreign write that kept the holder (a label added) does not keep the lease held', async () => {
    const lock = await locks().acquire('labelled', { expires: 9 })
    const current = memory.peek(NS, lock.leaseName) as LeaseRecord
    memory.seed({ ...current, labels: { ...current.labels, 'gitops/synced': 'true' } })
    await lock.release()
    const after = memory.peek(NS, lock.leaseName)
    expect(after?.holderIdentity).toBeUndefined()
    expect(after?.labels['gitops/synced']).toBe('true')
  })
})

describe('misspelt options', () => {
  it('acquire rejects an unknown key and suggests the nearest one', async () => {
    const error = await locks()
      .acquire('x', { expire: 180 } as never)
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(InvalidLockOptionsError)
    expect((error as Error).message).toContain('`expire`')
    expect((error as Error).message).toContain('did you mean `expires`')
  })

  it('withLock rejects an unknown key before running anything', async () => {
    const fn = vi.fn()
    await expect(locks().withLock('x', { limits: 3 } as never, fn)).rejects.toThrow(
      /unknown option `limits`.*did you mean `limit`/,
    )
    expect(fn).not.toHaveBeenCalled()
    expect(memory.calls).toEqual([])
  })

  it('createLocks rejects an unknown key', () => {
    expect(() => locks({ servce: 'x' } as never)).toThrow(/unknown option `servce`.*did you mean `service`/)
  })
})

describe('observations', () => {
  it('a record with the same resourceVersion but another holder counts as changed (after a restore)', () => {
    const record = memory.seed({
      namespace: NS,
      name: 'r',
      holderIdentity: 'a',
      leaseDurationSeconds: 20,
      acquireTime: undefined,
      renewTime: '2030-01-01T00:00:00.000000Z',
      leaseTransitions: 1,
      labels: MANAGED,
      annotations: {},
    })
    const first = observe(undefined, record, 0)
    expect(observe(first, { ...record }, 500).firstSeenAt).toBe(0)
    expect(observe(first, { ...record, holderIdentity: 'b' }, 500).firstSeenAt).toBe(500)
    expect(observe(first, { ...record, renewTime: '2030-01-01T00:00:05.000000Z' }, 500).firstSeenAt).toBe(500)
    expect(observe(first, { ...record, leaseTransitions: 2 }, 500).firstSeenAt).toBe(500)
  })
})

describe('safety margin', () => {
  it('scales with expires so the tolerated clock-rate difference never drops below 0.5 %', () => {
    for (const expires of [1, 20, 600, 3600, 86_400, 30 * 86_400]) {
      const { safetyMargin } = resolveAcquireOptions({ expires })
      expect(safetyMargin / expires).toBeGreaterThanOrEqual(0.005)
      expect(safetyMargin).toBeLessThan(expires)
    }
    expect(resolveAcquireOptions({ expires: 20 }).safetyMargin).toBe(2)
  })
})
