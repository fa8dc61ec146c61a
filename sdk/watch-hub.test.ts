import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, QUEUE_LABEL, WAITS_FOR_ANNOTATION } from './constants.ts'
import { createLocks } from './create-locks.ts'
import { LockUnavailableError, WatchExpiredError } from './errors.ts'
import { holderDraft } from './holders.ts'
import type { LeaseDraft } from './lease-record.ts'
import type { LeaseEvent, LeaseStore, WatchOptions } from './lease-store.ts'
import type { MemoryLeaseStore } from './memory-store.ts'
import { createMemoryLeaseStore } from './memory-store.ts'
import { fakeClock, settle, track } from './testing/helpers.ts'
import { setClampedTimeout } from './timers.ts'
import type { HubEvent, QueueNews, WatchHubOptions } from './watch-hub.ts'
import { STALL_MARGIN_SECONDS, WatchHub } from './watch-hub.ts'

const NS = 'shop'
const silent = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} }
let memory: MemoryLeaseStore
const hubs: WatchHub[] = []

function draft(name: string, holderIdentity: string | undefined = 'someone'): LeaseDraft {
  return {
    namespace: NS,
    name,
    holderIdentity,
    leaseDurationSeconds: 20,
    acquireTime: undefined,
    renewTime: undefined,
    leaseTransitions: 0,
    labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE },
    annotations: {},
  }
}

function hub(store: LeaseStore = memory, options: Partial<WatchHubOptions> = {}): WatchHub {
  const created = new WatchHub(store, NS, {
    logger: silent,
    retryIntervalMs: 1000,
    random: () => 0.5,
    now: () => performance.now(),
    ...options,
  })
  hubs.push(created)
  return created
}

function recorder() {
  const events: HubEvent[] = []
  const listener = (event: HubEvent) => events.push(event)
  const leases = () => events.filter((event) => event.type === 'lease')
  const health = () => events.filter((event) => event.type === 'health').map((event) => event.healthy)
  return { events, listener, leases, health }
}

beforeEach(() => {
  vi.useFakeTimers({ now: Date.UTC(2030, 0, 1) })
  memory = createMemoryLeaseStore()
})

afterEach(async () => {
  await Promise.all(hubs.splice(0).map((created) => created.close()))
  expect(vi.getTimerCount()).toBe(0)
  expect(memory.openWatches).toBe(0)
  vi.useRealTimers()
})

describe('a late subscriber learns what the running hub has seen', () => {
  it('replays the newest version of a lease that changed before it subscribed', async () => {
    const watched = hub()
    const first = recorder()
    watched.subscribe('other', first.listener)
    await settle()
    const held = memory.seed(draft('orders'))
    const freed = memory.seed({ ...draft('orders'), holderIdentity: undefined })
    await settle()
    expect(compareOrder(freed.resourceVersion, held.resourceVersion)).toBe(true)

    const late = recorder()
    watched.subscribe('orders', late.listener)
    await settle()
    expect(late.leases()).toEqual([{ type: 'lease', lease: freed, resourceVersion: freed.resourceVersion }])
    // One watch served both, and nothing was read again.
    expect(memory.calls.map((call) => call.operation)).toEqual(['list', 'watch'])
  })

  it('replays a deletion with the resourceVersion of the deletion', async () => {
    let deletedAt: string | undefined
    memory = createMemoryLeaseStore({
      onChange: (event) => {
        if (event.type === 'DELETED') deletedAt = event.lease.resourceVersion
      },
    })
    memory.seed(draft('orders'))
    const watched = hub()
    watched.subscribe('other', recorder().listener)
    await settle()
    memory.remove(NS, 'orders')
    await settle()
    expect(deletedAt).toBeDefined()

    const late = recorder()
    watched.subscribe('orders', late.listener)
    await settle()
    expect(late.leases()).toEqual([{ type: 'lease', lease: undefined, resourceVersion: deletedAt }])
  })

  it('replays leases from the first list, and nothing for a name it never saw', async () => {
    const listed = memory.seed(draft('orders'))
    const watched = hub()
    watched.subscribe('other', recorder().listener)
    await settle()
    const late = recorder()
    watched.subscribe('orders', late.listener)
    const never = recorder()
    watched.subscribe('never-seen', never.listener)
    await settle()
    expect(late.leases()).toEqual([{ type: 'lease', lease: listed, resourceVersion: listed.resourceVersion }])
    expect(never.leases()).toEqual([])
  })

  it('keeps a bounded number of deletions, forgetting the oldest first', async () => {
    const watched = hub(memory, { maxTombstones: 3 })
    watched.subscribe('other', recorder().listener)
    await settle()
    for (const name of ['d1', 'd2', 'd3', 'd4']) {
      memory.seed(draft(name))
      memory.remove(NS, name)
    }
    await settle()
    const oldest = recorder()
    const newest = recorder()
    watched.subscribe('d1', oldest.listener)
    watched.subscribe('d4', newest.listener)
    await settle()
    expect(oldest.leases()).toEqual([])
    expect(newest.leases()).toHaveLength(1)
    expect(watched.knownLeaseCount).toBe(3)
  })

  it('after a fresh list, a lease missing from it counts as deleted at the list', async () => {
    memory.seed(draft('orders'))
    const watched = hub()
    watched.subscribe('other', recorder().listener)
    await settle()
    memory.compact()
    memory.endWatches(new WatchExpiredError())
    // Deleted while the hub lists again: its watch is gone, so only the list can tell.
    memory.remove(NS, 'orders')
    await settle()
    expect(memory.calls.filter((call) => call.operation === 'list')).toHaveLength(2)
    const late = recorder()
    watched.subscribe('orders', late.listener)
    await settle()
    expect(late.leases()).toHaveLength(1)
    expect(late.leases()[0]).toMatchObject({ lease: undefined })
  })

  it('forgets everything when it stops; a new run announces its first list', async () => {
    const watched = hub()
    const unsubscribe = watched.subscribe('other', recorder().listener)
    await settle()
    const seen = memory.seed(draft('orders'))
    await settle()
    unsubscribe()
    await settle()
    expect(watched.knownLeaseCount).toBe(0)
    const late = recorder()
    watched.subscribe('orders', late.listener)
    await settle()
    // Once, from the list: not a replay of the old run's state as well.
    expect(late.leases()).toEqual([{ type: 'lease', lease: seen, resourceVersion: seen.resourceVersion }])
  })
})

/**
 * The memory store behind a server that ends every watch after `timeoutSeconds`, as the API server
 * does; `stall()` makes the open watch go silent (events are swallowed and the stream never ends), as
 * a half-open connection would.
 */
function serverTimeoutStore(inner: MemoryLeaseStore, timeoutSeconds: number) {
  let stalled = false
  const watch = (namespace: string, options: WatchOptions, onEvent: (event: LeaseEvent) => void) => {
    const controller = new AbortController()
    const signal = options.signal ? AbortSignal.any([options.signal, controller.signal]) : controller.signal
    let silent = false
    const timer = setClampedTimeout(() => {
      if (!stalled) controller.abort()
      else silent = true
    }, timeoutSeconds * 1000)
    return inner
      .watch(namespace, { ...options, signal }, (event) => {
        if (stalled) silent = true
        if (!silent) onEvent(event)
      })
      .finally(() => clearTimeout(timer))
  }
  const store: LeaseStore = {
    server: inner.server,
    watchTimeoutSeconds: timeoutSeconds,
    get: (namespace, name, options) => inner.get(namespace, name, options),
    create: (d, options) => inner.create(d, options),
    update: (record, options) => inner.update(record, options),
    delete: (namespace, name, preconditions, options) =>
      inner.delete(namespace, name, preconditions, options),
    list: (namespace, options) => inner.list(namespace, options),
    watch,
  }
  return {
    store,
    stall() {
      stalled = true
    },
    recover() {
      stalled = false
    },
  }
}

describe('a stalled watch', () => {
  it('counts as unhealthy within watchTimeoutSeconds + the margin of its last event', async () => {
    const server = serverTimeoutStore(memory, 15)
    const watched = hub(server.store)
    const seen = recorder()
    watched.subscribe('orders', seen.listener)
    await settle()
    expect(watched.healthy).toBe(true)
    // A quiet but live watch stays healthy across the server's timeouts.
    await vi.advanceTimersByTimeAsync(60_000)
    expect(seen.health()).toEqual([true])
    expect(watched.healthy).toBe(true)
    expect(memory.calls.filter((call) => call.operation === 'watch').length).toBe(5)

    memory.seed(draft('orders'))
    await settle()
    server.stall()
    const lastEventAt = Date.now()
    memory.seed({ ...draft('orders'), holderIdentity: undefined })
    const bound = (15 + STALL_MARGIN_SECONDS) * 1000
    await vi.advanceTimersByTimeAsync(bound - 1)
    expect(seen.health()).toEqual([true])
    await vi.advanceTimersByTimeAsync(1)
    expect(seen.health()).toEqual([true, false])
    expect(Date.now() - lastEventAt).toBe(bound)
    expect(watched.failing).toBe(true)

    // The connection comes back: the new watch resumes from the last resourceVersion, delivers the
    // swallowed release, and the hub is healthy again.
    server.recover()
    await vi.advanceTimersByTimeAsync(2000)
    expect(seen.leases().at(-1)).toMatchObject({ lease: { holderIdentity: undefined } })
    expect(watched.healthy).toBe(true)
    expect(watched.failing).toBe(false)
  })

  it('makes waiters poll while it is suspect', async () => {
    const server = serverTimeoutStore(memory, 15)
    const watched = hub(server.store)
    const seen = recorder()
    watched.subscribe('orders', seen.listener)
    await settle()
    server.stall()
    await vi.advanceTimersByTimeAsync((15 + STALL_MARGIN_SECONDS) * 1000)
    expect(watched.failing).toBe(true)
    // The next watch stalls as well: the hub stays failing (waiters keep polling), not healthy again
    // just because a new request was sent.
    await vi.advanceTimersByTimeAsync(5000)
    expect(watched.failing).toBe(true)
    expect(seen.health()).toEqual([true, false])
  })
})

describe('waiters during a stalled watch', () => {
  it('poll once the stall is suspected, and take a release the stalled watch never delivered', async () => {
    const server = serverTimeoutStore(memory, 15)
    const holder = createLocks({ store: memory, namespace: NS, identity: 'pod-a', clock: fakeClock })
    const waiting = createLocks({ store: server.store, namespace: NS, identity: 'pod-b', clock: fakeClock })
    try {
      const a = await holder.acquire('orders', { expires: 120 })
      const b = track(waiting.acquire('orders', { timeout: 100 }))
      await settle()
      server.stall()
      const releasedAt = Date.now()
      await a.release()
      const bound = (15 + STALL_MARGIN_SECONDS) * 1000
      await vi.advanceTimersByTimeAsync(bound - 1)
      expect(b.status).toBe('pending')
      // Suspected at the bound; the first poll comes within 1.5 retry intervals (jitter) after it.
      await vi.advanceTimersByTimeAsync(1 + 1500)
      expect(b.status).toBe('fulfilled')
      expect((b.settledAt ?? 0) - releasedAt).toBeLessThanOrEqual(bound + 1500)
      await b.value?.release()
    } finally {
      await Promise.all([holder.close(), waiting.close()])
    }
  })
})

/** A store whose watches end at once without an event, as a misbehaving server or proxy would. */
function endsAtOnceStore(inner: MemoryLeaseStore) {
  const watchCalls: number[] = []
  let atOnce = true
  const store: LeaseStore = {
    server: inner.server,
    get: (namespace, name, options) => inner.get(namespace, name, options),
    create: (d, options) => inner.create(d, options),
    update: (record, options) => inner.update(record, options),
    delete: (namespace, name, preconditions, options) =>
      inner.delete(namespace, name, preconditions, options),
    list: (namespace, options) => inner.list(namespace, options),
    async watch(namespace, options, onEvent) {
      watchCalls.push(Date.now())
      // A cap, so that a hub that re-watches in a tight loop fails this test instead of hanging it.
      if (atOnce && watchCalls.length < 10_000) return
      await inner.watch(namespace, options, onEvent)
    },
  }
  return {
    store,
    watchCalls,
    behave() {
      atOnce = false
    },
    misbehave() {
      atOnce = true
    },
  }
}

describe('a watch that ends at once', () => {
  it('is retried with a growing, capped backoff, and waiters poll meanwhile', async () => {
    const server = endsAtOnceStore(memory)
    const watched = hub(server.store)
    const seen = recorder()
    const start = Date.now()
    watched.subscribe('orders', seen.listener)
    await vi.advanceTimersByTimeAsync(60_000)
    const perSecond = new Map<number, number>()
    for (const at of server.watchCalls) {
      const second = Math.floor((at - start) / 1000)
      perSecond.set(second, (perSecond.get(second) ?? 0) + 1)
    }
    expect(Math.max(...perSecond.values())).toBeLessThanOrEqual(2)
    // 0, 0 (the first end may be a server restart), then 1, 2, 4, 8, 8, … s apart (jitter fixed at 1×).
    expect(server.watchCalls.map((at) => (at - start) / 1000)).toEqual([
      0, 0, 1, 3, 7, 15, 23, 31, 39, 47, 55,
    ])
    expect(watched.failing).toBe(true)
    expect(seen.health()).toEqual([true, false])
  })

  it('resets the backoff once a watch delivered an event', async () => {
    const server = endsAtOnceStore(memory)
    const watched = hub(server.store)
    const seen = recorder()
    watched.subscribe('orders', seen.listener)
    await vi.advanceTimersByTimeAsync(20_000)
    server.behave()
    await vi.advanceTimersByTimeAsync(10_000)
    memory.seed(draft('orders'))
    await settle()
    expect(watched.healthy).toBe(true)
    expect(seen.health()).toEqual([true, false, true])

    server.misbehave()
    const before = server.watchCalls.length
    memory.endWatches()
    await settle()
    // The good watch ends: resumed at once; that one ends at once too (it may be a server restart):
    // again at once; only the next waits, and only the base interval.
    expect(server.watchCalls.length).toBe(before + 2)
    await vi.advanceTimersByTimeAsync(999)
    expect(server.watchCalls.length).toBe(before + 2)
    await vi.advanceTimersByTimeAsync(1)
    expect(server.watchCalls.length).toBe(before + 3)
  })

  it('resets the backoff once a watch lived long, even without events', async () => {
    const server = endsAtOnceStore(memory)
    const watched = hub(server.store)
    const seen = recorder()
    watched.subscribe('orders', seen.listener)
    await vi.advanceTimersByTimeAsync(20_000)
    server.behave()
    await vi.advanceTimersByTimeAsync(30_000)
    // Open and silent, after flapping: still suspect (this store promises no end of its own).
    expect(watched.healthy).toBe(false)
    server.misbehave()
    const before = server.watchCalls.length
    memory.endWatches()
    await settle()
    expect(seen.health()).toEqual([true, false, true, false])
    expect(server.watchCalls.length).toBe(before + 2)
    await vi.advanceTimersByTimeAsync(1000)
    expect(server.watchCalls.length).toBe(before + 3)
  })
})

function compareOrder(a: string, b: string): boolean {
  return BigInt(a) > BigInt(b)
}

describe('a server that throttles', () => {
  it('is watched again no sooner than its Retry-After', async () => {
    const watched = hub()
    watched.subscribe('orders', recorder().listener)
    await settle()
    const watches = () => memory.calls.filter((call) => call.operation === 'watch').length
    const before = watches()
    memory.endWatches(
      new LockUnavailableError({
        server: 'memory',
        problem: 'answered 429',
        outcomeUnknown: false,
        status: 429,
        retryAfterMs: 7000,
      }),
    )
    // The usual backoff would be 1 s (retryInterval, no jitter here).
    await vi.advanceTimersByTimeAsync(6900)
    expect(watches()).toBe(before)
    await vi.advanceTimersByTimeAsync(200)
    expect(watches()).toBe(before + 1)
  })
})

describe('the line of a lock', () => {
  const ticket = (name: string, lock: string) => ({
    ...draft(name),
    labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [QUEUE_LABEL]: lock },
    annotations: { [WAITS_FOR_ANNOTATION]: lock },
  })

  /** What a queue subscriber was told, in words: the whole line, or one ticket's change. */
  const told = (news: QueueNews) =>
    news.kind === 'line'
      ? `line ${news.tickets.map((t) => t.name).sort()}`
      : `${news.deleted ? 'deleted' : 'changed'} ${news.ticket.name}`

  it('tells its subscribers the line, then each change alone, and never the lock subscribers', async () => {
    memory.seed(ticket('orders.q-a', 'orders'))
    const watched = hub()
    const lock = recorder()
    const lines: string[] = []
    watched.subscribe('orders', lock.listener)
    watched.subscribeQueue('orders', (news) => lines.push(told(news)))
    await settle()
    memory.seed(ticket('orders.q-b', 'orders'))
    memory.seed(ticket('other.q-c', 'other'))
    await settle()
    memory.remove(NS, 'orders.q-a')
    await settle()
    expect(lines).toEqual(['line orders.q-a', 'changed orders.q-b', 'deleted orders.q-a'])
    expect(lock.leases().filter((event) => event.lease !== undefined)).toEqual([])
    expect(watched.queue('orders')?.tickets.map((t) => t.name)).toEqual(['orders.q-b'])
  })

  it('is replayed to a late subscriber, and unknown while the hub has not listed', async () => {
    memory.seed(ticket('orders.q-a', 'orders'))
    const watched = hub()
    expect(watched.queue('orders')).toBeUndefined()
    watched.subscribe('anything', recorder().listener)
    await settle()
    const late: string[] = []
    watched.subscribeQueue('orders', (news) => late.push(told(news)))
    await settle()
    expect(late).toEqual(['line orders.q-a'])
  })
})

describe('the holder records of a lock', () => {
  const record = (name: string, lock: string) =>
    holderDraft({
      namespace: NS,
      leaseName: lock,
      lockName: lock,
      identity: `holder-${name}`,
      mode: { kind: 'semaphore', limit: 2 },
      durationSeconds: 20,
      annotations: {},
      wallNow: 0,
      name,
    })

  it('are indexed by lock and wake their subscribers, never the lock subscribers', async () => {
    const watched = hub()
    let woken = 0
    const lock = recorder()
    watched.subscribeHolders('pool', () => woken++)
    watched.subscribe('pool', lock.listener)
    expect(watched.holders('pool')).toBeUndefined()
    await settle()
    const woke = woken
    const announced = lock.leases().length
    memory.seed(record('pool.h-a', 'pool'))
    memory.seed(record('other.h-b', 'other'))
    await settle()
    expect(woken).toBe(woke + 1)
    expect(watched.holders('pool')?.map((r) => r.name)).toEqual(['pool.h-a'])
    expect(watched.holders('other')?.map((r) => r.name)).toEqual(['other.h-b'])
    const seeded = memory.peek(NS, 'pool.h-a')
    if (seeded === undefined) throw new Error('seeded record missing')
    await memory.delete(NS, 'pool.h-a', seeded)
    await settle()
    expect(woken).toBe(woke + 2)
    expect(watched.holders('pool')).toEqual([])
    expect(lock.leases()).toHaveLength(announced)
    expect(watched.lease('pool')).toBe('absent')
  })
})
