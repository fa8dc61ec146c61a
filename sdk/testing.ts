// `kube-locks/testing`: what an application needs to unit-test code that takes locks, without a
// cluster. The memory store has the API server's compare-and-swap semantics and watches, plus fault
// injection; `createTestLocks` builds a `Locks` over it that reads nothing from the environment.
// Every name here is a promise kept across releases; sdk/entry-points.test.ts lists them.
import type { Clock } from './clock.ts'
import { createLocks } from './create-locks.ts'
import { InvalidLockOptionsError } from './errors.ts'
import type { Locks } from './locks.ts'
import type { MemoryLeaseStore } from './memory-store.ts'
import { createMemoryLeaseStore } from './memory-store.ts'
import type { LocksOptions } from './options.ts'
import { fakeClock } from './testing/helpers.ts'

export type { LeaseDraft, LeaseRecord } from './lease-record.ts'
export type { LeaseEvent } from './lease-store.ts'
export type {
  FaultPhase,
  MemoryLeaseStore,
  MemoryLeaseStoreOptions,
  MemoryStoreCall,
  MemoryStoreOperation,
} from './memory-store.ts'
export { createMemoryLeaseStore } from './memory-store.ts'

/**
 * A clock that follows `Date.now()` for both the monotonic and the wall clock, so that fake timers
 * (`vi.useFakeTimers()`, `jest.useFakeTimers()`) move lock deadlines, renewals and expiries.
 */
export const testClock: Clock = fakeClock

/** Options of {@link createTestLocks}: those of `createLocks()`, over a memory store. */
export interface TestLocksOptions extends Omit<LocksOptions, 'store' | 'kubeConfig'> {
  /**
   * The store to share with other `Locks` of the same test, as pods share a cluster.
   * @default a new `createMemoryLeaseStore()`
   */
  readonly store?: MemoryLeaseStore | undefined
  /**
   * @default `'default'` — never `POD_NAMESPACE` from the environment
   */
  readonly namespace?: string | undefined
  /**
   * @default `'test'` — never `POD_NAME` or the host name
   */
  readonly identity?: string | undefined
  /**
   * @default {@link testClock}, which fake timers control
   */
  readonly clock?: Clock | undefined
}

/** A `Locks` over a memory store; `await using` closes the `Locks`. */
export interface TestLocks extends AsyncDisposable {
  /** What the code under test takes locks from. */
  readonly locks: Locks
  /** The leases, to inspect (`peek`, `calls`) or to fail requests (`failNext`, `pause`). */
  readonly store: MemoryLeaseStore
}

/**
 * A `Locks` over a memory store, with the same validation and behaviour as `createLocks()`. Two calls
 * given the same `store` act like two pods of one cluster.
 *
 * ```ts
 * await using billing = createTestLocks({ service: 'billing' })
 * await using otherPod = createTestLocks({ store: billing.store, identity: 'other-pod' })
 * ```
 */
export function createTestLocks(options: TestLocksOptions = {}): TestLocks {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidLockOptionsError('options', 'an object', options)
  }
  const store = options.store ?? createMemoryLeaseStore()
  const locks = createLocks({
    ...options,
    store,
    namespace: options.namespace ?? 'default',
    identity: options.identity ?? 'test',
    clock: options.clock ?? testClock,
  })
  return { locks, store, [Symbol.asyncDispose]: () => locks.close() }
}
