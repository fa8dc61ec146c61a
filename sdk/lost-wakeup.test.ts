/**
 * A waiter reads the lease, finds it held, and only then subscribes to the shared watch. A release that
 * the watch delivers in between must still wake it: the hub replays what it knows of the lease to a new
 * subscriber.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createLocks } from './create-locks.ts'
import type { LeaseEvent, LeaseStore } from './lease-store.ts'
import type { Locks } from './locks.ts'
import type { MemoryLeaseStore } from './memory-store.ts'
import { createMemoryLeaseStore } from './memory-store.ts'
import type { LocksOptions } from './options.ts'
import { fakeClock, settle, track } from './testing/helpers.ts'

const NS = 'shop'
let memory: MemoryLeaseStore
const opened: Locks[] = []

interface GetGate {
  /** Resolves once the server has answered the read (the answer is then held back). */
  readonly read: Promise<void>
}

/**
 * The memory store, with a `get` that can be made to answer late: it reads the lease, then holds the
 * answer back until the watch has delivered a release of that lease to the hub. The caller then acts on
 * the record as it was before the release, after the release went out on the watch.
 */
function lateReadStore(inner: MemoryLeaseStore) {
  const gates = new Map<
    string,
    { reading: boolean; read: () => void; released: Promise<void>; onRelease: () => void }
  >()
  const store: LeaseStore = {
    server: inner.server,
    async get(namespace, name, options) {
      const record = await inner.get(namespace, name, options)
      const gate = gates.get(name)
      if (gate !== undefined && !gate.reading) {
        gate.reading = true
        gate.read()
        await gate.released
        gates.delete(name)
      }
      return record
    },
    create: (draft, options) => inner.create(draft, options),
    update: (record, options) => inner.update(record, options),
    delete: (namespace, name, preconditions, options) =>
      inner.delete(namespace, name, preconditions, options),
    list: (namespace, options) => inner.list(namespace, options),
    watch: (namespace, options, onEvent) =>
      inner.watch(namespace, options, (event: LeaseEvent) => {
        onEvent(event)
        if (event.type === 'BOOKMARK') return
        if (event.type !== 'DELETED' && event.lease.holderIdentity !== undefined) return
        // Delivered to the hub: now a held-back read may answer.
        gates.get(event.lease.name)?.onRelease()
      }),
  }
  return {
    store,
    /** The next read of `name` answers only after its release was delivered on the watch. */
    holdNextRead(name: string): GetGate {
      let read!: () => void
      let onRelease!: () => void
      const readPromise = new Promise<void>((resolve) => {
        read = resolve
      })
      const released = new Promise<void>((resolve) => {
        onRelease = resolve
      })
      gates.set(name, { reading: false, read, released, onRelease })
      return { read: readPromise }
    },
  }
}

function locks(options: LocksOptions): Locks {
  const instance = createLocks({ namespace: NS, clock: fakeClock, ...options })
  opened.push(instance)
  return instance
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

describe('a release between the first read and subscribing', () => {
  it('wakes the waiter within one round trip, with the default timeout and expiry', async () => {
    const late = lateReadStore(memory)
    const holder = locks({ store: memory, identity: 'pod-a' })
    const a = await holder.acquire('orders')
    const busy = await holder.acquire('other')

    // The waiting process: one of its waiters keeps the shared watch running.
    const waiting = locks({ store: late.store, identity: 'pod-b' })
    const keepsHubRunning = track(waiting.acquire('other', { timeout: 60 }))
    await settle()
    expect(memory.openWatches).toBe(1)

    const gate = late.holdNextRead(a.leaseName)
    const b = track(waiting.acquire('orders'))
    await gate.read
    const releasedAt = Date.now()
    await a.release()
    await settle()
    // Not at firstSeen + expires + grace, and not LockTimeoutError after `timeout`.
    if (b.status === 'pending') await vi.advanceTimersByTimeAsync(25_000)
    expect(b.error).toBeUndefined()
    expect(b.status).toBe('fulfilled')
    expect(b.settledAt).toBe(releasedAt)
    await b.value?.release()

    await busy.release()
    await settle()
    expect(keepsHubRunning.status).toBe('fulfilled')
    await keepsHubRunning.value?.release()
  })

  it('wakes the waiter when the lease was deleted in between', async () => {
    const late = lateReadStore(memory)
    const holder = locks({ store: memory, identity: 'pod-a' })
    const a = await holder.acquire('orders')
    const busy = await holder.acquire('other')
    const waiting = locks({ store: late.store, identity: 'pod-b' })
    const keepsHubRunning = track(waiting.acquire('other', { timeout: 60 }))
    await settle()

    const gate = late.holdNextRead(a.leaseName)
    const b = track(waiting.acquire('orders'))
    await gate.read
    const deletedAt = Date.now()
    // An administrator deletes the lease; the deletion (a release, to the gate) goes out on the watch.
    memory.remove(NS, a.leaseName)
    await settle()
    if (b.status === 'pending') await vi.advanceTimersByTimeAsync(25_000)
    expect(b.error).toBeUndefined()
    expect(b.settledAt).toBe(deletedAt)
    await b.value?.release()
    await a.release()

    await busy.release()
    await settle()
    await keepsHubRunning.value?.release()
  })
})
