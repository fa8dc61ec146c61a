import { AsyncLocalStorage } from 'node:async_hooks'
import { STATUS_CODES } from 'node:http'
import {
  type Cluster,
  connectionFailure,
  createClusterLeaseStore,
  type KubernetesLeaseStore,
  LeaseConflictError,
  LeaseNotFoundError,
  type LeaseObject,
  type LeaseRecord,
  LockApiError,
  LockError,
  LockPermissionError,
  LockUnavailableError,
  leaseToRecord,
  listPaged,
  NamespaceNotFoundError,
  recordToLease,
  type ServerVersionInfo,
  WatchExpiredError,
} from '../sdk/internal.ts'
import { CliError } from './errors.ts'

/**
 * The Lease API calls the CLI makes, over the SDK's Kubernetes store: paged lists and watches, in one
 * namespace or across all of them, with the objects exactly as the server sent them (MicroTime strings
 * keep their six digits for `-o yaml`), and the store's errors worded for the command line.
 */

/** A Lease as the API server sends it over the wire: the SDK's `LeaseObject`, with its times as strings. */
export type LeaseJson = LeaseObject & {
  metadata?: { creationTimestamp?: string }
  spec?: { acquireTime?: string; renewTime?: string }
}

export interface ApiClientOptions {
  /** Seconds to wait for an answer; 0 waits as long as the connection lives. Watches are not timed. */
  readonly requestTimeout: number
  /** Receives one line per request, for `-v`. */
  readonly trace?: ((line: string) => void) | undefined
  /**
   * With `trace`, add each answer's status and the request's duration to its line (`-v` 6 and up), which
   * is then written when the answer is in. A watch's line is written as it starts.
   */
  readonly traceAnswers?: boolean | undefined
}

export type WatchEvent =
  | { readonly type: 'ADDED' | 'MODIFIED' | 'DELETED'; readonly lease: LeaseJson }
  | { readonly type: 'BOOKMARK'; readonly resourceVersion: string }

/** How long the server keeps a `--watch` open before the CLI resumes it. */
const WATCH_TIMEOUT_SECONDS = 300

interface Scope {
  readonly verb: string
  /** What is asked for, in messages: leases unless said. */
  readonly resource?: 'version'

  /** `undefined`: across all namespaces. */
  readonly namespace: string | undefined
}

/** The CLI has kubectl's `apiVersion`/`kind` on every object, list items included. */
function asJson(lease: LeaseObject): LeaseJson {
  return { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', ...(lease as LeaseJson) }
}

export class ApiClient {
  readonly server: string
  readonly #cluster: Cluster
  readonly #options: ApiClientOptions
  readonly #store: KubernetesLeaseStore
  /** The request lines of the call under way, kept until its answer is in (`traceAnswers`). */
  readonly #requests = new AsyncLocalStorage<{ line: string; at: number }[]>()

  constructor(cluster: Cluster, options: ApiClientOptions) {
    this.server = cluster.server.replace(/\/+$/, '')
    this.#cluster = cluster
    this.#options = options
    const { trace } = options
    this.#store = createClusterLeaseStore(cluster, {
      watchTimeoutSeconds: WATCH_TIMEOUT_SECONDS,
      ...(trace === undefined
        ? {}
        : {
            logger: {
              debug: (_message, fields) => {
                const line = `${fields?.method} ${fields?.url}`
                const pending = this.#requests.getStore()
                if (pending === undefined) trace(line)
                else pending.push({ line, at: performance.now() })
              },
            },
          }),
    })
  }

  /** The whole list, page by page (`limit`/`continue`), like kubectl's `--chunk-size`. */
  async list(
    namespace: string | undefined,
    query: { labelSelector: string; chunkSize: number },
    signal?: AbortSignal,
  ): Promise<{ items: LeaseJson[]; resourceVersion: string }> {
    // Each page is one request under --request-timeout.
    const pages: Pick<KubernetesLeaseStore, 'list'> = {
      list: (scope, options) =>
        this.#call({ verb: 'list', namespace: scope }, signal, (timed) =>
          this.#store.list(scope, { ...options, signal: timed }),
        ),
    }
    const list = await listPaged(pages, namespace, {
      labelSelector: query.labelSelector,
      limit: query.chunkSize,
      objects: true,
    })
    return { items: (list.objects ?? []).map(asJson), resourceVersion: list.resourceVersion }
  }

  /** The API server's `GET /version`. */
  async serverVersion(signal?: AbortSignal): Promise<ServerVersionInfo> {
    const store = this.#store
    return await this.#call({ verb: 'get', namespace: undefined, resource: 'version' }, signal, (timed) =>
      store.serverVersion === undefined
        ? Promise.reject(new CliError(`the store at ${this.server} has no server version`))
        : store.serverVersion({ signal: timed }),
    )
  }

  /** A lease by its name, or `undefined` if there is none. */
  async get(namespace: string, name: string, signal?: AbortSignal): Promise<LeaseJson | undefined> {
    try {
      const lease = await this.#call({ verb: 'get', namespace }, signal, (timed) =>
        this.#store.getObject(namespace, name, { signal: timed }),
      )
      return lease === undefined ? undefined : asJson(lease)
    } catch (error) {
      if (error instanceof CliError && error.cause instanceof NamespaceNotFoundError) return undefined
      throw error
    }
  }

  /**
   * Replaces a lease only if its `uid` and `resourceVersion` (carried in `lease.metadata`) still match.
   * Returns the lease as written (with its new resourceVersion), or `undefined` when the lease changed or
   * was deleted since it was read.
   */
  async replace(lease: LeaseJson, signal?: AbortSignal): Promise<LeaseJson | undefined> {
    const namespace = lease.metadata?.namespace ?? ''
    try {
      const written = await this.#call({ verb: 'update', namespace }, signal, (timed) =>
        this.#store.update(leaseToRecord(lease), { signal: timed }),
      )
      return asJson(recordToLease(written))
    } catch (error) {
      if (error instanceof CliError && error.cause instanceof LeaseConflictError) return undefined
      throw error
    }
  }

  /**
   * Writes `record` only if its `uid` and `resourceVersion` still match. Returns the record as written,
   * or `undefined` when the lease changed or was deleted since it was read.
   */
  async update(record: LeaseRecord, signal?: AbortSignal): Promise<LeaseRecord | undefined> {
    try {
      return await this.#call({ verb: 'update', namespace: record.namespace }, signal, (timed) =>
        this.#store.update(record, { signal: timed }),
      )
    } catch (error) {
      if (error instanceof CliError && error.cause instanceof LeaseConflictError) return undefined
      throw error
    }
  }

  /**
   * Deletes a lease only if its `uid` and `resourceVersion` still match. Returns `deleted`, `changed`
   * (it changed since it was read) or `gone` (someone else deleted it).
   */
  async delete(
    namespace: string,
    name: string,
    preconditions: { readonly uid: string; readonly resourceVersion: string },
    signal?: AbortSignal,
  ): Promise<'deleted' | 'changed' | 'gone'> {
    try {
      await this.#call({ verb: 'delete', namespace }, signal, (timed) =>
        this.#store.delete(namespace, name, preconditions, { signal: timed }),
      )
      return 'deleted'
    } catch (error) {
      if (error instanceof CliError && error.cause instanceof LeaseConflictError) return 'changed'
      if (error instanceof CliError && error.cause instanceof LeaseNotFoundError) return 'gone'
      throw error
    }
  }

  /**
   * Streams changes after `resourceVersion` to `onEvent` until the server ends the stream (resolves) or
   * `signal` aborts (resolves). Rejects with the SDK's `WatchExpiredError` on 410 Gone, or a
   * {@link CliError}.
   */
  async watch(
    namespace: string | undefined,
    query: {
      labelSelector?: string | undefined
      fieldSelector?: string | undefined
      resourceVersion: string
    },
    onEvent: (event: WatchEvent) => void,
    signal: AbortSignal,
  ): Promise<void> {
    if (signal.aborted) return
    try {
      await this.#store.watch(namespace, { ...query, objects: true, signal }, (event) => {
        if (event.type === 'BOOKMARK') onEvent(event)
        else onEvent({ type: event.type, lease: asJson(event.object ?? recordToLease(event.lease)) })
      })
    } catch (error) {
      if (signal.aborted) return
      if (error instanceof WatchExpiredError) throw error
      throw this.#error(error, { verb: 'watch', namespace })
    }
  }

  /** Closes the kept-alive connections. */
  async close(): Promise<void> {
    await this.#store.close?.()
  }

  /** One request under `--request-timeout`, its failure worded for the command line. */
  async #call<T>(
    scope: Scope,
    signal: AbortSignal | undefined,
    send: (signal: AbortSignal | undefined) => Promise<T>,
  ): Promise<T> {
    const timeoutMs = this.#options.requestTimeout * 1000
    const timeout = timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined
    const timed =
      timeout === undefined ? signal : signal === undefined ? timeout : AbortSignal.any([signal, timeout])
    const { trace, traceAnswers } = this.#options
    const pending: { line: string; at: number }[] = []
    const answered = (status: string) => {
      const now = performance.now()
      for (const { line, at } of pending) trace?.(`${line} ${status} in ${Math.round(now - at)} milliseconds`)
    }
    try {
      if (trace === undefined || !traceAnswers) return await send(timed)
      const result = await this.#requests.run(pending, () => send(timed))
      answered(statusLine(scope.verb === 'get' && result === undefined ? 404 : 200))
      return result
    } catch (error) {
      answered(timeout?.aborted ? 'timed out' : signal?.aborted ? 'cancelled' : failureStatus(error))
      if (signal?.aborted) throw signal.reason
      if (timeout?.aborted) {
        throw new CliError(
          `the Kubernetes API server at ${this.server} did not answer within ${this.#options.requestTimeout} s: check that it is up and reachable, or raise --request-timeout`,
          { cause: error },
        )
      }
      throw this.#error(error, scope)
    }
  }

  #error(error: unknown, scope: Scope): unknown {
    if (!(error instanceof LockError)) return error
    const where =
      scope.namespace === undefined ? 'across all namespaces' : `in namespace \`${scope.namespace}\``
    const status = statusOf(error.cause)
    if (error instanceof LockPermissionError && error.status === 401) {
      const who =
        this.#cluster.context === undefined ? 'the service account' : `context \`${this.#cluster.context}\``
      return new CliError(
        `the Kubernetes API server at ${this.server} did not accept the credentials of ${who}: log in again or fix the user in the kubeconfig`,
        { cause: error },
      )
    }
    if (error instanceof LockPermissionError && scope.resource === 'version') {
      return new CliError(
        `forbidden: the Kubernetes API server at ${this.server} does not let ${this.#cluster.context === undefined ? 'the service account' : `context \`${this.#cluster.context}\``} read its version (GET /version)`,
        { cause: error },
      )
    }
    if (error instanceof LockPermissionError) {
      const user = /User "([^"]+)"/.exec(status.message ?? '')?.[1]
      const as = user ? ` as \`${user}\`` : ''
      const ns = scope.namespace === undefined ? '-A' : `-n ${scope.namespace}`
      return new CliError(
        `forbidden: cannot ${scope.verb} leases.coordination.k8s.io ${where}${as}: ask for a Role (or ClusterRole for -A) that grants \`${scope.verb}\` on leases in group coordination.k8s.io; check with \`kubectl auth can-i ${scope.verb} leases.coordination.k8s.io ${ns}\``,
        { cause: error },
      )
    }
    if (error instanceof LockUnavailableError && error.status === undefined) {
      const { code, network } = connectionFailure(error.cause)
      const detail = code ?? (error.cause instanceof Error ? error.cause.message : error.message)
      const hint = !network
        ? 'check the cluster certificate and credentials in the kubeconfig'
        : 'check that the cluster is running and that --kubeconfig/--context point at it'
      return new CliError(`cannot reach the Kubernetes API server at ${this.server} (${detail}): ${hint}`, {
        cause: error,
      })
    }
    if (error instanceof LockApiError && error.status >= 200 && error.status < 300) {
      return new CliError(
        `the server at ${this.server} did not answer with JSON: is it a Kubernetes API server?`,
        { cause: error },
      )
    }
    const code =
      error instanceof LockApiError || error instanceof LockUnavailableError ? error.status : undefined
    if (code === 400 && /selector/i.test(status.message ?? '')) {
      return new CliError(`the label selector is not valid: ${oneLineOf(status.message)}`, { cause: error })
    }
    if (code === undefined || code === 0) return new CliError(error.message, { cause: error })
    const reason = status.reason ? ` ${status.reason}` : ''
    const message = status.message ? `: ${oneLineOf(status.message)}` : ''
    const asked = scope.resource === 'version' ? 'GET /version' : `${scope.verb} leases ${where}`
    return new CliError(
      `the Kubernetes API server at ${this.server} answered ${code}${reason} to ${asked}${message}`,
      { cause: error },
    )
  }
}

/** `200 OK`, as kubectl's `-v=6` writes a status. */
function statusLine(status: number): string {
  return `${status} ${STATUS_CODES[status] ?? ''}`.trimEnd()
}

/** What `-v` 6 writes for a request that failed: the status the server answered, else why none came. */
function failureStatus(error: unknown): string {
  if (error instanceof LeaseConflictError) return statusLine(409)
  if (error instanceof NamespaceNotFoundError) return statusLine(404)
  const status = (error as { status?: unknown } | null)?.status
  if (typeof status === 'number' && status > 0) return statusLine(status)
  return `failed (${connectionFailure(error instanceof LockError ? error.cause : error).code ?? 'no answer'})`
}

/** The Kubernetes Status an SDK error carries as its cause (the body of the answer). */
function statusOf(cause: unknown): { reason?: string | undefined; message?: string | undefined } {
  let body = cause
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body)
    } catch {
      return {}
    }
  }
  if (typeof body !== 'object' || body === null) return {}
  const { reason, message } = body as { reason?: unknown; message?: unknown }
  return {
    reason: typeof reason === 'string' ? reason : undefined,
    message: typeof message === 'string' ? message : undefined,
  }
}

function oneLineOf(text: string | undefined): string {
  return (text ?? '').replace(/\s*\n\s*/g, '; ')
}
