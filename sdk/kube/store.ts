import type { Logger } from '../clock.ts'
import {
  InvalidLockOptionsError,
  LeaseConflictError,
  LeaseNotFoundError,
  LockApiError,
  type LockError,
} from '../errors.ts'
import type { LeaseDraft, LeaseObject, LeaseRecord } from '../lease-record.ts'
import { leaseToRecord, recordToLease } from '../lease-record.ts'
import type { LeaseList, LeaseStore, ListOptions, RequestOptions, WatchOptions } from '../lease-store.ts'
import type { ServerVersionInfo } from '../server-version.ts'
import { STALL_MARGIN_SECONDS } from '../watch-hub.ts'
import type { ErrorContext, Verb } from './errors.ts'
import { responseError, transportError, watchEventError } from './errors.ts'
import type { Connection, HttpResponse, RequestInit } from './http.ts'
import { HttpTransport } from './http.ts'

/**
 * The `LeaseStore` over the Kubernetes API: `coordination.k8s.io/v1` Leases through the small HTTP
 * layer in `http.ts`. Every write carries its preconditions (uid and resourceVersion in the body of an
 * update, `preconditions` in the DeleteOptions of a delete); every failure is one of the SDK's errors.
 */

export interface KubernetesStoreOptions {
  /**
   * Server-side watch duration in seconds (`timeoutSeconds`): the server ends every watch after it, and
   * the lock client resumes from the last `resourceVersion` at the cost of one request. It also bounds
   * how long a stalled watch (open, silent: a half-open connection) counts as healthy: silence for
   * longer than this plus 5 s is taken for a stall, and waiters poll until a new watch works. Kubernetes
   * sends bookmarks only about once a minute, so silence alone cannot tell a quiet watch from a dead one
   * any sooner. An integer from 1 to 3600.
   * @default 30
   */
  readonly watchTimeoutSeconds?: number
  /**
   * Told of every request at `debug` level (`request`, with `method` and `url`): a CLI's `--verbose`.
   * @default silent
   */
  readonly logger?: Logger | undefined
}

/** A watch of the Kubernetes store: more than every `LeaseStore` offers. */
export interface KubernetesWatchOptions extends WatchOptions {
  /** A field selector, as `metadata.name=orders`: a watch of one lease. */
  readonly fieldSelector?: string | undefined
  /** Also hand each lease over as the API server sent it (`KubernetesLeaseEvent.object`). */
  readonly objects?: boolean | undefined
}

/** A watch event of the Kubernetes store: with `objects: true`, changes carry the lease as sent. */
export type KubernetesLeaseEvent =
  | {
      readonly type: 'ADDED' | 'MODIFIED' | 'DELETED'
      readonly lease: LeaseRecord
      readonly object?: LeaseObject | undefined
    }
  | { readonly type: 'BOOKMARK'; readonly resourceVersion: string }

/** A `events.k8s.io/v1` Event, as sent and received. */
export type EventObject = Readonly<Record<string, unknown>>

/** The Kubernetes store: leases, and the Events that the controller records about them. */
export interface KubernetesLeaseStore extends LeaseStore {
  /** A consistent read of the lease as the API server sends it (`undefined` if there is none). */
  getObject(namespace: string, name: string, options?: RequestOptions): Promise<LeaseObject | undefined>
  watch(
    namespace: string | undefined,
    options: KubernetesWatchOptions,
    onEvent: (event: KubernetesLeaseEvent) => void,
  ): Promise<void>
  /** Creates an `events.k8s.io/v1` Event. */
  createEvent(namespace: string, event: EventObject, options?: RequestOptions): Promise<EventObject>
  /** Merge-patches an Event (a repeated one: its series count). */
  patchEvent(
    namespace: string,
    name: string,
    patch: EventObject,
    options?: RequestOptions,
  ): Promise<EventObject>
}

const DEFAULT_WATCH_TIMEOUT_SECONDS = 30
const EVENTS = 'events.events.k8s.io'

function eventsPath(namespace: string, name?: string): string {
  const collection = `/apis/events.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/events`
  return name === undefined ? collection : `${collection}/${encodeURIComponent(name)}`
}
const LEASES = '/apis/coordination.k8s.io/v1'

function leasesPath(namespace: string | undefined, name?: string): string {
  const collection =
    namespace === undefined
      ? `${LEASES}/leases`
      : `${LEASES}/namespaces/${encodeURIComponent(namespace)}/leases`
  return name === undefined ? collection : `${collection}/${encodeURIComponent(name)}`
}

/**
 * A store over the API server that `connect()` describes, called on the first request (a kubeconfig's
 * exec plugin then runs) and again after it failed.
 */
export function createStoreOverConnection(
  connect: () => Connection | Promise<Connection>,
  server: string,
  options: KubernetesStoreOptions = {},
): KubernetesLeaseStore {
  const watchTimeoutSeconds = options.watchTimeoutSeconds ?? DEFAULT_WATCH_TIMEOUT_SECONDS
  if (!Number.isInteger(watchTimeoutSeconds) || watchTimeoutSeconds < 1 || watchTimeoutSeconds > 3600) {
    throw new InvalidLockOptionsError(
      'watchTimeoutSeconds',
      'an integer number of seconds from 1 to 3600',
      watchTimeoutSeconds,
    )
  }
  const { logger } = options
  const onRequest =
    logger?.debug && ((method: string, url: string) => logger.debug?.('request', { method, url }))
  let transport: Promise<HttpTransport> | undefined
  let closed = false
  // Connected on the first request; a failed connection (a broken exec plugin) is tried again on the next.
  const fresh = async () => {
    transport ??= Promise.resolve()
      .then(connect)
      .then((resolved) => new HttpTransport(resolved, onRequest))
    try {
      return await transport
    } catch (error) {
      transport = undefined
      throw error
    }
  }

  async function call(
    verb: Verb,
    namespace: string | undefined,
    name: string | undefined,
    send: (http: HttpTransport) => Promise<HttpResponse>,
    signal: AbortSignal | undefined,
    accept: (status: number) => boolean = (status) => status >= 200 && status < 300,
    resource?: string,
  ): Promise<HttpResponse> {
    signal?.throwIfAborted()
    const context: ErrorContext = { verb, namespace: namespace ?? '', name, server, resource }
    let response: HttpResponse
    try {
      response = await send(await fresh())
    } catch (error) {
      if (signal?.aborted) throw signal.reason
      throw transportError(error, context)
    }
    if (!accept(response.status)) throw responseError(response, context)
    // A success that is not JSON comes from something other than an API server (a proxy's login page).
    if (typeof response.body === 'string' && response.status >= 200 && response.status < 300) {
      throw new LockApiError(
        response.status,
        undefined,
        `the server at ${server} did not answer with JSON: is it a Kubernetes API server?`,
        { cause: response.body.slice(0, 500) },
      )
    }
    return response
  }

  const request = (method: string, path: string, init: RequestInit) => (http: HttpTransport) =>
    http.request(method, path, init)

  const toRecord = (body: unknown, namespace?: string): LeaseRecord => {
    const lease = body as LeaseObject
    return leaseToRecord(
      namespace === undefined ? lease : { ...lease, metadata: { ...lease.metadata, namespace } },
    )
  }

  /** The lease as sent, `undefined` for a 404 about the lease (one about its namespace is an error). */
  async function read(namespace: string, name: string, signal: AbortSignal | undefined) {
    const response = await call(
      'get',
      namespace,
      name,
      request('GET', leasesPath(namespace, name), { signal }),
      signal,
      (status) => status === 200 || status === 404,
    )
    if (response.status === 404) {
      // A 404 about the namespace (it does not exist) is an error; one about the lease is an answer.
      const details = (response.body as { details?: { kind?: string } } | undefined)?.details
      if (details?.kind === 'namespaces') {
        throw responseError(response, { verb: 'get', namespace, name, server })
      }
      return undefined
    }
    return response.body as LeaseObject
  }

  const store: KubernetesLeaseStore = {
    server,
    watchTimeoutSeconds,

    async getObject(namespace, name, options?: RequestOptions) {
      return read(namespace, name, options?.signal)
    },

    async get(namespace, name, options?: RequestOptions) {
      const lease = await read(namespace, name, options?.signal)
      return lease === undefined ? undefined : toRecord(lease)
    },

    async create(draft: LeaseDraft, options?: RequestOptions) {
      const signal = options?.signal
      const response = await call(
        'create',
        draft.namespace,
        draft.name,
        request('POST', leasesPath(draft.namespace), { body: recordToLease(draft), signal }),
        signal,
      )
      return toRecord(response.body)
    },

    async update(record: LeaseRecord, options?: RequestOptions) {
      const signal = options?.signal
      try {
        const response = await call(
          'update',
          record.namespace,
          record.name,
          request('PUT', leasesPath(record.namespace, record.name), { body: recordToLease(record), signal }),
          signal,
        )
        return toRecord(response.body)
      } catch (error) {
        // The uid precondition makes a PUT to a deleted lease fail instead of re-creating it; whatever
        // status the server uses for that, to the caller it is a lost compare-and-swap.
        if (error instanceof LeaseNotFoundError) {
          throw new LeaseConflictError(
            { reason: 'Conflict', leaseName: record.name, namespace: record.namespace },
            { cause: error },
          )
        }
        throw error
      }
    },

    async delete(namespace, name, preconditions, options?: RequestOptions) {
      const signal = options?.signal
      const body = {
        apiVersion: 'v1',
        kind: 'DeleteOptions',
        preconditions: { uid: preconditions.uid, resourceVersion: preconditions.resourceVersion },
      }
      await call(
        'delete',
        namespace,
        name,
        request('DELETE', leasesPath(namespace, name), { body, signal }),
        signal,
      )
    },

    async list(namespace, options?: ListOptions): Promise<LeaseList> {
      const signal = options?.signal
      const query = {
        labelSelector: options?.labelSelector,
        limit: options?.limit,
        continue: options?.continue,
      }
      const response = await call(
        'list',
        namespace,
        undefined,
        request('GET', leasesPath(namespace), { query, signal }),
        signal,
      )
      const body = response.body as {
        items?: LeaseObject[]
        metadata?: { resourceVersion?: string; continue?: string }
      }
      const objects = body.items ?? []
      return {
        items: objects.map((lease) => toRecord(lease, namespace ?? lease.metadata?.namespace)),
        resourceVersion: body.metadata?.resourceVersion ?? '',
        ...(body.metadata?.continue ? { continue: body.metadata.continue } : {}),
        ...(options?.objects ? { objects } : {}),
      }
    },

    async serverVersion(options?: RequestOptions): Promise<ServerVersionInfo> {
      const signal = options?.signal
      signal?.throwIfAborted()
      const response = await call('get', undefined, 'version', request('GET', '/version', { signal }), signal)
      const { major, minor, gitVersion } = (response.body ?? {}) as Partial<ServerVersionInfo>
      return { major: major ?? '', minor: minor ?? '', gitVersion: gitVersion ?? '' }
    },

    async watch(namespace, options: KubernetesWatchOptions, onEvent): Promise<void> {
      const { signal } = options
      signal?.throwIfAborted()
      const context: ErrorContext = { verb: 'watch', namespace: namespace ?? '', name: undefined, server }
      // The server ends the watch after `timeoutSeconds`; a stream silent for longer than that plus a
      // margin is cut here too, so that callers of `watch` without a hub are not left hanging.
      const stall = new AbortController()
      let stallTimer: ReturnType<typeof setTimeout> | undefined
      const armStall = () => {
        if (stallTimer !== undefined) clearTimeout(stallTimer)
        stallTimer = setTimeout(() => stall.abort(), (watchTimeoutSeconds + STALL_MARGIN_SECONDS) * 1000)
      }
      const streamSignal = signal === undefined ? stall.signal : AbortSignal.any([signal, stall.signal])
      let failure: LockError | undefined
      armStall()
      try {
        const response = await (await fresh()).stream(
          leasesPath(namespace),
          {
            query: {
              watch: true,
              resourceVersion: options.resourceVersion,
              allowWatchBookmarks: true,
              labelSelector: options.labelSelector,
              fieldSelector: options.fieldSelector,
              timeoutSeconds: watchTimeoutSeconds,
            },
            signal: streamSignal,
          },
          (object) => {
            if (failure !== undefined || streamSignal.aborted) return
            armStall()
            const { type, object: item } = object as { type?: string; object?: unknown }
            if (type === 'ERROR') {
              failure = watchEventError(item, context)
              stall.abort()
            } else if (type === 'BOOKMARK') {
              const resourceVersion = (item as LeaseObject | undefined)?.metadata?.resourceVersion
              if (resourceVersion) onEvent({ type, resourceVersion })
            } else if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') {
              const lease = toRecord(item, namespace ?? (item as LeaseObject).metadata?.namespace)
              onEvent(options.objects ? { type, lease, object: item as LeaseObject } : { type, lease })
            }
          },
        )
        if (failure !== undefined) throw failure
        if (response.status !== 200 && !streamSignal.aborted) throw responseError(response, context)
      } catch (error) {
        if (failure !== undefined) throw failure
        if (signal?.aborted || stall.signal.aborted) return
        throw transportError(error, context)
      } finally {
        if (stallTimer !== undefined) clearTimeout(stallTimer)
      }
    },

    async createEvent(namespace, event, options?: RequestOptions) {
      const signal = options?.signal
      const response = await call(
        'create',
        namespace,
        undefined,
        request('POST', eventsPath(namespace), { body: event, signal }),
        signal,
        undefined,
        EVENTS,
      )
      return response.body as EventObject
    },

    async patchEvent(namespace, name, patch, options?: RequestOptions) {
      const signal = options?.signal
      const response = await call(
        'patch',
        namespace,
        name,
        request('PATCH', eventsPath(namespace, name), {
          body: patch,
          contentType: 'application/merge-patch+json',
          signal,
        }),
        signal,
        undefined,
        EVENTS,
      )
      return response.body as EventObject
    },

    async close() {
      if (closed) return
      closed = true
      const pending = transport
      transport = undefined
      ;(await pending?.catch(() => undefined))?.close()
    },
  }
  return Object.freeze(store)
}
