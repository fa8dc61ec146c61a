import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  createMemoryLeaseStore,
  type LeaseDraft,
  LOCK_NAME_ANNOTATION,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  type MemoryLeaseStore,
  POD_ANNOTATION,
  renewedTicket,
  SERVICE_ANNOTATION,
  ticketDraft,
  WatchExpiredError,
} from '../sdk/internal.ts'
import { Controller, LIST_PAGE_SIZE } from './controller.ts'
import type { LockEvent } from './events.ts'
import type { LeaseSource } from './kubernetes.ts'
import { alwaysLeader, type LeaderElector } from './leader-election.ts'
import { createMetrics } from './metrics.ts'

const NS = 'shop'

function managed(name: string, overrides: Partial<LeaseDraft> = {}): LeaseDraft {
  return {
    namespace: NS,
    name,
    holderIdentity: 'pod-a_1_x',
    leaseDurationSeconds: 5,
    acquireTime: '2030-01-01T00:00:00.000000Z',
    renewTime: '2030-01-01T00:00:00.000000Z',
    leaseTransitions: 0,
    labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE },
    annotations: { [LOCK_NAME_ANNOTATION]: name, [POD_ANNOTATION]: 'pod-a' },
    ...overrides,
  }
}

/** A waiter's ticket for lock `lock`, living `duration` seconds unrenewed, as the SDK creates it. */
function ticket(lock: string, suffix: string, duration = 5, identity = `pod-${suffix}_1_w`): LeaseDraft {
  return ticketDraft({
    namespace: NS,
    leaseName: lock,
    lockName: lock,
    identity,
    durationSeconds: duration,
    annotations: { [SERVICE_ANNOTATION]: 'billing', [POD_ANNOTATION]: `pod-${suffix}` },
    wallNow: Date.now(),
    name: `${lock}.q-${suffix.padEnd(16, 'a')}`,
  })
}

const gauge = async (name: string, labels: Record<string, string> = {}) =>
  (await metrics.registry.getSingleMetric(name)?.get())?.values
    .filter((value) => Object.entries(labels).every(([key, v]) => value.labels[key] === v))
    .reduce((sum, value) => sum + value.value, 0) ?? 0

function storeSource(store: MemoryLeaseStore): LeaseSource {
  return {
    list: (namespace, options) => store.list(namespace ?? NS, options),
    watch: (namespace, options, onEvent) => store.watch(namespace ?? NS, options, onEvent),
  }
}

/** Never leads: a standby. */
const standby: LeaderElector = {
  async run(signal, callbacks) {
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
    await callbacks.stopActing()
  },
}

let store: MemoryLeaseStore
let events: LockEvent[]
let metrics: ReturnType<typeof createMetrics>
let stop: AbortController
let running: Promise<void> | undefined

function start(options: { retention?: number; grace?: number; elector?: LeaderElector } = {}): Controller {
  const controller = new Controller(
    {
      namespaces: [NS],
      retention: options.retention ?? 60,
      grace: options.grace ?? 1,
      clock: { now: () => Date.now(), wallNow: () => Date.now() },
    },
    {
      source: storeSource(store),
      store,
      elector: options.elector ?? alwaysLeader(),
      events: { record: (event) => events.push(event) },
      metrics,
      logger: {},
    },
  )
  running = controller.start(stop.signal)
  return controller
}

const writes = () => store.calls.filter((call) => call.operation === 'update' || call.operation === 'delete')
const counter = async (name: string) =>
  (await metrics.registry.getSingleMetric(name)?.get())?.values.reduce(
    (sum, value) => sum + value.value,
    0,
  ) ?? 0

beforeEach(() => {
  vi.useFakeTimers({ now: Date.UTC(2030, 0, 1) })
  store = createMemoryLeaseStore()
  events = []
  metrics = createMetrics({ processMetrics: false })
  stop = new AbortController()
  running = undefined
})

afterEach(async () => {
  stop.abort()
  await vi.runOnlyPendingTimersAsync()
  await running
  expect(vi.getTimerCount()).toBe(0)
  vi.useRealTimers()
})

describe('Controller', () => {
  it('marks a held lease free once it stayed unchanged for its duration plus grace, not before', async () => {
    store.seed(managed('orders'))
    const controller = start()
    await vi.advanceTimersByTimeAsync(0)
    expect(controller.ready).toBe(true)
    await vi.advanceTimersByTimeAsync(5_999)
    expect(store.peek(NS, 'orders')?.holderIdentity).toBe('pod-a_1_x')
    expect(writes()).toEqual([])
    await vi.advanceTimersByTimeAsync(1)
    const lease = store.peek(NS, 'orders')
    expect(lease?.holderIdentity).toBeUndefined()
    expect(lease?.annotations).toEqual({ [LOCK_NAME_ANNOTATION]: 'orders' })
    expect(events.map((event) => event.reason)).toEqual(['LockExpired', 'LockReclaimed'])
    expect(await counter('kube_locks_expired_total')).toBe(1)
    expect(await counter('kube_locks_reclaimed_total')).toBe(1)
  })

  it('a renewal restarts the expiry clock', async () => {
    const first = store.seed(managed('orders'))
    start()
    await vi.advanceTimersByTimeAsync(5_000)
    store.seed({ ...managed('orders'), renewTime: '2030-01-01T00:00:05.000000Z' })
    expect(store.peek(NS, 'orders')?.uid).toBe(first.uid)
    await vi.advanceTimersByTimeAsync(5_999)
    expect(writes()).toEqual([])
    await vi.advanceTimersByTimeAsync(1)
    expect(store.peek(NS, 'orders')?.holderIdentity).toBeUndefined()
  })

  it('deletes a lease free for the retention period, under uid and resourceVersion preconditions', async () => {
    store.seed(managed('orders', { holderIdentity: undefined }))
    start({ retention: 30 })
    await vi.advanceTimersByTimeAsync(29_999)
    expect(store.peek(NS, 'orders')).toBeDefined()
    await vi.advanceTimersByTimeAsync(1)
    expect(store.peek(NS, 'orders')).toBeUndefined()
    expect(events.map((event) => event.reason)).toEqual(['LockGarbageCollected'])
    expect(await counter('kube_locks_deleted_total')).toBe(1)
  })

  it('a lease acquired while the delete is in flight survives: the delete conflicts', async () => {
    store.seed(managed('orders', { holderIdentity: undefined }))
    start({ retention: 30 })
    const paused = store.pause('delete')
    await vi.advanceTimersByTimeAsync(30_000)
    expect(paused.waiting).toBe(1)
    store.seed(managed('orders', { holderIdentity: 'pod-b_2_y' }))
    paused.resume()
    await vi.advanceTimersByTimeAsync(0)
    expect(store.peek(NS, 'orders')?.holderIdentity).toBe('pod-b_2_y')
    expect(await counter('kube_locks_reconcile_conflicts_total')).toBe(1)
    expect(await counter('kube_locks_deleted_total')).toBe(0)
    expect(events).toEqual([])
  })

  it('a renewal that lands while the free is in flight wins: the free conflicts', async () => {
    store.seed(managed('orders'))
    start()
    const paused = store.pause('update')
    await vi.advanceTimersByTimeAsync(6_000)
    expect(paused.waiting).toBe(1)
    store.seed({ ...managed('orders'), renewTime: '2030-01-01T00:00:06.000000Z' })
    paused.resume()
    await vi.advanceTimersByTimeAsync(0)
    expect(store.peek(NS, 'orders')?.holderIdentity).toBe('pod-a_1_x')
    expect(await counter('kube_locks_reclaimed_total')).toBe(0)
    expect(await counter('kube_locks_reconcile_conflicts_total')).toBe(1)
  })

  it('never writes a lease without the managed-by label', async () => {
    store.seed(managed('leader', { labels: {} }))
    store.seed(managed('other-tool', { labels: { [MANAGED_BY_LABEL]: 'Helm' }, holderIdentity: undefined }))
    const controller = start({ retention: 0 })
    await vi.advanceTimersByTimeAsync(600_000)
    expect(controller.size).toBe(0)
    expect(writes()).toEqual([])
  })

  it('a standby keeps its view but never writes', async () => {
    store.seed(managed('orders'))
    store.seed(managed('free', { holderIdentity: undefined }))
    const controller = start({ elector: standby, retention: 0 })
    await vi.advanceTimersByTimeAsync(600_000)
    expect(controller.size).toBe(2)
    expect(controller.leading).toBe(false)
    expect(writes()).toEqual([])
    expect(await counter('kube_locks_controller_leader')).toBe(0)
  })

  it('stops writing the moment leadership is lost, and resumes when it returns', async () => {
    store.seed(managed('orders'))
    let lose = () => {}
    const elector: LeaderElector = {
      async run(signal, callbacks) {
        const leading = new AbortController()
        lose = () => leading.abort(new Error('renewal failed'))
        callbacks.onStartedLeading(leading.signal, 'me')
        await new Promise<void>((resolve) => {
          leading.signal.addEventListener('abort', () => resolve(), { once: true })
          signal.addEventListener('abort', () => resolve(), { once: true })
        })
        await callbacks.stopActing()
        if (signal.aborted) return
        await new Promise<void>((resolve) => setTimeout(resolve, 20_000))
        callbacks.onStartedLeading(signal, 'me')
        await new Promise<void>((resolve) =>
          signal.addEventListener('abort', () => resolve(), { once: true }),
        )
        await callbacks.stopActing()
      },
    }
    const controller = start({ elector })
    await vi.advanceTimersByTimeAsync(1_000)
    lose()
    expect(controller.leading).toBe(false)
    await vi.advanceTimersByTimeAsync(10_000)
    expect(writes()).toEqual([])
    await vi.advanceTimersByTimeAsync(10_000)
    expect(controller.leading).toBe(true)
    expect(store.peek(NS, 'orders')?.holderIdentity).toBeUndefined()
  })

  it('lists in pages, so that no answer holds every lease at once, and acts on leases of every page', async () => {
    const count = LIST_PAGE_SIZE * 2 + 1
    for (let i = 0; i < count; i++) store.seed(managed(`lock-${i}`))
    start()
    await vi.advanceTimersByTimeAsync(0)
    const lists = store.calls.filter((call) => call.operation === 'list')
    expect(lists).toHaveLength(3)
    expect(await gauge('kube_locks_leases', { state: 'held' })).toBe(count)
    await vi.advanceTimersByTimeAsync(6_000)
    expect(store.peek(NS, `lock-${count - 1}`)?.holderIdentity).toBeUndefined()
    expect(store.peek(NS, 'lock-0')?.holderIdentity).toBeUndefined()
  })

  it('lists again after 410 Gone, keeping the first-seen time of unchanged leases', async () => {
    store.seed(managed('orders'))
    start()
    await vi.advanceTimersByTimeAsync(3_000)
    store.compact()
    store.endWatches(new WatchExpiredError())
    await vi.advanceTimersByTimeAsync(0)
    expect(await counter('kube_locks_watch_restarts_total')).toBe(1)
    expect(store.calls.filter((call) => call.operation === 'list')).toHaveLength(2)
    await vi.advanceTimersByTimeAsync(3_000)
    expect(store.peek(NS, 'orders')?.holderIdentity).toBeUndefined()
  })

  it('deletes a ticket left unrenewed for its duration plus grace, not before, and never frees it', async () => {
    store.seed(managed('held', { leaseDurationSeconds: 3600 }))
    const seeded = store.seed(ticket('held', 'dead', 5))
    start({ retention: 600 })
    await vi.advanceTimersByTimeAsync(5_999)
    expect(store.peek(NS, seeded.name)).toBeDefined()
    expect(writes()).toEqual([])
    await vi.advanceTimersByTimeAsync(1)
    expect(store.peek(NS, seeded.name)).toBeUndefined()
    const ticketWrites = writes().filter((call) => call.name === seeded.name)
    expect(ticketWrites.map((call) => call.operation)).toEqual(['delete'])
    expect(await counter('kube_locks_tickets_deleted_total')).toBe(1)
    expect(await gauge('kube_locks_tickets_deleted_total', { reason: 'expired' })).toBe(1)
    // Not a lock: no lock counter moves, and no Event (a waiter that is gone is not news on the lease).
    expect(await counter('kube_locks_expired_total')).toBe(0)
    expect(await counter('kube_locks_reclaimed_total')).toBe(0)
    expect(await counter('kube_locks_deleted_total')).toBe(0)
    expect(events).toEqual([])
    expect(store.peek(NS, 'held')?.holderIdentity).toBe('pod-a_1_x')
  })

  it('keeps a ticket that its waiter renews', async () => {
    let current = store.seed(ticket('orders', 'live', 5))
    start({ retention: 0 })
    for (let i = 0; i < 10; i++) {
      await vi.advanceTimersByTimeAsync(2_000)
      current = store.seed(renewedTicket(current, Date.now()))
    }
    await vi.advanceTimersByTimeAsync(5_999)
    expect(store.peek(NS, current.name)?.holderIdentity).toBe('pod-live_1_w')
    expect(writes()).toEqual([])
    await vi.advanceTimersByTimeAsync(1)
    expect(store.peek(NS, current.name)).toBeUndefined()
  })

  it('deletes a ticket that names no waiter at once, whatever the retention', async () => {
    const seeded = store.seed({ ...ticket('orders', 'empty'), holderIdentity: undefined })
    start({ retention: 600 })
    await vi.advanceTimersByTimeAsync(0)
    expect(store.peek(NS, seeded.name)).toBeUndefined()
    expect(await gauge('kube_locks_tickets_deleted_total', { reason: 'free' })).toBe(1)
    expect(events).toEqual([])
  })

  it('a ticket renewed while its delete is in flight survives: the delete conflicts', async () => {
    const seeded = store.seed(ticket('orders', 'slow', 5))
    start()
    const paused = store.pause('delete')
    await vi.advanceTimersByTimeAsync(6_000)
    expect(paused.waiting).toBe(1)
    store.seed(renewedTicket(seeded, Date.now()))
    paused.resume()
    await vi.advanceTimersByTimeAsync(0)
    expect(store.peek(NS, seeded.name)?.holderIdentity).toBe('pod-slow_1_w')
    expect(await counter('kube_locks_tickets_deleted_total')).toBe(0)
    expect(await gauge('kube_locks_reconcile_conflicts_total', { action: 'delete-ticket' })).toBe(1)
  })

  it('counts tickets apart from locks', async () => {
    store.seed(managed('orders', { leaseDurationSeconds: 3600 }))
    store.seed(managed('idle', { holderIdentity: undefined }))
    store.seed(ticket('orders', 'one', 3600))
    store.seed(ticket('orders', 'two', 3600))
    const controller = start({ retention: 600 })
    await vi.advanceTimersByTimeAsync(0)
    expect(controller.size).toBe(4)
    expect(await gauge('kube_locks_leases', { state: 'held' })).toBe(1)
    expect(await gauge('kube_locks_leases', { state: 'free' })).toBe(1)
    expect(await gauge('kube_locks_tickets')).toBe(2)
    store.remove(NS, 'orders.q-oneaaaaaaaaaaaaa')
    await vi.advanceTimersByTimeAsync(0)
    expect(await gauge('kube_locks_tickets')).toBe(1)
    expect(await gauge('kube_locks_leases', { state: 'held' })).toBe(1)
  })

  it('a standby never deletes tickets', async () => {
    store.seed(ticket('orders', 'dead', 1))
    store.seed({ ...ticket('orders', 'empty'), holderIdentity: undefined })
    start({ elector: standby })
    await vi.advanceTimersByTimeAsync(600_000)
    expect(writes()).toEqual([])
  })

  it('forgets deleted leases', async () => {
    store.seed(managed('orders'))
    const controller = start()
    await vi.advanceTimersByTimeAsync(0)
    expect(controller.size).toBe(1)
    store.remove(NS, 'orders')
    await vi.advanceTimersByTimeAsync(0)
    expect(controller.size).toBe(0)
    await vi.advanceTimersByTimeAsync(60_000)
    expect(writes()).toEqual([])
  })
})
