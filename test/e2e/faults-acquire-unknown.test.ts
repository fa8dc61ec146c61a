import { afterEach, describe, expect, it } from 'vitest'
import {
  createLocks,
  createMemoryLeaseStore,
  type Locks,
  LockUnavailableError,
  leaseNameFor,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
} from '../../sdk/index.ts'

// An acquiring write whose outcome is unknown (a timeout or 5xx) makes the acquirer count its deadline
// from that write, in case it applied. When a read then shows someone else holding the lock, the write
// did not win; a later, successful write must start a fresh deadline. Here the first create times out
// before it reaches the store while another process takes the lock; the acquirer waits the holder out
// and takes the lock over 4 s later with `expires: 3`.

let locks: Locks | undefined

afterEach(async () => {
  await locks?.close()
  locks = undefined
})

describe('faults: acquisition after a write with an unknown outcome', () => {
  it('a lock taken over after an earlier unknown-outcome write gets a full deadline from its own write', async () => {
    const store = createMemoryLeaseStore()
    const namespace = 'faults'
    const name = 'unknown-then-wait'
    store.failNext(
      'create',
      () => {
        // Someone else creates the lease while this request is lost on its way.
        const now = new Date().toISOString().replace('Z', '000Z')
        store.seed({
          namespace,
          name: leaseNameFor(name),
          holderIdentity: 'someone-else',
          leaseDurationSeconds: 4,
          acquireTime: now,
          renewTime: now,
          leaseTransitions: 0,
          labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE },
          annotations: {},
        })
        return new LockUnavailableError({ server: 'memory', problem: 'timed out', outcomeUnknown: true })
      },
      { phase: 'before' },
    )
    locks = createLocks({ store, namespace, expiryGrace: 0.1, retryInterval: 0.05 })
    const started = performance.now()
    const lock = await locks.acquire(name, { expires: 3, timeout: 30 })
    const acquiredAfter = performance.now() - started
    // It had to wait for the other holder's 4 s (+ grace): its own write came after that.
    expect(acquiredAfter).toBeGreaterThanOrEqual(4_000)
    expect(store.peek(namespace, leaseNameFor(name))?.holderIdentity).toBe(lock.holder)
    // Its signal must fire no earlier than expires − margin (2.7 s) after the write that took it.
    expect(lock.signal.aborted, `signal fired at once: ${String(lock.signal.reason)}`).toBe(false)
    await new Promise((resolve) => setTimeout(resolve, 1_000))
    expect(lock.signal.aborted, `signal fired within 1 s: ${String(lock.signal.reason)}`).toBe(false)
    await lock.release()
  }, 30_000)
})
