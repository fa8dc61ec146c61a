import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createLocks } from './create-locks.ts'
import { LockUnavailableError, WatchExpiredError } from './errors.ts'
import type { Locks } from './locks.ts'
import type { MemoryLeaseStore } from './memory-store.ts'
import { createMemoryLeaseStore } from './memory-store.ts'
import { compareResourceVersions } from './resource-version.ts'
import { fakeClock, seededRandom } from './testing/helpers.ts'

interface Acquisition {
  readonly holder: string
  readonly writeSeq: number
  token?: string
  abortSeq?: number
}

beforeEach(() => {
  vi.useFakeTimers({ now: Date.UTC(2030, 0, 1) })
})

afterEach(() => {
  expect(vi.getTimerCount()).toBe(0)
  vi.useRealTimers()
})

describe('mutual exclusion under random contention and faults', () => {
  it.each(Array.from({ length: 20 }, (_, i) => i + 1))(
    'seed %i: a holder is always told before another takes the lock',
    async (seed) => {
      const random = seededRandom(seed)
      let seq = 0
      const acquisitions: Acquisition[] = []
      const byHolder = new Map<string, Acquisition>()
      let lastHolder: string | undefined
      const store: MemoryLeaseStore = createMemoryLeaseStore({
        onChange: (event) => {
          // Tickets (places in line) are leases of their own: only the lock's lease counts here.
          if (event.type === 'BOOKMARK' || event.lease.name !== 'x') return
          const holder = event.type === 'DELETED' ? undefined : event.lease.holderIdentity
          if (holder !== undefined && holder !== lastHolder) {
            const acquisition = { holder, writeSeq: ++seq }
            acquisitions.push(acquisition)
            byHolder.set(holder, acquisition)
          }
          lastHolder = holder
        },
      })
      const clients: Locks[] = [1, 2, 3, 4].map((n) =>
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
      let running = true
      const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
      const loops = clients.map(async (client) => {
        while (running) {
          try {
            const lock = await client.acquire('x', {
              expires: 1 + Math.floor(random() * 4),
              timeout: random() < 0.2 ? 0 : random() * 5,
              renew: random() < 0.3,
              fair: random() < 0.7,
            })
            const acquisition = byHolder.get(lock.holder)
            if (!acquisition) throw new Error(`no write recorded for ${lock.holder}`)
            acquisition.token = lock.fencingToken
            lock.signal.addEventListener('abort', () => {
              acquisition.abortSeq = ++seq
            })
            await sleep(random() * 4000)
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
      for (let t = 0; t < 60_000; t += 250) {
        const dice = random()
        if (dice < 0.08) store.failNext('update', unknown, { phase: random() < 0.5 ? 'after' : 'before' })
        else if (dice < 0.12) store.failNext('create', unknown, { phase: 'after' })
        else if (dice < 0.16) store.failNext('get', refused)
        else if (dice < 0.18) store.endWatches(refused())
        else if (dice < 0.2) {
          store.compact()
          store.endWatches(new WatchExpiredError())
        } else if (dice < 0.21) {
          // Like the controller's garbage collection: only a free lease is deleted.
          const lease = store.peek('ns', 'x')
          if (lease && lease.holderIdentity === undefined) store.remove('ns', 'x')
        }
        await vi.advanceTimersByTimeAsync(250)
      }
      running = false
      await Promise.all(clients.map((client) => client.close()))
      await vi.runAllTimersAsync()
      await Promise.all(loops)

      const held = acquisitions.filter((a) => a.token !== undefined)
      expect(held.length).toBeGreaterThan(10)
      for (let i = 0; i < acquisitions.length; i++) {
        const next = acquisitions[i] as Acquisition
        for (const earlier of acquisitions.slice(0, i)) {
          if (earlier.token === undefined) continue
          // Every earlier holder that learned it held the lock was told before this write.
          expect(earlier.abortSeq, `${earlier.holder} never told`).toBeDefined()
          expect(
            earlier.abortSeq as number,
            `${earlier.holder} told after ${next.holder} took over`,
          ).toBeLessThan(next.writeSeq)
        }
      }
      for (let i = 1; i < held.length; i++) {
        expect(
          compareResourceVersions(
            (held[i] as Acquisition).token as string,
            (held[i - 1] as Acquisition).token as string,
          ),
        ).toBe(1)
      }
    },
  )
})
