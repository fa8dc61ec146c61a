// Identities with a broken random source: two clients with the same prefix and pid then produce the
// same holder identity, and an identity match alone must never make a client believe it holds a lock.
import { afterEach, beforeEach, expect, it, vi } from 'vitest'

vi.mock('node:crypto', async (importOriginal) => {
  const crypto = await importOriginal<typeof import('node:crypto')>()
  return { ...crypto, randomBytes: (size: number) => Buffer.alloc(size, 7) }
})

const { createLocks } = await import('./create-locks.ts')
const { createMemoryLeaseStore } = await import('./memory-store.ts')
const { fakeClock, track } = await import('./testing/helpers.ts')

beforeEach(() => {
  vi.useFakeTimers({ now: Date.UTC(2030, 0, 1) })
})

afterEach(() => {
  vi.useRealTimers()
})

it('two clients with one identity prefix, one pid and a constant random source never both hold', async () => {
  const store = createMemoryLeaseStore()
  const options = { store, namespace: 'shop', identity: 'pod', clock: fakeClock }
  const a = createLocks(options)
  const b = createLocks(options)
  const first = await a.acquire('account-1', { expires: 20 })
  const second = track(b.acquire('account-1', { expires: 20, timeout: 5 }))
  await vi.advanceTimersByTimeAsync(6000)
  expect(second.status, 'the second client waited and gave up').toBe('rejected')
  expect(first.valid).toBe(true)
  // The second client's failure must not have freed the first one's lease.
  expect(store.peek('shop', first.leaseName)?.holderIdentity).toBe(first.holder)
  expect(store.peek('shop', first.leaseName)?.resourceVersion).toBe(first.fencingToken)
  await first.release()
  const third = await b.acquire('account-1', { timeout: 0 })
  expect(third.holder).toBe(first.holder)
  await third.release()
  await Promise.all([a.close(), b.close()])
})
