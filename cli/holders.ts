import {
  compareTickets,
  HOLDER_OF_LABEL,
  holderRecordLock,
  isHolderRecordOf,
  LOCK_NAME_ANNOTATION,
  MANAGED_BY_SELECTOR,
  MODE_ANNOTATION,
  modeOf,
} from '../sdk/internal.ts'
import { ByLock, lockKey } from './by-lock.ts'
import type { Item } from './output.ts'
import { EXCLUSIVE, isHeld, isLive, type LockMode } from './rows.ts'

/**
 * Shared locks and semaphores as the CLI sees them. Each shared or semaphore holder has a Lease of its
 * own, a holder record (see `sdk/holders.ts`), beside the lock's lease: labelled
 * `kube-locks.io/holder-of`, annotated `kube-locks.io/holds=<lock's lease>`. Like tickets they are never
 * shown as locks: `list` shows them in their lock's row (HOLDERS), `get` lists them under it.
 */

/** Every holder record in scope; apart from the locks' selector, as they carry none of their lock's labels. */
export const HOLDER_RECORD_SELECTOR = `${MANAGED_BY_SELECTOR},${HOLDER_OF_LABEL}`

/** The holder records in view, by the lock they hold. */
export class HolderRecords extends ByLock {
  constructor(records: Iterable<Item> = []) {
    super((record) => holderRecordLock(record.view), records)
  }

  /** The records of `lock`'s key that name it exactly (a long lease name's label is a hash). */
  of(lock: Item): Item[] {
    return this.itemsOf(this.keyOf(lock)).filter((record) => isHolderRecordOf(record.view, lock.view.name))
  }
}

/** The mode annotations on a lease say; `undefined` when it has none. */
export function lockModeOf(annotations: Readonly<Record<string, string>>): LockMode | undefined {
  const mode = modeOf(annotations)
  if (mode === undefined) return undefined
  if (typeof mode === 'string') return { kind: 'unknown', value: annotations[MODE_ANNOTATION] ?? '' }
  return mode
}

/** How a lock is held, as its row and `get` show it. */
export interface HolderState {
  readonly mode: LockMode
  /**
   * Holder records that hold the lock, first in line (by the resourceVersion of their creation) first:
   * the live ones within the limit, and those whose leases ran out by the times written in them.
   */
  readonly holders: readonly Item[]
  /** How many hold it: the live ones among {@link holders}; of an exclusive lock, its lease's live holder. */
  readonly count: number
  /** A semaphore's live holders beyond its limit: in line for a place, counted with the waiters. */
  readonly waiters: readonly Item[]
  /**
   * The lock's own lease is held, but live holder records hold the lock: its exclusive holder waits for
   * them to finish (or they, created after it, are about to back off). Counted as the first waiter.
   */
  readonly exclusiveWaits: boolean
}

/**
 * The state of `lock` from its lease and its holder records (any records; those of other locks are
 * left out), by the times written in them at `now`. The mode: what the live records say, else
 * exclusive while the lock's lease is held, else the mark on the lock's lease (it outlives the
 * holders), else what records whose leases ran out say.
 */
export function holderState(lock: Item, records: readonly Item[], now: number): HolderState {
  const held = records
    .filter((record) => isHeld(record.view) && isHolderRecordOf(record.view, lock.view.name))
    .sort((a, b) => compareTickets(a.view, b.view))
  const live = held.filter((record) => isLive(record.view, now))
  const leaseLive = isLive(lock.view, now)
  const modeOfItem = (item: Item | undefined) =>
    item === undefined ? undefined : lockModeOf(item.view.annotations)
  const mode =
    (live.length > 0 ? modeOfItem(live[0]) : undefined) ??
    (leaseLive ? EXCLUSIVE : undefined) ??
    lockModeOf(lock.view.annotations) ??
    modeOfItem(held[0]) ??
    EXCLUSIVE
  // Only a semaphore's count has a bound; as a semaphore holder does, each counts the live ones ahead.
  const holding = mode.kind === 'semaphore' ? live.slice(0, mode.limit) : live
  const waiters = live.slice(holding.length)
  const holders = held.filter((record) => !waiters.includes(record))
  const exclusive = live.length === 0 && mode.kind === 'exclusive'
  return {
    mode,
    holders,
    count: exclusive ? (leaseLive ? 1 : 0) : holding.length,
    waiters,
    exclusiveWaits: holding.length > 0 && leaseLive,
  }
}

/**
 * The lock's line, first first: its lease's exclusive holder if it waits for the holder records, then
 * the tickets (already in line order, see `Queues.of`) and the semaphore's waiting holders, by the
 * resourceVersion of their creation, as holders and waiters order themselves.
 */
export function lineOf(lock: Item, tickets: readonly Item[], state: HolderState): Item[] {
  const line = [...tickets, ...state.waiters].sort((a, b) => compareTickets(a.view, b.view))
  return state.exclusiveWaits ? [lock, ...line] : line
}

/**
 * A lock whose lease does not exist (yet: a shared or semaphore acquirer creates its record first),
 * built from its holder records: a Lease without uid or resourceVersion, which json and yaml show as
 * such, with the lock's name.
 */
export function absentLock(namespace: string, leaseName: string, records: readonly Item[]): Item {
  const lockName = records
    .map((record) => record.view.annotations[LOCK_NAME_ANNOTATION])
    .find((name) => name !== undefined)
  const annotations: Record<string, string> =
    lockName === undefined ? {} : { [LOCK_NAME_ANNOTATION]: lockName }
  return {
    json: {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: leaseName, namespace, annotations },
      spec: {},
    },
    view: {
      namespace,
      name: leaseName,
      uid: '',
      resourceVersion: '',
      holderIdentity: undefined,
      leaseDurationSeconds: undefined,
      acquireTime: undefined,
      renewTime: undefined,
      leaseTransitions: undefined,
      labels: {},
      annotations,
      creationTimestamp: undefined,
    },
    absent: true,
  }
}

/**
 * The locks of a list with what their holder records show, and a lock for each key of `records` that
 * no lease of the list has (its lease does not exist yet), unless `withAbsent` is false (a `-l`
 * selector: such a lock has no labels to match).
 */
export function withAbsentLocks(locks: readonly Item[], records: HolderRecords, withAbsent: boolean): Item[] {
  if (!withAbsent) return [...locks]
  const present = new Set(locks.map((lock) => lockKey(lock.view)))
  const absent = records
    .keys()
    .filter((key) => !present.has(key))
    .map((key) => {
      const items = records.itemsOf(key)
      const first = items[0] as Item
      return absentLock(first.view.namespace, holderRecordLock(first.view) as string, items)
    })
    // Only while a record names a holder: a record the controller freed does not make a lock.
    .filter((lock) => records.of(lock).some((record) => isHeld(record.view)))
  if (absent.length === 0) return [...locks]
  // In the server's order: by namespace, then name.
  const order = (lock: Item) => [lock.view.namespace, lock.view.name] as const
  return [...locks, ...absent].sort((a, b) => {
    const [x, y] = [order(a), order(b)]
    return x[0] !== y[0] ? (x[0] < y[0] ? -1 : 1) : x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0
  })
}
