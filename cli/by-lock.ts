import type { Item } from './output.ts'

/** The key of a lock: its namespace and Lease name. */
export function lockKey(lock: Pick<Item['view'], 'namespace' | 'name'>): string {
  return `${lock.namespace}/${lock.name}`
}

/**
 * Leases that belong to a lock without being it — the tickets of its waiters, the records of its
 * shared or semaphore holders — grouped by the lock they name, as the CLI sees them in a list or a
 * watch. They carry the managed-by label like a lock, so each kind is listed apart and set here.
 */
export class ByLock {
  /** `namespace/lock lease name` → lease name → lease. */
  readonly #byLock = new Map<string, Map<string, Item>>()
  /** The Lease name of the lock an item belongs to; `undefined` if it belongs to none. */
  readonly #lockOf: (item: Item) => string | undefined

  constructor(lockOf: (item: Item) => string | undefined, items: Iterable<Item> = []) {
    this.#lockOf = lockOf
    for (const item of items) this.set(item)
  }

  /** The key of a lock: its namespace and Lease name. */
  keyOf(lock: Item): string {
    return lockKey(lock.view)
  }

  /** Adds or replaces an item; the key of its lock, `undefined` if it belongs to none. */
  set(item: Item): string | undefined {
    const key = this.#keyOfMember(item)
    if (key === undefined) return undefined
    let members = this.#byLock.get(key)
    if (members === undefined) {
      members = new Map()
      this.#byLock.set(key, members)
    }
    members.set(item.view.name, item)
    return key
  }

  /** Forgets an item; the key of its lock, `undefined` if it belongs to none. */
  delete(item: Item): string | undefined {
    const key = this.#keyOfMember(item)
    if (key === undefined) return undefined
    const members = this.#byLock.get(key)
    members?.delete(item.view.name)
    if (members?.size === 0) this.#byLock.delete(key)
    return key
  }

  /** The items of the lock with this key, in no particular order. */
  itemsOf(key: string): Item[] {
    return [...(this.#byLock.get(key)?.values() ?? [])]
  }

  /** The keys of the locks that have items. */
  keys(): string[] {
    return [...this.#byLock.keys()]
  }

  #keyOfMember(item: Item): string | undefined {
    const lease = this.#lockOf(item)
    return lease === undefined ? undefined : lockKey({ namespace: item.view.namespace, name: lease })
  }
}
