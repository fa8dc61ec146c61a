// What the controller needs from the API server beyond the SDK's LeaseStore: a list and watch of leases
// across all namespaces (the store works per namespace), and Events.
import {
  ApiException,
  CoordinationV1Api,
  EventsV1Api,
  type EventsV1Event,
  type KubeConfig,
  Observable,
  type RequestContext,
  type ResponseContext,
  Watch,
} from '@kubernetes/client-node'
import {
  formatMicroTime,
  type LeaseEvent,
  type LeaseList,
  type LeaseObject,
  type LeaseStore,
  type ListOptions,
  LockError,
  leaseToRecord,
  WatchExpiredError,
  type WatchOptions,
} from '../sdk/index.ts'
import type { EventSink } from './events.ts'

/** List and watch of managed leases in one namespace, or in all (`namespace` undefined). */
export interface LeaseSource {
  list(namespace: string | undefined, options: ListOptions): Promise<LeaseList>
  watch(
    namespace: string | undefined,
    options: WatchOptions,
    onEvent: (event: LeaseEvent) => void,
  ): Promise<void>
}

/** Per-namespace calls go to the SDK's store; all-namespace calls to the cluster-wide endpoint. */
export function createLeaseSource(store: LeaseStore, kubeConfig: KubeConfig | undefined): LeaseSource {
  const cluster = kubeConfig === undefined ? undefined : clusterLeaseSource(kubeConfig)
  const all = () => {
    if (cluster === undefined) {
      throw new Error(
        'watching all namespaces needs a KubeConfig; name the namespaces with --namespaces instead',
      )
    }
    return cluster
  }
  return {
    list: (namespace, options) =>
      namespace === undefined ? all().list(options) : store.list(namespace, options),
    watch: (namespace, options, onEvent) =>
      namespace === undefined ? all().watch(options, onEvent) : store.watch(namespace, options, onEvent),
  }
}

/** Errors of the cluster-wide calls: a `LockError` with the HTTP status, so callers can branch on it. */
export class ClusterRequestError extends LockError {
  readonly status: number | undefined

  constructor(message: string, status: number | undefined, options?: ErrorOptions) {
    super('API_ERROR', message, options)
    this.status = status
  }
}

function clusterLeaseSource(kubeConfig: KubeConfig) {
  const api = kubeConfig.makeApiClient(CoordinationV1Api)
  const server = kubeConfig.getCurrentCluster()?.server ?? 'the API server'
  const fail = (verb: string, error: unknown): Error => {
    if (error instanceof LockError || (error as { name?: string } | null)?.name === 'AbortError') {
      return error as Error
    }
    const status = error instanceof ApiException ? error.code : undefined
    if (status === 410) return new WatchExpiredError(undefined, { cause: error })
    const hint =
      status === 401 || status === 403
        ? ': the controller needs `list` and `watch` on `leases.coordination.k8s.io` in all namespaces (a ClusterRole), or name the namespaces with --namespaces'
        : ''
    const detail =
      status === undefined ? (error instanceof Error ? error.message : String(error)) : `status ${status}`
    return new ClusterRequestError(
      `cannot ${verb} leases in all namespaces at ${server} (${detail})${hint}`,
      status,
      {
        cause: error,
      },
    )
  }
  return {
    async list(options: ListOptions): Promise<LeaseList> {
      options.signal?.throwIfAborted()
      try {
        const list = await api.listLeaseForAllNamespaces(
          { labelSelector: options.labelSelector },
          withSignal(options.signal),
        )
        return {
          items: list.items.map((lease) => leaseToRecord(lease as LeaseObject)),
          resourceVersion: list.metadata?.resourceVersion ?? '',
        }
      } catch (error) {
        if (options.signal?.aborted) throw options.signal.reason
        throw fail('list', error)
      }
    },

    watch(options: WatchOptions, onEvent: (event: LeaseEvent) => void): Promise<void> {
      const { signal } = options
      if (signal?.aborted) return Promise.reject(signal.reason)
      return new Promise<void>((resolve, reject) => {
        let settled = false
        let request: AbortController | undefined
        const finish = (error?: unknown) => {
          if (settled) return
          settled = true
          signal?.removeEventListener('abort', onAbort)
          request?.abort()
          if (error === undefined || signal?.aborted) resolve()
          else reject(error)
        }
        const onAbort = () => finish()
        signal?.addEventListener('abort', onAbort, { once: true })
        const query = {
          resourceVersion: options.resourceVersion,
          allowWatchBookmarks: true,
          labelSelector: options.labelSelector,
          // Below the client's 30 s inactivity timeout, so a quiet watch ends cleanly and resumes.
          timeoutSeconds: 25,
        }
        new Watch(kubeConfig)
          .watch(
            '/apis/coordination.k8s.io/v1/leases',
            query,
            (type: string, object: unknown) => {
              if (settled) return
              try {
                if (type === 'ERROR') {
                  const status = (object ?? {}) as { code?: number; reason?: string; message?: string }
                  if (status.code === 410 || status.reason === 'Expired' || status.reason === 'Gone') {
                    finish(new WatchExpiredError(undefined, { cause: status }))
                  } else {
                    finish(
                      new ClusterRequestError(
                        `watch failed: ${status.message ?? status.reason}`,
                        status.code,
                      ),
                    )
                  }
                } else if (type === 'BOOKMARK') {
                  const resourceVersion = (object as LeaseObject | undefined)?.metadata?.resourceVersion
                  if (resourceVersion) onEvent({ type, resourceVersion })
                } else if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') {
                  onEvent({ type, lease: leaseToRecord(object as LeaseObject) })
                }
              } catch (error) {
                finish(error)
              }
            },
            (error: unknown) =>
              finish(error === null || error === undefined ? undefined : fail('watch', error)),
          )
          .then(
            (controller) => {
              request = controller
              if (settled) controller.abort()
            },
            (error: unknown) => finish(fail('watch', error)),
          )
      })
    },
  }
}

/** Events through events.k8s.io/v1. Failures carry the HTTP status as `code`. */
export function createEventSink(kubeConfig: KubeConfig): EventSink {
  const api = kubeConfig.makeApiClient(EventsV1Api)
  const translate = (error: unknown): never => {
    if (error instanceof ApiException) {
      const hint =
        error.code === 403 ? ': the controller needs `create` and `patch` on `events.events.k8s.io`' : ''
      let detail = ''
      try {
        const body = typeof error.body === 'string' ? JSON.parse(error.body) : error.body
        if (typeof body?.message === 'string') detail = `: ${body.message}`
      } catch {}
      throw Object.assign(
        new Error(`the API server refused the Event (status ${error.code})${detail}${hint}`, {
          cause: error,
        }),
        {
          code: error.code,
        },
      )
    }
    throw error
  }
  return {
    async create(event, signal) {
      const namespace = event.metadata?.namespace ?? ''
      return api.createNamespacedEvent({ namespace, body: event }, withSignal(signal)).catch(translate)
    },
    async update(event: EventsV1Event, signal) {
      const namespace = event.metadata?.namespace ?? ''
      const name = event.metadata?.name ?? ''
      // A merge patch of the series alone (an Event's note is immutable): needs only `patch`, like
      // client-go's event recorder, and no resourceVersion round trip. MicroTime goes as six digits.
      const lastObserved = event.series?.lastObservedTime
      const body = {
        series:
          event.series === undefined
            ? null
            : {
                count: event.series.count,
                lastObservedTime: formatMicroTime(lastObserved ? lastObserved.getTime() : Date.now()),
              },
      }
      return api
        .patchNamespacedEvent({ name, namespace, body }, withSignal(signal, 'application/merge-patch+json'))
        .catch(translate)
    },
  }
}

type RequestConfig = Parameters<CoordinationV1Api['listLeaseForAllNamespaces']>[1]

// The object-parameter API runs the observable middleware chain (the generated client's own small
// Observable type), so the per-request hook returns those.
function withSignal(signal: AbortSignal | undefined, contentType?: string): RequestConfig {
  return {
    middlewareMergeStrategy: 'append',
    middleware: [
      {
        pre: (context: RequestContext) => {
          if (signal) context.setSignal(signal)
          if (contentType) context.setHeaderParam('Content-Type', contentType)
          return new Observable(Promise.resolve(context))
        },
        post: (response: ResponseContext) => new Observable(Promise.resolve(response)),
      },
    ],
  }
}
