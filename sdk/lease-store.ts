import type { LeaseDraft, LeaseObject, LeaseRecord } from './lease-record.ts'
import type { ServerVersionInfo } from './server-version.ts'

/**
 * The narrow storage interface under the lock algorithm. Two implementations: the Kubernetes API
 * (`createKubernetesLeaseStore`) and an in-memory store with the same compare-and-swap semantics
 * (`createMemoryLeaseStore`). One contract test suite runs against both.
 *
 * Failures are `LockError`s:
 * - `LeaseConflictError` — create of an existing name (`AlreadyExists`), or an update/delete whose
 *   `uid`/`resourceVersion` preconditions no longer match (`Conflict`), including an update of a lease
 *   that was deleted (it never re-creates it);
 * - `LeaseNotFoundError` — delete of a lease that does not exist;
 * - `LockPermissionError` — 401/403;
 * - `LockUnavailableError` — no answer or a server error; `outcomeUnknown` says a write may have applied;
 * - `WatchExpiredError` — a watch from a `resourceVersion` the server no longer has (410 Gone);
 * - `LockApiError` — anything else the server rejected.
 *
 * An aborted `signal` rejects with `signal.reason`.
 */
export interface LeaseStore {
  /** Where the leases live, for messages: the API server URL, or `memory`. */
  readonly server: string

  /**
   * The longest a healthy watch of this store stays open: the server ends it after this many seconds
   * (the store's `watch` then resolves), and resuming costs one request. A watch silent for longer than
   * this plus a margin is taken for a stalled connection (see `WatchHub`). `undefined`: a watch may stay
   * open and silent for as long as nothing changes, and silence is never taken for a stall.
   */
  readonly watchTimeoutSeconds?: number | undefined

  /** A consistent read (never from a cache). `undefined` if the lease does not exist. */
  get(namespace: string, name: string, options?: RequestOptions): Promise<LeaseRecord | undefined>

  /** Creates the lease; fails with `LeaseConflictError('AlreadyExists')` if the name is taken. */
  create(draft: LeaseDraft, options?: RequestOptions): Promise<LeaseRecord>

  /**
   * Replaces the lease `record.namespace/record.name` with `record`, only if its `uid` and
   * `resourceVersion` still match (else `LeaseConflictError('Conflict')`).
   */
  update(record: LeaseRecord, options?: RequestOptions): Promise<LeaseRecord>

  /** Deletes the lease, only if `uid` and `resourceVersion` still match. */
  delete(
    namespace: string,
    name: string,
    preconditions: { readonly uid: string; readonly resourceVersion: string },
    options?: RequestOptions,
  ): Promise<void>

  /**
   * A consistent list, with the collection `resourceVersion` to watch from; of every namespace when
   * `namespace` is `undefined`. With `limit`, one page: `continue` of the result asks for the next.
   */
  list(namespace: string | undefined, options?: ListOptions): Promise<LeaseList>

  /**
   * Streams changes after `options.resourceVersion` to `onEvent`, in order. Resolves when the server
   * ends the stream or `options.signal` aborts it (resume from the last seen `resourceVersion`); rejects
   * with `WatchExpiredError` when that `resourceVersion` is too old (list again), or with another
   * `LockError`.
   */
  watch(
    namespace: string | undefined,
    options: WatchOptions,
    onEvent: (event: LeaseEvent) => void,
  ): Promise<void>

  /**
   * The API server's version (`GET /version`), which the lock client reads once to warn when fencing
   * tokens rest on etcd's behaviour rather than the API's promise (before Kubernetes 1.35). Optional:
   * a store without it (the memory store) is not checked.
   */
  serverVersion?(options?: RequestOptions): Promise<ServerVersionInfo>

  /** Frees what the store holds open (connections). Optional; the SDK calls it on stores it created. */
  close?(): Promise<void>
}

export interface RequestOptions {
  readonly signal?: AbortSignal | undefined
}

export interface ListOptions extends RequestOptions {
  /** Equality selectors only, as `key=value[,key=value]`. */
  readonly labelSelector?: string | undefined
  /** At most this many items (one page); `continue` of the answer asks for the next page. */
  readonly limit?: number | undefined
  /** The `continue` token of the previous page. */
  readonly continue?: string | undefined
  /** Also return each lease as the API server sent it (`LeaseList.objects`), e.g. to print it whole. */
  readonly objects?: boolean | undefined
}

export interface WatchOptions extends Omit<ListOptions, 'limit' | 'continue' | 'objects'> {
  readonly resourceVersion: string
}

export interface LeaseList {
  readonly items: readonly LeaseRecord[]
  readonly resourceVersion: string
  /** Set when more pages follow: pass it as `continue` to list the next one. */
  readonly continue?: string | undefined
  /** With `objects: true`, the leases as sent, in the order of `items`. */
  readonly objects?: readonly LeaseObject[] | undefined
}

export type LeaseEvent =
  | { readonly type: 'ADDED' | 'MODIFIED' | 'DELETED'; readonly lease: LeaseRecord }
  | { readonly type: 'BOOKMARK'; readonly resourceVersion: string }
