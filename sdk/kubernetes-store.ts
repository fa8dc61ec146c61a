// The only file that imports @kubernetes/client-node: it speaks the Kubernetes API and translates its
// errors — by HTTP status and by the Status `reason` — into the SDK's own errors.
import {
  ApiException,
  CoordinationV1Api,
  KubeConfig,
  Observable,
  type RequestContext,
  type ResponseContext,
  type V1DeleteOptions,
  type V1Lease,
  VersionApi,
  Watch,
} from '@kubernetes/client-node'
import { LEASE_RESOURCE } from './constants.ts'
import {
  InvalidLockOptionsError,
  LeaseConflictError,
  LeaseNotFoundError,
  LockApiError,
  LockError,
  LockPermissionError,
  LockUnavailableError,
  NamespaceNotFoundError,
  WatchExpiredError,
} from './errors.ts'
import type { LeaseDraft, LeaseObject, LeaseRecord } from './lease-record.ts'
import { leaseToRecord, recordToLease } from './lease-record.ts'
import type {
  LeaseEvent,
  LeaseList,
  LeaseStore,
  ListOptions,
  RequestOptions,
  WatchOptions,
} from './lease-store.ts'
import { STALL_MARGIN_SECONDS } from './watch-hub.ts'

export type { KubeConfig }

/** Loads configuration like kubectl: `KUBECONFIG`, else `~/.kube/config`, else the in-cluster service account. */
export function loadDefaultKubeConfig(): KubeConfig {
  const kubeConfig = new KubeConfig()
  kubeConfig.loadFromDefault()
  return kubeConfig
}

/** The namespace of the current context (in a pod: the service account's namespace), if any. */
export function kubeConfigNamespace(kubeConfig: KubeConfig): string | undefined {
  const context = kubeConfig.getContextObject(kubeConfig.getCurrentContext())
  const namespace = context?.namespace?.trim()
  return namespace === undefined || namespace === '' ? undefined : namespace
}

export interface KubernetesLeaseStoreOptions {
  /**
   * Server-side watch duration in seconds (`timeoutSeconds`): the server ends every watch after it, and
   * the lock client resumes from the last `resourceVersion` at the cost of one request. It also bounds
   * how long a stalled watch (open, silent: a half-open connection) counts as healthy: silence for
   * longer than this plus 5 s is taken for a stall, and waiters poll until a new watch works. Kubernetes
   * sends bookmarks only about once a minute, so silence alone cannot tell a quiet watch from a dead one
   * any sooner. An integer from 1 to 3600.
   * @default 15
   */
  readonly watchTimeoutSeconds?: number
}

const DEFAULT_WATCH_TIMEOUT_SECONDS = 15

type Verb = 'get' | 'create' | 'update' | 'delete' | 'list' | 'watch'
type Dispatcher = ReturnType<RequestContext['getDispatcher']>
type RequestConfig = Parameters<CoordinationV1Api['readNamespacedLease']>[1]

// Errors from a connection that never carried the request: a write failing this way was not applied.
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET_CONNECT',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_HAS_EXPIRED',
])

export function createKubernetesLeaseStore(
  kubeConfig: KubeConfig,
  options: KubernetesLeaseStoreOptions = {},
): LeaseStore {
  const server = kubeConfig.getCurrentCluster()?.server
  if (!server) {
    throw new LockApiError(
      0,
      undefined,
      'the kubeconfig has no current cluster: set a context with a cluster `server`',
    )
  }
  const api = kubeConfig.makeApiClient(CoordinationV1Api)
  const versionApi = kubeConfig.makeApiClient(VersionApi)
  const watchTimeoutSeconds = options.watchTimeoutSeconds ?? DEFAULT_WATCH_TIMEOUT_SECONDS
  if (!Number.isInteger(watchTimeoutSeconds) || watchTimeoutSeconds < 1 || watchTimeoutSeconds > 3600) {
    throw new InvalidLockOptionsError(
      'watchTimeoutSeconds',
      'an integer number of seconds from 1 to 3600',
      watchTimeoutSeconds,
    )
  }
  // The client builds a new connection pool for every request; reuse the first one so requests share
  // kept-alive connections (a handover then costs one round trip, not a TLS handshake as well).
  let dispatcher: Dispatcher
  let closed = false

  // The object-parameter API runs the observable middleware chain (the generated client's own small
  // Observable type), so the per-request hook returns those.
  function configFor(signal: AbortSignal | undefined): RequestConfig {
    return {
      middlewareMergeStrategy: 'append',
      middleware: [
        {
          pre: (context: RequestContext) => {
            if (dispatcher === undefined) dispatcher = context.getDispatcher()
            else context.setDispatcher(dispatcher as NonNullable<Dispatcher>)
            if (signal) context.setSignal(signal)
            return new Observable(Promise.resolve(context))
          },
          post: (response: ResponseContext) => new Observable(Promise.resolve(response)),
        },
      ],
    }
  }

  async function call<T>(
    verb: Verb,
    namespace: string,
    name: string | undefined,
    options: RequestOptions | undefined,
    run: (config: RequestConfig) => Promise<T>,
  ): Promise<T> {
    const signal = options?.signal
    signal?.throwIfAborted()
    try {
      return await run(configFor(signal))
    } catch (error) {
      if (signal?.aborted) throw signal.reason
      throw translateError(error, { verb, namespace, name, server: server as string })
    }
  }

  const store: LeaseStore = {
    server,
    watchTimeoutSeconds,

    async get(namespace, name, options) {
      try {
        const lease = await call('get', namespace, name, options, (config) =>
          api.readNamespacedLease({ name, namespace }, config),
        )
        return toRecord(lease)
      } catch (error) {
        if (error instanceof LeaseNotFoundError) return undefined
        throw error
      }
    },

    async create(draft: LeaseDraft, options) {
      const body = recordToLease(draft) as V1Lease
      const lease = await call('create', draft.namespace, draft.name, options, (config) =>
        api.createNamespacedLease({ namespace: draft.namespace, body }, config),
      )
      return toRecord(lease)
    },

    async update(record: LeaseRecord, options) {
      const body = recordToLease(record) as V1Lease
      try {
        const lease = await call('update', record.namespace, record.name, options, (config) =>
          api.replaceNamespacedLease({ name: record.name, namespace: record.namespace, body }, config),
        )
        return toRecord(lease)
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

    async delete(namespace, name, preconditions, options) {
      const body: V1DeleteOptions = {
        preconditions: { uid: preconditions.uid, resourceVersion: preconditions.resourceVersion },
      }
      await call('delete', namespace, name, options, (config) =>
        api.deleteNamespacedLease({ name, namespace, body }, config),
      )
    },

    async list(namespace, options?: ListOptions): Promise<LeaseList> {
      const list = await call('list', namespace, undefined, options, (config) =>
        api.listNamespacedLease({ namespace, labelSelector: options?.labelSelector }, config),
      )
      return {
        items: list.items.map((lease) => toRecord({ ...lease, metadata: { ...lease.metadata, namespace } })),
        resourceVersion: list.metadata?.resourceVersion ?? '',
      }
    },

    async serverVersion(options) {
      const signal = options?.signal
      signal?.throwIfAborted()
      try {
        const { major, minor, gitVersion } = await versionApi.getCode({}, configFor(signal))
        return { major, minor, gitVersion }
      } catch (error) {
        if (signal?.aborted) throw signal.reason
        throw translateError(error, { verb: 'get', namespace: '', name: 'version', server: server as string })
      }
    },

    watch(namespace, options: WatchOptions, onEvent: (event: LeaseEvent) => void): Promise<void> {
      return watchLeases(kubeConfig, server, namespace, options, watchTimeoutSeconds, onEvent)
    },

    async close() {
      if (closed) return
      closed = true
      const pool = dispatcher as { close?: () => Promise<void> } | undefined
      dispatcher = undefined
      await pool?.close?.()
    },
  }
  return Object.freeze(store)
}

function toRecord(lease: V1Lease): LeaseRecord {
  return leaseToRecord(lease as LeaseObject)
}

function watchLeases(
  kubeConfig: KubeConfig,
  server: string,
  namespace: string,
  options: WatchOptions,
  watchTimeoutSeconds: number,
  onEvent: (event: LeaseEvent) => void,
): Promise<void> {
  const { signal } = options
  if (signal?.aborted) return Promise.reject(signal.reason)
  return new Promise<void>((resolve, reject) => {
    let settled = false
    let controller: AbortController | undefined
    const finish = (error?: unknown) => {
      if (settled) return
      settled = true
      signal?.removeEventListener('abort', onAbort)
      controller?.abort()
      if (error === undefined || signal?.aborted) resolve()
      else reject(error)
    }
    const onAbort = () => finish()
    signal?.addEventListener('abort', onAbort, { once: true })
    const path = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`
    const query = {
      resourceVersion: options.resourceVersion,
      allowWatchBookmarks: true,
      labelSelector: options.labelSelector,
      timeoutSeconds: watchTimeoutSeconds,
    }
    const watch = new Watch(kubeConfig)
    // The client's own inactivity timeout (30 s, a field its typings mark private) becomes the hub's
    // stall bound, so that callers of `watch` without a hub get the same one, and a longer
    // `watchTimeoutSeconds` is not cut short by it.
    ;(watch as unknown as { requestTimeoutMs: number }).requestTimeoutMs =
      (watchTimeoutSeconds + STALL_MARGIN_SECONDS) * 1000
    watch
      .watch(
        path,
        query,
        (type: string, object: unknown) => {
          if (settled) return
          try {
            if (type === 'ERROR') {
              finish(statusError(object, namespace, server))
            } else if (type === 'BOOKMARK') {
              const resourceVersion = (object as LeaseObject | undefined)?.metadata?.resourceVersion
              if (resourceVersion) onEvent({ type, resourceVersion })
            } else if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') {
              const lease = object as LeaseObject
              onEvent({
                type,
                lease: leaseToRecord({ ...lease, metadata: { ...lease.metadata, namespace } }),
              })
            }
          } catch (error) {
            finish(error)
          }
        },
        (error: unknown) => {
          if (error === null || error === undefined) finish()
          else finish(translateError(error, { verb: 'watch', namespace, name: undefined, server }))
        },
      )
      .then(
        (abortController) => {
          controller = abortController
          if (settled) abortController.abort()
        },
        (error: unknown) =>
          finish(translateError(error, { verb: 'watch', namespace, name: undefined, server })),
      )
  })
}

function statusError(object: unknown, namespace: string, server: string): LockError {
  const status = (object ?? {}) as { code?: number } & StatusBody
  if (status.code === 410 || status.reason === 'Expired' || status.reason === 'Gone') {
    return new WatchExpiredError(undefined, { cause: status })
  }
  return fromStatus(status.code ?? 500, status, { verb: 'watch', namespace, name: undefined, server })
}

interface ErrorContext {
  readonly verb: Verb
  readonly namespace: string
  readonly name: string | undefined
  readonly server: string
}

/** Translates a client-node failure into the SDK's errors. Exported for tests. */
export function translateError(error: unknown, context: ErrorContext): LockError {
  if (error instanceof LockError) return error
  if (error instanceof ApiException) {
    const retryAfter = headerValue(error.headers, 'retry-after')
    return fromStatus(
      error.code,
      parseBody(error.body),
      context,
      error,
      parseRetryAfter(retryAfter, Date.now()),
    )
  }
  // The watch client reports a failed start by status alone, without headers: a throttled watch carries
  // no `retryAfterMs`, and its caller backs off as usual.
  const statusCode = (error as { statusCode?: unknown } | null)?.statusCode
  if (typeof statusCode === 'number') {
    return fromStatus(statusCode, {}, context, error)
  }
  const code = networkCode(error)
  const isWrite = context.verb === 'create' || context.verb === 'update' || context.verb === 'delete'
  const sent = code === undefined || !NOT_SENT_CODES.has(code)
  const detail = code ?? (error instanceof Error ? error.message : String(error))
  return new LockUnavailableError(
    { server: context.server, problem: `could not be reached (${detail})`, outcomeUnknown: isWrite && sent },
    { cause: error },
  )
}

interface StatusBody {
  readonly reason?: string | undefined
  readonly message?: string | undefined
  /** What was not found, for a 404: `{ kind: 'namespaces', name }` when the namespace is missing. */
  readonly details?: { readonly kind?: string | undefined; readonly name?: string | undefined } | undefined
}

function fromStatus(
  status: number,
  body: StatusBody,
  context: ErrorContext,
  cause?: unknown,
  retryAfterMs?: number,
): LockError {
  const options = { cause: cause ?? body }
  const leaseName = context.name ?? ''
  const { namespace } = context
  if (status === 401 || status === 403) {
    return new LockPermissionError(
      { verb: context.verb, resource: LEASE_RESOURCE, namespace, status },
      options,
    )
  }
  // A create in a namespace that does not exist: the Status names the namespace, not the lease.
  if (status === 404 && body.details?.kind === 'namespaces') {
    return new NamespaceNotFoundError(body.details.name || namespace, options)
  }
  if (status === 404 && context.name !== undefined) {
    return new LeaseNotFoundError({ leaseName, namespace }, options)
  }
  if (status === 409) {
    const reason = body.reason === 'AlreadyExists' ? 'AlreadyExists' : 'Conflict'
    return new LeaseConflictError({ reason, leaseName, namespace }, options)
  }
  if (status === 410) return new WatchExpiredError(undefined, options)
  // Throttled (API Priority and Fairness, or the max-in-flight limit): rejected before it was executed,
  // so even a write has a known outcome, not applied.
  if (status === 429) {
    return new LockUnavailableError(
      {
        server: context.server,
        problem: 'is throttling requests (429 Too Many Requests)',
        outcomeUnknown: false,
        status,
        retryAfterMs,
      },
      options,
    )
  }
  if (status >= 500) {
    const isWrite = context.verb === 'create' || context.verb === 'update' || context.verb === 'delete'
    const what = body.message ? `: ${body.message}` : ''
    return new LockUnavailableError(
      { server: context.server, problem: `answered ${status}${what}`, outcomeUnknown: isWrite, status },
      options,
    )
  }
  const target = context.name === undefined ? 'leases' : `lease \`${namespace}/${leaseName}\``
  const message = body.message ?? `status ${status}`
  return new LockApiError(
    status,
    body.reason,
    `the Kubernetes API server at ${context.server} refused to ${context.verb} ${target}: ${message}`,
    options,
  )
}

/**
 * The longest `Retry-After` the SDK honours, in milliseconds: a lock's waits and renewals are measured
 * in seconds, so a server that asks for more is asked again after a minute rather than obeyed for an
 * hour.
 */
export const MAX_RETRY_AFTER_MS = 60_000

const DELTA_SECONDS = /^\d+$/
// The three HTTP-date formats (RFC 9110, section 5.6.7) all begin with the day of the week.
const HTTP_DATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,? /

/**
 * Milliseconds to wait that a `Retry-After` value asks for: delta-seconds, or an HTTP-date counted
 * from `nowMs` (wall-clock epoch milliseconds; a date in the past means 0). At most
 * {@link MAX_RETRY_AFTER_MS}; `undefined` for a missing or invalid value. Exported for tests.
 */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  const text = value?.trim()
  if (!text) return undefined
  let ms: number
  if (DELTA_SECONDS.test(text)) {
    ms = Number(text) * 1000
  } else if (HTTP_DATE.test(text)) {
    // asctime() dates carry no zone, and are GMT like the others.
    const date = Date.parse(text.endsWith('GMT') ? text : `${text} GMT`)
    if (Number.isNaN(date)) return undefined
    ms = Math.max(0, date - nowMs)
  } else {
    return undefined
  }
  return Math.min(ms, MAX_RETRY_AFTER_MS)
}

function headerValue(headers: unknown, name: string): string | undefined {
  if (typeof headers !== 'object' || headers === null) return undefined
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === name && typeof value === 'string') return value
  }
  return undefined
}

function parseBody(body: unknown): StatusBody {
  if (typeof body === 'string') {
    try {
      return parseBody(JSON.parse(body))
    } catch {
      return { message: body.slice(0, 500) }
    }
  }
  if (typeof body === 'object' && body !== null) {
    const { reason, message, details } = body as { reason?: unknown; message?: unknown; details?: unknown }
    const { kind, name } = (typeof details === 'object' && details !== null ? details : {}) as {
      kind?: unknown
      name?: unknown
    }
    return {
      ...(typeof reason === 'string' ? { reason } : {}),
      ...(typeof message === 'string' ? { message } : {}),
      ...(typeof kind === 'string'
        ? { details: { kind, ...(typeof name === 'string' ? { name } : {}) } }
        : {}),
    }
  }
  return {}
}

function networkCode(error: unknown): string | undefined {
  let current: unknown = error
  for (let depth = 0; depth < 5 && current !== null && typeof current === 'object'; depth++) {
    const code = (current as { code?: unknown }).code
    if (typeof code === 'string') return code
    const name = (current as { name?: unknown }).name
    if (name === 'TimeoutError') return 'TimeoutError'
    current = (current as { cause?: unknown }).cause
  }
  return undefined
}
