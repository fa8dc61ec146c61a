import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { HOLDER_OF_LABEL, MODE_ANNOTATION } from './constants.ts'
import { createLocks } from './create-locks.ts'
import {
  InvalidLockOptionsError,
  LockModeConflictError,
  LockTimeoutError,
  LockUnavailableError,
} from './errors.ts'
import type { Lock } from './held-lock.ts'
import type { Locks } from './locks.ts'
import type { MemoryLeaseStore } from './memory-store.ts'
import { createMemoryLeaseStore } from './memory-store.ts'
import type { LocksOptions } from './options.ts'
import { compareResourceVersions } from './resource-version.ts'
import { fakeClock, settle, track } from './testing/helpers.ts'
import { ticketDraft } from './ticket.ts'

const NS = 'shop'
let store: MemoryLeaseStore
const opened: Locks[] = []

function locks(options: LocksOptions = {}): Locks {
  const instance = createLocks({ store, namespace: NS, identity: 'pod-a', clock: fakeClock, ...options })
  opened.push(instance)
  return instance
}

/** The holder records of a lock, as stored. */
function records(leaseName: string) {
  return store.list(NS, { labelSelector: `${HOLDER_OF_LABEL}=${leaseName}` }).then((list) => list.items)
}

beforeEach(() => {
  vi.useFakeTimers({ now: Date.UTC(2030, 0, 1) })
  store = createMemoryLeaseStore()
})

afterEach(async () => {
  await Promise.all(opened.splice(0).map((instance) => instance.close()))
  expect(vi.getTimerCount()).toBe(0)
  expect(store.openWatches).toBe(0)
  vi.useRealTimers()
})

describe('options', () => {
  it.each([
    [{ limit: 0 }, /`limit` to be a whole number from 1 to 1000, got `0`/],
    [{ limit: 2.5 }, /`limit` to be a whole number/],
    [{ limit: '3' }, /`limit` to be a whole number/],
    [{ limit: 3, shared: true }, /`shared` to be absent or false when `limit` is given/],
    [{ shared: 'yes' }, /`shared` to be a boolean/],
  ])('refuses %o before any request', async (options, message) => {
    const client = locks()
    const error = await client.acquire('x', options as never).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(InvalidLockOptionsError)
    expect((error as Error).message).toMatch(message)
    expect(store.calls).toEqual([])
  })
})

describe('semaphore', () => {
  it('lets `limit` holders in at once, each with its own lease and token; the next waits', async () => {
    const client = locks()
    const held = [
      await client.acquire('partner-api', { limit: 2 }),
      await client.acquire('partner-api', { limit: 2 }),
    ]
    expect(new Set(held.map((lock) => lock.leaseName)).size).toBe(2)
    expect(held.map((lock) => lock.leaseName)).toEqual([
      expect.stringMatching(/^partner-api\.h-[a-z2-7]{16}$/),
      expect.stringMatching(/^partner-api\.h-[a-z2-7]{16}$/),
    ])
    expect(compareResourceVersions(held[1]?.fencingToken ?? '', held[0]?.fencingToken ?? '')).toBe(1)
    expect(store.peek(NS, 'partner-api')?.annotations).toMatchObject({
      [MODE_ANNOTATION]: 'semaphore',
      'kube-locks.io/limit': '2',
    })
    const third = track(client.acquire('partner-api', { limit: 2, timeout: 30 }))
    await settle()
    expect(third.status).toBe('pending')
    await held[0]?.release()
    await vi.advanceTimersByTimeAsync(0)
    expect(third.status).toBe('fulfilled')
    // Release deletes the holder's record; what is left is the two that hold.
    expect((await records('partner-api')).map((r) => r.name).sort()).toEqual(
      [held[1]?.leaseName, third.value?.leaseName].sort(),
    )
    await held[1]?.release()
    await third.value?.release()
    expect(await records('partner-api')).toEqual([])
  })

  it('a free slot costs its record, one read of the lock, one list of its holders and one of its line', async () => {
    const client = locks()
    const first = await client.acquire('pool', { limit: 2 })
    const before = store.calls.length
    const slot = await client.acquire('pool', { limit: 2 })
    await slot.release()
    expect(store.calls.slice(before).map((call) => call.operation)).toEqual([
      'create',
      'get',
      'list',
      'list',
      'delete',
    ])
    const unfair = store.calls.length
    const again = await client.acquire('pool', { limit: 2, fair: false })
    expect(store.calls.slice(unfair).map((call) => call.operation)).toEqual(['create', 'get', 'list'])
    await again.release()
    await first.release()
  })

  it('a waiter that gets a slot reads the lock and its holders, and renews its record first', async () => {
    const client = locks()
    const held = await client.acquire('pool', { limit: 1 })
    const waiter = track(client.acquire('pool', { limit: 1, timeout: 60 }))
    await vi.advanceTimersByTimeAsync(5_000)
    const before = store.calls.length
    await held.release()
    await vi.advanceTimersByTimeAsync(0)
    expect(waiter.status).toBe('fulfilled')
    // The line comes from the watch, which is running: no list of it.
    expect(store.calls.slice(before).map((call) => call.operation)).toEqual([
      'delete',
      'update',
      'get',
      'list',
    ])
    await waiter.value?.release()
  })

  it('a waiter renews its record while it waits, and reads nothing while nothing changes', async () => {
    const client = locks()
    const held = await client.acquire('pool', { limit: 1, expires: 60 })
    const waiter = track(client.acquire('pool', { limit: 1, expires: 6, timeout: 60 }))
    await vi.advanceTimersByTimeAsync(1_000)
    const before = store.calls.length
    await vi.advanceTimersByTimeAsync(30_000)
    const during = store.calls.slice(before).map((call) => call.operation)
    // Every 2 s (`expires / 3`) one renewal of its record; no read of the lock, no list.
    expect(during.filter((operation) => operation === 'update').length).toBeGreaterThanOrEqual(14)
    expect(during.filter((operation) => operation !== 'update')).toEqual([])
    expect(waiter.status).toBe('pending')
    await held.release()
    await vi.advanceTimersByTimeAsync(0)
    await waiter.value?.release()
  })

  it('serves waiters in the order they came', async () => {
    const client = locks()
    const first = await client.acquire('pool', { limit: 1 })
    const waiters = [1, 2, 3].map(() => track(client.acquire('pool', { limit: 1, timeout: 60 })))
    await settle()
    for (const waiter of waiters) {
      await vi.advanceTimersByTimeAsync(100)
      expect(waiter.status).toBe('pending')
    }
    let holder: Lock | undefined = first
    for (const waiter of waiters) {
      await holder?.release()
      await vi.advanceTimersByTimeAsync(0)
      expect(waiters.map((w) => w.status)).toEqual(
        waiters.map((w) => (waiters.indexOf(w) <= waiters.indexOf(waiter) ? 'fulfilled' : 'pending')),
      )
      holder = waiter.value
    }
    await holder?.release()
  })

  it('fails at once with `timeout: 0` when full, and leaves no record behind', async () => {
    const client = locks()
    const held = await client.acquire('pool', { limit: 1 })
    const error = await client.acquire('pool', { limit: 1, timeout: 0 }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(LockTimeoutError)
    expect((await records('pool')).map((r) => r.name)).toEqual([held.leaseName])
    await held.release()
  })

  it('a holder that dies stops counting once its record expires', async () => {
    const crashed = locks({ identity: 'crashed' })
    await crashed.acquire('pool', { limit: 1, expires: 5 })
    // Its process is gone: nothing renews or releases (a close would release).
    const waiter = track(locks().acquire('pool', { limit: 1, timeout: 30 }))
    await vi.advanceTimersByTimeAsync(5_000)
    expect(waiter.status).toBe('pending')
    await vi.advanceTimersByTimeAsync(1_100)
    expect(waiter.status).toBe('fulfilled')
    await waiter.value?.release()
  })

  it("a waiter cut off past its record's validity joins again at the back, never keeps its place", async () => {
    const holder = await locks().acquire('pool', { limit: 1, expires: 60 })
    // Client B's requests do not get through for a while (its network is cut).
    let cut = false
    const requests = new Set<unknown>(['get', 'list', 'create', 'update', 'delete'])
    const cutStore = new Proxy(store, {
      get(target, key, receiver) {
        if (requests.has(key) && cut) {
          return () =>
            Promise.reject(
              new LockUnavailableError({ server: 'memory', problem: 'refused', outcomeUnknown: false }),
            )
        }
        const value = Reflect.get(target, key, receiver)
        return typeof value === 'function' ? value.bind(target) : value
      },
    })
    const cutOff = track(
      locks({ store: cutStore, identity: 'cut-off' }).acquire('pool', { limit: 1, expires: 5, timeout: 60 }),
    )
    await vi.advanceTimersByTimeAsync(100)
    cut = true
    // Long enough for everyone else to pass it as gone (5 s + 1 s grace unchanged).
    await vi.advanceTimersByTimeAsync(7_000)
    const later = track(locks({ identity: 'later' }).acquire('pool', { limit: 1, timeout: 60 }))
    await vi.advanceTimersByTimeAsync(100)
    await holder.release()
    // `later` passes the cut-off waiter once it has itself seen its record unchanged for 5 s + 1 s.
    await vi.advanceTimersByTimeAsync(5_000)
    expect(later.status).toBe('pending')
    await vi.advanceTimersByTimeAsync(1_100)
    expect(later.status).toBe('fulfilled')
    cut = false
    await vi.advanceTimersByTimeAsync(10_000)
    expect(later.value?.valid).toBe(true)
    expect(cutOff.status).toBe('pending')
    await later.value?.release()
    // Its retries back off while the network was cut: the next one finds the slot free.
    await vi.advanceTimersByTimeAsync(10_000)
    expect(cutOff.status).toBe('fulfilled')
    await cutOff.value?.release()
  })

  it('deletes every record whose create went unanswered, and does not wait behind its own', async () => {
    const client = locks()
    const held = await client.acquire('pool', { limit: 1 })
    const lost = () =>
      new LockUnavailableError({ server: 'memory', problem: 'timed out', outcomeUnknown: true, status: 504 })
    // Two creates apply, but their answers are lost.
    store.failNext('create', lost, { phase: 'after', times: 2 })
    const waiter = track(client.acquire('pool', { limit: 1, timeout: 60 }))
    await vi.advanceTimersByTimeAsync(5_000)
    expect(waiter.status).toBe('pending')
    await held.release()
    await vi.advanceTimersByTimeAsync(100)
    expect(waiter.status).toBe('fulfilled')
    expect((await records('pool')).map((r) => r.name)).toEqual([waiter.value?.leaseName])
    await waiter.value?.release()
    expect(await records('pool')).toEqual([])
  })

  it('refuses a limit other than the one in use, naming it', async () => {
    const client = locks()
    const held = await client.acquire('pool', { limit: 3 })
    const error = await client.acquire('pool', { limit: 5 }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(LockModeConflictError)
    expect((error as Error).message).toMatch(
      /used as a semaphore \(limit 3\), but this call asked for a semaphore \(limit 5\)/,
    )
    const shared = await client.acquire('pool', { shared: true }).catch((e: unknown) => e)
    expect(shared).toBeInstanceOf(LockModeConflictError)
    expect((await records('pool')).map((r) => r.name)).toEqual([held.leaseName])
    await held.release()
    // Once nobody holds it, the name may be used with another limit.
    const other = await client.acquire('pool', { limit: 5 })
    await other.release()
  })

  it('renews with `renew: true`, keeping its place in line', async () => {
    const client = locks()
    const held = await client.acquire('pool', { limit: 1, expires: 3, renew: true })
    const waiter = track(client.acquire('pool', { limit: 1, timeout: 20 }))
    await vi.advanceTimersByTimeAsync(10_000)
    expect(held.valid).toBe(true)
    expect(waiter.status).toBe('pending')
    await held.release()
    await vi.advanceTimersByTimeAsync(0)
    expect(waiter.status).toBe('fulfilled')
    await waiter.value?.release()
  })
})

describe('shared and exclusive', () => {
  it('lets shared holders in together; an exclusive acquirer waits for all of them', async () => {
    const client = locks()
    const readers = [
      await client.acquire('account-7', { shared: true }),
      await client.acquire('account-7', { shared: true }),
      await client.acquire('account-7', { shared: true }),
    ]
    const writer = track(client.acquire('account-7', { timeout: 30 }))
    await settle()
    for (const reader of readers.slice(0, 2)) {
      await reader.release()
      await vi.advanceTimersByTimeAsync(0)
      expect(writer.status).toBe('pending')
    }
    await readers[2]?.release()
    await vi.advanceTimersByTimeAsync(0)
    expect(writer.status).toBe('fulfilled')
    const token = writer.value?.fencingToken ?? ''
    for (const reader of readers) expect(compareResourceVersions(token, reader.fencingToken)).toBe(1)
    await writer.value?.release()
  })

  it('shared acquirers wait while an exclusive holder holds, then all get in', async () => {
    const client = locks()
    const writer = await client.acquire('account-7')
    const readers = [1, 2].map(() => track(client.acquire('account-7', { shared: true, timeout: 30 })))
    await vi.advanceTimersByTimeAsync(1000)
    expect(readers.map((r) => r.status)).toEqual(['pending', 'pending'])
    // Backed off: no record while waiting for an exclusive holder.
    expect(await records('account-7')).toEqual([])
    await writer.release()
    await vi.advanceTimersByTimeAsync(0)
    expect(readers.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled'])
    for (const reader of readers) {
      expect(compareResourceVersions(reader.value?.fencingToken ?? '', writer.fencingToken)).toBe(1)
      await reader.value?.release()
    }
  })

  it('a waiting exclusive acquirer is not overtaken by shared acquirers that come after it', async () => {
    const client = locks()
    const first = await client.acquire('account-7', { shared: true })
    const writer = track(client.acquire('account-7', { timeout: 30 }))
    await settle()
    const late = track(client.acquire('account-7', { shared: true, timeout: 30 }))
    await vi.advanceTimersByTimeAsync(1000)
    expect([writer.status, late.status]).toEqual(['pending', 'pending'])
    await first.release()
    await vi.advanceTimersByTimeAsync(0)
    expect([writer.status, late.status]).toEqual(['fulfilled', 'pending'])
    await writer.value?.release()
    await vi.advanceTimersByTimeAsync(0)
    expect(late.status).toBe('fulfilled')
    await late.value?.release()
  })

  it('in a fair line, shared acquirers that come after a waiting exclusive acquirer go after it', async () => {
    const client = locks()
    const first = await client.acquire('account-7')
    const writer = track(client.acquire('account-7', { timeout: 30 }))
    await vi.advanceTimersByTimeAsync(100)
    const reader = track(client.acquire('account-7', { shared: true, timeout: 30 }))
    await vi.advanceTimersByTimeAsync(100)
    await first.release()
    await vi.advanceTimersByTimeAsync(100)
    expect([writer.status, reader.status]).toEqual(['fulfilled', 'pending'])
    await writer.value?.release()
    await vi.advanceTimersByTimeAsync(100)
    expect(reader.status).toBe('fulfilled')
    await reader.value?.release()
  })

  it('a shared acquirer waits behind an exclusive waiter already in line, unless `fair: false`', async () => {
    // A waiter in line whose process stopped: its ticket counts until it expires (15 s + 1 s grace).
    await store.create(
      ticketDraft({
        namespace: NS,
        leaseName: 'account-7',
        lockName: 'account-7',
        identity: 'stopped-writer',
        durationSeconds: 15,
        annotations: {},
        wallNow: Date.now(),
      }),
    )
    const client = locks()
    const unfair = await client.acquire('account-7', { shared: true, fair: false, timeout: 0 })
    await unfair.release()
    const reader = track(client.acquire('account-7', { shared: true, timeout: 30 }))
    await vi.advanceTimersByTimeAsync(15_000)
    expect(reader.status).toBe('pending')
    await vi.advanceTimersByTimeAsync(1_100)
    expect(reader.status).toBe('fulfilled')
    await reader.value?.release()
  })

  it("a shared holder's token is greater than an exclusive holder's that was in before it, however late its record", async () => {
    // Retried soon enough that the reader's record needs no renewal before its next check.
    const client = locks({ retryInterval: 0.1 })
    await (await client.acquire('account-7')).release()
    // The reader's record is written, then its check fails and is retried a little later…
    store.failNext(
      'list',
      () => new LockUnavailableError({ server: 'memory', problem: 'refused', outcomeUnknown: false }),
    )
    const reader = track(client.acquire('account-7', { shared: true, timeout: 30 }))
    await settle()
    // … while a writer comes and goes.
    const writer = await client.acquire('account-7', { timeout: 0 })
    await writer.release()
    await vi.advanceTimersByTimeAsync(300)
    expect(reader.status).toBe('fulfilled')
    expect(compareResourceVersions(reader.value?.fencingToken ?? '', writer.fencingToken)).toBe(1)
    await reader.value?.release()
  })

  it('an exclusive acquirer that times out waiting for shared holders hands its lease back', async () => {
    const client = locks()
    const reader = await client.acquire('account-7', { shared: true })
    const error = await client.acquire('account-7', { timeout: 0 }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(LockTimeoutError)
    expect(store.peek(NS, 'account-7')?.holderIdentity).toBeUndefined()
    // And the reader's hold is untouched: another shared holder still gets in at once.
    const second = await client.acquire('account-7', { shared: true, timeout: 0 })
    expect(reader.valid).toBe(true)
    await second.release()
    await reader.release()
  })

  it('an exclusive acquirer that gave up waiting leaves the lease marked for the next one', async () => {
    const client = locks()
    const reader = await client.acquire('account-7', { shared: true, expires: 60, renew: true })
    // The free lease is deleted (as the controller collects free leases): the next writer creates it.
    store.remove(NS, 'account-7')
    const first = track(client.acquire('account-7', { timeout: 1 }))
    await vi.advanceTimersByTimeAsync(1_500)
    expect(first.error).toBeInstanceOf(LockTimeoutError)
    const second = await client.acquire('account-7', { timeout: 0 }).catch((e: unknown) => e)
    expect(second).toBeInstanceOf(LockTimeoutError)
    expect(reader.valid).toBe(true)
    await reader.release()
    const writer = await client.acquire('account-7', { timeout: 0 })
    // The writer found nobody left: it drops the mark, so later writers need not look again.
    await writer.release()
    expect(store.peek(NS, 'account-7')?.annotations[MODE_ANNOTATION]).toBeUndefined()
  })

  it('an exclusive holder waiting for shared holders keeps its lease renewed', async () => {
    const client = locks()
    const reader = await client.acquire('account-7', { shared: true, expires: 60, renew: true })
    const writer = track(client.acquire('account-7', { expires: 3, timeout: 30 }))
    await vi.advanceTimersByTimeAsync(20_000)
    expect(writer.status).toBe('pending')
    expect(store.peek(NS, 'account-7')?.holderIdentity).toMatch(/^pod-a_/)
    await reader.release()
    await vi.advanceTimersByTimeAsync(0)
    expect(writer.status).toBe('fulfilled')
    expect(writer.value?.valid).toBe(true)
    await writer.value?.release()
  })

  it('semaphore waiters step aside for an exclusive acquirer, which waits only for the holders', async () => {
    const client = locks()
    const holder = await client.acquire('pool', { limit: 1 })
    const waiter = track(client.acquire('pool', { limit: 1, timeout: 60 }))
    await vi.advanceTimersByTimeAsync(100)
    const writer = track(client.acquire('pool', { timeout: 30 }))
    await vi.advanceTimersByTimeAsync(100)
    expect([waiter.status, writer.status]).toEqual(['pending', 'pending'])
    await holder.release()
    await vi.advanceTimersByTimeAsync(100)
    expect([waiter.status, writer.status]).toEqual(['pending', 'fulfilled'])
    await writer.value?.release()
    await vi.advanceTimersByTimeAsync(100)
    expect(waiter.status).toBe('fulfilled')
    await waiter.value?.release()
  })

  it('a shared holder whose process died stops blocking once its record expires', async () => {
    await locks({ identity: 'crashed' }).acquire('account-7', { shared: true, expires: 5 })
    const writer = track(locks().acquire('account-7', { timeout: 30 }))
    await vi.advanceTimersByTimeAsync(5_000)
    expect(writer.status).toBe('pending')
    await vi.advanceTimersByTimeAsync(1_100)
    expect(writer.status).toBe('fulfilled')
    await writer.value?.release()
  })

  it('close() releases shared holds and ends shared waiters', async () => {
    const client = locks()
    const writer = await locks({ identity: 'pod-b' }).acquire('account-7')
    const reader = await client.acquire('other', { shared: true })
    const waiting = track(client.acquire('account-7', { shared: true, timeout: 30 }))
    await settle()
    await client.close()
    expect(reader.signal.aborted).toBe(true)
    expect(waiting.status).toBe('rejected')
    expect(await records('other')).toEqual([])
    expect(await records('account-7')).toEqual([])
    await writer.release()
  })
})
