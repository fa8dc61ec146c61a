import { randomUUID } from 'node:crypto'
import { LeaseConflictError, LeaseNotFoundError, LockApiError, WatchExpiredError } from './errors.ts'
import { isDns1123Subdomain } from './lease-name.ts'
import type { LeaseDraft, LeaseRecord } from './lease-record.ts'
import { recordToLease } from './lease-record.ts'
import type {
  LeaseEvent,
  LeaseList,
  LeaseStore,
  ListOptions,
  RequestOptions,
  WatchOptions,
} from './lease-store.ts'

/**
 * A `LeaseStore` in memory with the API server's compare-and-swap semantics (resourceVersion from one
 * global revision counter, uid preconditions, AlreadyExists/Conflict), watches with history and 410
 * Gone after compaction, and fault injection: errors before a request is applied or after it was
 * applied (the "timeout after the request was sent" case), paused requests, broken watches.
 */
export interface MemoryLeaseStore extends LeaseStore {
  /** Every request, in order (`peek`/`seed` are not recorded). */
  readonly calls: readonly MemoryStoreCall[]
  /** The stored lease, without recording a call. */
  peek(namespace: string, name: string): LeaseRecord | undefined
  /**
   * Stores `draft` as if someone else wrote it (a new revision, a new uid unless the lease exists), and
   * emits the watch event. For tests that need a lease in a given state.
   */
  seed(draft: LeaseDraft): LeaseRecord
  /** Deletes a lease unconditionally (as an administrator would), emitting the watch event. */
  remove(namespace: string, name: string): void
  /**
   * Makes the next `times` requests of `operation` fail with `error()`; with `phase: 'after'` the
   * request is applied first (the caller cannot know it was).
   */
  failNext(
    operation: MemoryStoreOperation,
    error: () => Error,
    options?: { phase?: FaultPhase; times?: number },
  ): void
  /** Holds requests of `operation` until the returned `resume()`; a request's signal still aborts it. */
  pause(operation: MemoryStoreOperation): { resume(): void; readonly waiting: number }
  /** Ends every open watch: normally, or with `error` (for example a `WatchExpiredError`). */
  endWatches(error?: Error): void
  /** Forgets watch history: watching from any resourceVersion before now fails with 410 Gone. */
  compact(): void
  /** The number of open watches. */
  readonly openWatches: number
}

export type MemoryStoreOperation = 'get' | 'create' | 'update' | 'delete' | 'list' | 'watch'
export type FaultPhase = 'before' | 'after'

export interface MemoryStoreCall {
  readonly operation: MemoryStoreOperation
  readonly namespace: string
  readonly name: string | undefined
}

export interface MemoryLeaseStoreOptions {
  /**
   * The revision before the first write. Starts above 2^53 so that code comparing resourceVersions as
   * numbers fails its tests.
   * @default 9007199254740990
   */
  readonly startRevision?: bigint
  /**
   * Watch events kept for resuming watches; older resourceVersions get 410 Gone.
   * @default 1000
   */
  readonly historyLimit?: number
  /**
   * Called synchronously with every change, at the instant it is applied (before any caller hears of
   * it). For tests that check orderings against the moment of a write.
   */
  readonly onChange?: ((event: LeaseEvent) => void) | undefined
}

interface Watcher {
  readonly namespace: string | undefined
  readonly selector: Selector
  readonly onEvent: (event: LeaseEvent) => void
  readonly finish: (error?: Error) => void
}

type Selector = readonly (readonly [string, string])[]

const MICRO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/

export function createMemoryLeaseStore(options: MemoryLeaseStoreOptions = {}): MemoryLeaseStore {
  let revision = options.startRevision ?? 9007199254740990n
  const historyLimit = options.historyLimit ?? 1000
  const leases = new Map<string, LeaseRecord>()
  const history: { namespace: string; revision: bigint; event: LeaseEvent }[] = []
  let oldestResumable = revision
  const watchers = new Set<Watcher>()
  const calls: MemoryStoreCall[] = []
  const faults: { operation: MemoryStoreOperation; phase: FaultPhase; error: () => Error; times: number }[] =
    []
  const pauses = new Map<MemoryStoreOperation, { waiters: Set<() => void> }>()

  const key = (namespace: string, name: string) => `${namespace}/${name}`
  /** Whether a lease of `namespace` is seen by a list or watch of `scope` (`undefined`: all namespaces). */
  const inNamespace = (namespace: string, scope: string | undefined) =>
    scope === undefined || namespace === scope

  function takeFault(operation: MemoryStoreOperation, phase: FaultPhase): Error | undefined {
    const index = faults.findIndex((fault) => fault.operation === operation && fault.phase === phase)
    if (index < 0) return undefined
    const fault = faults[index] as (typeof faults)[number]
    fault.times--
    if (fault.times <= 0) faults.splice(index, 1)
    return fault.error()
  }

  async function enter(
    operation: MemoryStoreOperation,
    namespace: string,
    name: string | undefined,
    signal?: AbortSignal,
  ) {
    signal?.throwIfAborted()
    calls.push({ operation, namespace, name })
    // Requests complete asynchronously, as over a network.
    await Promise.resolve()
    const pause = pauses.get(operation)
    if (pause) {
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          pause.waiters.delete(go)
          reject(signal?.reason)
        }
        const go = () => {
          signal?.removeEventListener('abort', onAbort)
          resolve()
        }
        pause.waiters.add(go)
        signal?.addEventListener('abort', onAbort, { once: true })
      })
    }
    signal?.throwIfAborted()
    const before = takeFault(operation, 'before')
    if (before) throw before
  }

  function leave(operation: MemoryStoreOperation, signal?: AbortSignal) {
    const after = takeFault(operation, 'after')
    if (after) throw after
    // An abort that arrives after the server applied the request still fails the call.
    signal?.throwIfAborted()
  }

  function validate(record: LeaseDraft): void {
    if (!isDns1123Subdomain(record.name)) {
      throw new LockApiError(
        422,
        'Invalid',
        `Lease "${record.name}" is invalid: metadata.name must be a DNS-1123 subdomain`,
      )
    }
    for (const field of ['acquireTime', 'renewTime'] as const) {
      const value = record[field]
      if (value !== undefined && !MICRO_TIME.test(value)) {
        throw new LockApiError(
          400,
          'BadRequest',
          `spec.${field}: expected a MicroTime with six fractional digits, got ${value}`,
        )
      }
    }
    const duration = record.leaseDurationSeconds
    if (duration !== undefined && (!Number.isInteger(duration) || duration <= 0)) {
      throw new LockApiError(
        422,
        'Invalid',
        `spec.leaseDurationSeconds must be a positive integer, got ${duration}`,
      )
    }
    for (const value of Object.values(record.labels)) {
      if (value.length > 63)
        throw new LockApiError(422, 'Invalid', 'metadata.labels: values must be at most 63 characters')
    }
  }

  function store(record: LeaseDraft, uid: string, creationTimestamp: string | undefined): LeaseRecord {
    revision++
    const stored: LeaseRecord = Object.freeze({
      namespace: record.namespace,
      name: record.name,
      uid,
      resourceVersion: revision.toString(),
      holderIdentity: record.holderIdentity === '' ? undefined : record.holderIdentity,
      leaseDurationSeconds: record.leaseDurationSeconds,
      acquireTime: record.acquireTime,
      renewTime: record.renewTime,
      leaseTransitions: record.leaseTransitions,
      labels: Object.freeze({ ...record.labels }),
      annotations: Object.freeze({ ...record.annotations }),
      creationTimestamp: creationTimestamp ?? new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      ...(record.retained === undefined ? {} : { retained: record.retained }),
    })
    leases.set(key(record.namespace, record.name), stored)
    return stored
  }

  function emit(namespace: string, event: LeaseEvent & { lease: LeaseRecord }, at: bigint): void {
    options.onChange?.(event)
    history.push({ namespace, revision: at, event })
    while (history.length > historyLimit) {
      const dropped = history.shift()
      if (dropped) oldestResumable = dropped.revision
    }
    for (const watcher of watchers) {
      if (inNamespace(namespace, watcher.namespace) && matches(event.lease.labels, watcher.selector)) {
        const deliver = watcher.onEvent
        queueMicrotask(() => {
          if (watchers.has(watcher)) deliver(event)
        })
      }
    }
  }

  const memory: MemoryLeaseStore = {
    server: 'memory',
    calls,

    async get(namespace: string, name: string, options?: RequestOptions) {
      await enter('get', namespace, name, options?.signal)
      const found = leases.get(key(namespace, name))
      leave('get', options?.signal)
      return found
    },

    async create(draft: LeaseDraft, options?: RequestOptions) {
      await enter('create', draft.namespace, draft.name, options?.signal)
      validate(draft)
      if (leases.has(key(draft.namespace, draft.name))) {
        throw new LeaseConflictError({
          reason: 'AlreadyExists',
          leaseName: draft.name,
          namespace: draft.namespace,
        })
      }
      const created = store(draft, randomUUID(), undefined)
      emit(draft.namespace, { type: 'ADDED', lease: created }, revision)
      leave('create', options?.signal)
      return created
    },

    async update(record: LeaseRecord, options?: RequestOptions) {
      await enter('update', record.namespace, record.name, options?.signal)
      if (!record.resourceVersion) {
        throw new LockApiError(422, 'Invalid', 'metadata.resourceVersion: must be specified for an update')
      }
      validate(record)
      const current = leases.get(key(record.namespace, record.name))
      if (
        current === undefined ||
        current.uid !== record.uid ||
        current.resourceVersion !== record.resourceVersion
      ) {
        throw new LeaseConflictError({
          reason: 'Conflict',
          leaseName: record.name,
          namespace: record.namespace,
        })
      }
      const updated = store(record, current.uid, current.creationTimestamp)
      emit(record.namespace, { type: 'MODIFIED', lease: updated }, revision)
      leave('update', options?.signal)
      return updated
    },

    async delete(namespace, name, preconditions, options?: RequestOptions) {
      await enter('delete', namespace, name, options?.signal)
      const current = leases.get(key(namespace, name))
      if (current === undefined) throw new LeaseNotFoundError({ leaseName: name, namespace })
      if (current.uid !== preconditions.uid || current.resourceVersion !== preconditions.resourceVersion) {
        throw new LeaseConflictError({ reason: 'Conflict', leaseName: name, namespace })
      }
      remove(namespace, name)
      leave('delete', options?.signal)
    },

    async list(namespace: string | undefined, options?: ListOptions): Promise<LeaseList> {
      await enter('list', namespace ?? '', undefined, options?.signal)
      const selector = parseSelector(options?.labelSelector)
      const all = [...leases.values()]
        .filter((lease) => inNamespace(lease.namespace, namespace) && matches(lease.labels, selector))
        .sort((a, b) => key(a.namespace, a.name).localeCompare(key(b.namespace, b.name)))
      // Pages continue after the key of the last item, as the API server's continue tokens do.
      const after = options?.continue
      const from =
        after === undefined ? 0 : all.findIndex((lease) => key(lease.namespace, lease.name) > after)
      const rest = from < 0 ? [] : all.slice(from)
      const limit = options?.limit
      const items = limit !== undefined && limit > 0 ? rest.slice(0, limit) : rest
      const last = items.at(-1)
      const more = last !== undefined && items.length < rest.length
      const result = {
        items,
        resourceVersion: revision.toString(),
        ...(more ? { continue: key(last.namespace, last.name) } : {}),
        ...(options?.objects ? { objects: items.map((item) => recordToLease(item)) } : {}),
      }
      leave('list', options?.signal)
      return result
    },

    async watch(namespace: string | undefined, options: WatchOptions, onEvent: (event: LeaseEvent) => void) {
      const signal = options.signal
      await enter('watch', namespace ?? '', undefined, signal)
      const from = BigInt(options.resourceVersion || revision.toString())
      if (from < oldestResumable) throw new WatchExpiredError()
      const selector = parseSelector(options.labelSelector)
      if (signal?.aborted) return
      await new Promise<void>((resolve, reject) => {
        const finish = (error?: Error) => {
          if (!watchers.delete(watcher)) return
          signal?.removeEventListener('abort', onAbort)
          if (error) reject(error)
          else resolve()
        }
        const onAbort = () => finish()
        const watcher: Watcher = { namespace, selector, onEvent, finish }
        watchers.add(watcher)
        signal?.addEventListener('abort', onAbort, { once: true })
        const backlog = history.filter(
          (entry) =>
            inNamespace(entry.namespace, namespace) &&
            entry.revision > from &&
            entry.event.type !== 'BOOKMARK' &&
            matches(entry.event.lease.labels, selector),
        )
        for (const entry of backlog) {
          queueMicrotask(() => {
            if (watchers.has(watcher)) onEvent(entry.event)
          })
        }
      })
    },

    peek(namespace, name) {
      return leases.get(key(namespace, name))
    },

    seed(draft: LeaseDraft) {
      const current = leases.get(key(draft.namespace, draft.name))
      const stored = store(draft, current?.uid ?? randomUUID(), current?.creationTimestamp)
      emit(draft.namespace, { type: current ? 'MODIFIED' : 'ADDED', lease: stored }, revision)
      return stored
    },

    remove,

    failNext(operation, error, options = {}) {
      faults.push({ operation, phase: options.phase ?? 'before', error, times: options.times ?? 1 })
    },

    pause(operation) {
      const pause = { waiters: new Set<() => void>() }
      pauses.set(operation, pause)
      return {
        resume() {
          if (pauses.get(operation) === pause) pauses.delete(operation)
          for (const go of pause.waiters) go()
          pause.waiters.clear()
        },
        get waiting() {
          return pause.waiters.size
        },
      }
    },

    endWatches(error?: Error) {
      for (const watcher of [...watchers]) watcher.finish(error)
    },

    compact() {
      history.length = 0
      oldestResumable = revision
    },

    get openWatches() {
      return watchers.size
    },
  }

  function remove(namespace: string, name: string): void {
    const current = leases.get(key(namespace, name))
    if (current === undefined) return
    leases.delete(key(namespace, name))
    revision++
    emit(
      namespace,
      { type: 'DELETED', lease: { ...current, resourceVersion: revision.toString() } },
      revision,
    )
  }

  return memory
}

function parseSelector(selector: string | undefined): Selector {
  if (!selector) return []
  return selector.split(',').map((part) => {
    const [name, value] = part.split('=')
    if (name === undefined || value === undefined || part.includes('!')) {
      throw new LockApiError(
        400,
        'BadRequest',
        `unsupported label selector ${JSON.stringify(selector)}: use key=value`,
      )
    }
    return [name.trim(), value.trim()] as const
  })
}

function matches(labels: Readonly<Record<string, string>>, selector: Selector): boolean {
  return selector.every(([name, value]) => labels[name] === value)
}
