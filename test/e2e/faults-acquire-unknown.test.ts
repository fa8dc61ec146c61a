import { afterEach, describe, expect, it } from 'vitest'
import {
  createLocks,
  createMemoryLeaseStore,
  defaultSafetyMargin,
  type Locks,
  LockUnavailableError,
  leaseNameFor,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
} from '../../sdk/internal.ts'

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
    // The send time of every write that applied, to judge the signal against its documented bound.
    const applied: { sentAt: number; resourceVersion: string }[] = []
    const stamped: typeof store = Object.assign(Object.create(store) as typeof store, {
      create: async (...args: Parameters<typeof store.create>) => {
        const sentAt = performance.now()
        const record = await store.create(...args)
        applied.push({ sentAt, resourceVersion: record.resourceVersion })
        return record
      },
      update: async (...args: Parameters<typeof store.update>) => {
        const sentAt = performance.now()
        const record = await store.update(...args)
        applied.push({ sentAt, resourceVersion: record.resourceVersion })
        return record
      },
    })
    locks = createLocks({ store: stamped, namespace, expiryGrace: 0.1, retryInterval: 0.05 })
    const started = performance.now()
    const lock = await locks.acquire(name, { expires: 3, timeout: 30 })
    const acquiredAfter = performance.now() - started
    // It had to wait for the other holder's 4 s (+ grace): its own write came after that.
    expect(acquiredAfter).toBeGreaterThanOrEqual(4_000)
    expect(store.peek(namespace, leaseNameFor(name))?.holderIdentity).toBe(lock.holder)
    // Its signal must fire at expires − margin after the write that took it: not earlier (counted from
    // the lost write), not later. Wait for it, bounded by that deadline.
    const write = applied.find((w) => w.resourceVersion === lock.fencingToken)
    expect(write, 'the acquiring write').toBeDefined()
    const due = (write?.sentAt ?? 0) + (3 - defaultSafetyMargin(3)) * 1000
    const firedAt = await new Promise<number>((resolve, reject) => {
      if (lock.signal.aborted) resolve(performance.now())
      const timer = setTimeout(
        () => reject(new Error('the signal did not fire by its deadline + 1 s')),
        due + 1_000 - performance.now(),
      )
      lock.signal.addEventListener('abort', () => {
        clearTimeout(timer)
        resolve(performance.now())
      })
    })
    expect(firedAt, `signal fired early: ${String(lock.signal.reason)}`).toBeGreaterThanOrEqual(due - 1)
    expect(firedAt - due).toBeLessThan(200)
    await lock.release()
  }, 30_000)
})
