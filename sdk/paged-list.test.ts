import { describe, expect, it } from 'vitest'
import { MANAGED_BY_LABEL, MANAGED_BY_SELECTOR, MANAGED_BY_VALUE } from './constants.ts'
import { WatchExpiredError } from './errors.ts'
import type { LeaseDraft } from './lease-record.ts'
import type { LeaseStore, ListOptions } from './lease-store.ts'
import { createMemoryLeaseStore, type MemoryLeaseStore } from './memory-store.ts'
import { listPaged } from './paged-list.ts'

function draft(namespace: string, name: string, managed = true): LeaseDraft {
  return {
    namespace,
    name,
    holderIdentity: undefined,
    leaseDurationSeconds: 20,
    acquireTime: undefined,
    renewTime: undefined,
    leaseTransitions: 0,
    labels: managed ? { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE } : {},
    annotations: {},
  }
}

/** A memory store with `count` managed leases in `shop` (and others beside them), and a record of each list. */
async function storeWith(count: number): Promise<{ store: MemoryLeaseStore; calls: ListOptions[] }> {
  const memory = createMemoryLeaseStore()
  for (let index = 0; index < count; index++) {
    await memory.create(draft('shop', `lock-${String(index).padStart(3, '0')}`))
  }
  await memory.create(draft('shop', 'heartbeat', false))
  await memory.create(draft('other', 'lock-elsewhere'))
  const calls: ListOptions[] = []
  const list = memory.list.bind(memory)
  memory.list = (namespace, options) => {
    calls.push(options ?? {})
    return list(namespace, options)
  }
  return { store: memory, calls }
}

const names = (items: readonly { name: string }[]) => items.map((item) => item.name)

describe('listPaged', () => {
  it.each([
    [10, 3, 4],
    [10, 5, 2],
    [10, 10, 1],
    [10, 100, 1],
    [0, 3, 1],
  ])('lists %d leases in pages of %d: %d requests', async (count, limit, requests) => {
    const { store, calls } = await storeWith(count)
    const list = await listPaged(store, 'shop', { labelSelector: MANAGED_BY_SELECTOR, limit })
    expect(names(list.items)).toEqual(
      Array.from({ length: count }, (_, index) => `lock-${String(index).padStart(3, '0')}`),
    )
    expect(calls).toHaveLength(requests)
    expect(calls.map((call) => call.limit)).toEqual(Array(requests).fill(limit))
    expect(calls[0]?.continue).toBeUndefined()
    expect(calls.slice(1).every((call) => typeof call.continue === 'string')).toBe(true)
  })

  it('fetches everything in one request without a limit, or with 0', async () => {
    for (const limit of [undefined, 0]) {
      const { store, calls } = await storeWith(7)
      const list = await listPaged(store, 'shop', { labelSelector: MANAGED_BY_SELECTOR, limit })
      expect(list.items).toHaveLength(7)
      expect(calls).toEqual([{ labelSelector: MANAGED_BY_SELECTOR }])
    }
  })

  it('lists every namespace without one, and only what the selector matches', async () => {
    const { store } = await storeWith(2)
    const all = await listPaged(store, undefined, { labelSelector: MANAGED_BY_SELECTOR, limit: 1 })
    expect(all.items.map((item) => `${item.namespace}/${item.name}`)).toEqual([
      'other/lock-elsewhere',
      'shop/lock-000',
      'shop/lock-001',
    ])
    const unselected = await listPaged(store, 'shop', { limit: 2 })
    expect(names(unselected.items)).toContain('heartbeat')
  })

  it("returns the first page's resourceVersion, the snapshot to watch from", async () => {
    const { store } = await storeWith(4)
    const before = (await store.list('shop')).resourceVersion
    const list = store.list.bind(store)
    // A write between two pages: the memory store, unlike the API server, answers with a newer version.
    let pages = 0
    store.list = async (namespace, options) => {
      const page = await list(namespace, options)
      if (++pages === 1) await store.create(draft('shop', 'zz-late'))
      return page
    }
    const result = await listPaged(store, 'shop', { labelSelector: MANAGED_BY_SELECTOR, limit: 2 })
    expect(result.resourceVersion).toBe(before)
  })

  it('returns the objects as sent with objects: true, in the order of the items', async () => {
    const { store } = await storeWith(5)
    const list = await listPaged(store, 'shop', {
      labelSelector: MANAGED_BY_SELECTOR,
      limit: 2,
      objects: true,
    })
    expect(list.objects?.map((object) => object.metadata?.name)).toEqual(names(list.items))
    const plain = await listPaged(store, 'shop', { labelSelector: MANAGED_BY_SELECTOR, limit: 2 })
    expect(plain.objects).toBeUndefined()
  })

  it('passes the signal to every page', async () => {
    const { store, calls } = await storeWith(3)
    const signal = new AbortController().signal
    await listPaged(store, 'shop', { limit: 1, signal })
    expect(calls.length).toBeGreaterThan(1)
    expect(calls.every((call) => call.signal === signal)).toBe(true)
  })

  it('stops at an aborted signal', async () => {
    const { store } = await storeWith(3)
    const controller = new AbortController()
    controller.abort(new Error('stop'))
    await expect(listPaged(store, 'shop', { limit: 1, signal: controller.signal })).rejects.toThrow('stop')
  })

  it('rejects with WatchExpiredError when a continue token has expired (410), for the caller to list again', async () => {
    const { store } = await storeWith(4)
    const list = store.list.bind(store)
    const expiring: Pick<LeaseStore, 'list'> = {
      list: (namespace, options) =>
        options?.continue === undefined
          ? list(namespace, options)
          : Promise.reject(new WatchExpiredError(undefined, { cause: { code: 410, reason: 'Expired' } })),
    }
    await expect(listPaged(expiring, 'shop', { limit: 2 })).rejects.toBeInstanceOf(WatchExpiredError)
  })
})
