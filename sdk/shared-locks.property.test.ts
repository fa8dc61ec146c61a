import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createLocks } from './create-locks.ts'
import { LockUnavailableError, WatchExpiredError } from './errors.ts'
import type { Lock } from './held-lock.ts'
import type { Locks } from './locks.ts'
import type { MemoryLeaseStore } from './memory-store.ts'
import { createMemoryLeaseStore } from './memory-store.ts'
import type { AcquireOptions } from './options.ts'
import { compareResourceVersions } from './resource-version.ts'
import { fakeClock, seededRandom } from './testing/helpers.ts'

const LIMIT = 2

interface Hold {
  readonly kind: 'semaphore' | 'shared' | 'exclusive'
  readonly lock: Lock
}

beforeEach(() => {
  vi.useFakeTimers({ now: Date.UTC(2030, 0, 1) })
})

afterEach(() => {
  expect(vi.getTimerCount()).toBe(0)
  vi.useRealTimers()
})

describe('semaphores and shared locks under random contention and faults', () => {
  it.each(Array.from({ length: 40 }, (_, i) => i + 1))(
    'seed %i: never more than the limit, never a writer with anyone, tokens as documented',
    async (seed) => {
      const random = seededRandom(seed)
      const store: MemoryLeaseStore = createMemoryLeaseStore()
      const clients: Locks[] = [1, 2, 3, 4, 5].map((n) =>
        createLocks({
          store,
          namespace: 'ns',
          identity: `c${n}`,
          clock: fakeClock,
          retryInterval: 0.2,
          requestTimeout: 1,
          expiryGrace: 0.5,
        }),
      )
      /** Holds that have not been told (signal) they ended, by name. */
      const valid = { pool: new Set<Hold>(), account: new Set<Hold>() }
      /** Every hold of `account`, in the order its holder learnt it held. */
      const accountHolds: Hold[] = []
      const counts = { semaphore: 0, shared: 0, exclusive: 0, peakPool: 0, peakShared: 0 }
      const violations: string[] = []

      const enter = (name: 'pool' | 'account', hold: Hold) => {
        const others = [...valid[name]]
        if (name === 'pool' && others.length >= LIMIT) violations.push(`${others.length + 1} in the pool`)
        if (
          name === 'account' &&
          (hold.kind === 'exclusive' ? others.length > 0 : others.some((o) => o.kind === 'exclusive'))
        ) {
          violations.push(`${hold.kind} holder beside ${others.map((o) => o.kind).join(', ')}`)
        }
        valid[name].add(hold)
        hold.lock.signal.addEventListener('abort', () => valid[name].delete(hold))
        counts[hold.kind]++
        if (name === 'pool') counts.peakPool = Math.max(counts.peakPool, valid.pool.size)
        else if (hold.kind === 'shared') counts.peakShared = Math.max(counts.peakShared, valid.account.size)
        if (name === 'account') accountHolds.push(hold)
      }

      let running = true
      const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
      const loops = clients.map(async (client) => {
        while (running) {
          const pool = random() < 0.5
          const exclusive = !pool && random() < 0.3
          const kind: Hold['kind'] = pool ? 'semaphore' : exclusive ? 'exclusive' : 'shared'
          const options: AcquireOptions = {
            expires: 1 + Math.floor(random() * 4),
            timeout: random() < 0.2 ? 0 : random() * 5,
            renew: random() < 0.3,
            fair: random() < 0.7,
            ...(pool ? { limit: LIMIT } : exclusive ? {} : { shared: true }),
          }
          try {
            const lock = await client.acquire(pool ? 'pool' : 'account', options)
            enter(pool ? 'pool' : 'account', { kind, lock })
            await sleep(random() * 3000)
            await lock.release()
          } catch {
            await sleep(random() * 500)
          }
        }
      })
      const unknown = () =>
        new LockUnavailableError({ server: 'memory', problem: 'timed out', outcomeUnknown: true })
      const refused = () =>
        new LockUnavailableError({ server: 'memory', problem: 'refused', outcomeUnknown: false })
      for (let t = 0; t < 40_000; t += 250) {
        const dice = random()
        if (dice < 0.06) store.failNext('update', unknown, { phase: random() < 0.5 ? 'after' : 'before' })
        else if (dice < 0.1) store.failNext('create', unknown, { phase: random() < 0.5 ? 'after' : 'before' })
        else if (dice < 0.13) store.failNext('list', refused)
        else if (dice < 0.16) store.failNext('get', refused)
        else if (dice < 0.18) store.failNext('delete', unknown, { phase: 'after' })
        else if (dice < 0.2) store.endWatches(refused())
        else if (dice < 0.21) {
          store.compact()
          store.endWatches(new WatchExpiredError())
        } else if (dice < 0.23) {
          // Like the controller's garbage collection: only a free lock lease is deleted.
          for (const name of ['pool', 'account']) {
            const lease = store.peek('ns', name)
            if (lease && lease.holderIdentity === undefined) store.remove('ns', name)
          }
        }
        await vi.advanceTimersByTimeAsync(250)
      }
      running = false
      await Promise.all(clients.map((client) => client.close()))
      await vi.runAllTimersAsync()
      await Promise.all(loops)

      expect(violations).toEqual([])
      // The run exercised what it checks: each kind got in, the pool filled, readers overlapped.
      expect(counts.semaphore).toBeGreaterThan(2)
      expect(counts.shared + counts.exclusive).toBeGreaterThan(2)
      expect(counts.peakPool).toBe(LIMIT)
      for (let i = 0; i < accountHolds.length; i++) {
        const hold = accountHolds[i] as Hold
        for (const earlier of accountHolds.slice(0, i)) {
          if (hold.kind !== 'exclusive' && earlier.kind !== 'exclusive') continue
          expect(
            compareResourceVersions(hold.lock.fencingToken, earlier.lock.fencingToken),
            `${hold.kind} ${hold.lock.fencingToken} after ${earlier.kind} ${earlier.lock.fencingToken}`,
          ).toBe(1)
        }
      }
    },
  )
})
