import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { LockUnavailableError } from './errors.ts'
import type { MemoryLeaseStore } from './memory-store.ts'
import { createMemoryLeaseStore } from './memory-store.ts'
import { describeLeaseStoreContract } from './testing/lease-store-contract.ts'

describeLeaseStoreContract(
  'in-memory store',
  async () => ({ store: createMemoryLeaseStore(), namespace: `ns-${randomBytes(3).toString('hex')}` }),
  { compact: ({ store }) => (store as MemoryLeaseStore).compact() },
)

describe('in-memory store fault injection', () => {
  const draft = {
    namespace: 'ns',
    name: 'f',
    holderIdentity: 'a',
    leaseDurationSeconds: 5,
    acquireTime: undefined,
    renewTime: undefined,
    leaseTransitions: 0,
    labels: {},
    annotations: {},
  }
  const unknown = () =>
    new LockUnavailableError({ server: 'memory', problem: 'timed out', outcomeUnknown: true })

  it("fails 'after' a write was applied: the caller sees an error, the lease changed", async () => {
    const store = createMemoryLeaseStore()
    store.failNext('create', unknown, { phase: 'after' })
    await expect(store.create(draft)).rejects.toBeInstanceOf(LockUnavailableError)
    expect(store.peek('ns', 'f')?.holderIdentity).toBe('a')
  })

  it("fails 'before': nothing applied", async () => {
    const store = createMemoryLeaseStore()
    store.failNext('create', unknown)
    await expect(store.create(draft)).rejects.toBeInstanceOf(LockUnavailableError)
    expect(store.peek('ns', 'f')).toBeUndefined()
    await store.create(draft)
  })

  it('pauses requests until resumed; the request signal still aborts them', async () => {
    const store = createMemoryLeaseStore()
    const gate = store.pause('get')
    const controller = new AbortController()
    const aborted = store.get('ns', 'f', { signal: controller.signal })
    const resumed = store.get('ns', 'f')
    await Promise.resolve()
    await Promise.resolve()
    expect(gate.waiting).toBe(2)
    controller.abort(new Error('stop'))
    await expect(aborted).rejects.toThrow('stop')
    gate.resume()
    await expect(resumed).resolves.toBeUndefined()
  })
})
