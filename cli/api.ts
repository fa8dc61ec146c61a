import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest, type RequestOptions } from 'node:https'
import type { KubeConfig } from '@kubernetes/client-node'
import type { LeaseObject } from '../sdk/index.ts'
import { CliError } from './errors.ts'

/**
 * The few raw Lease API calls the CLI makes beyond the SDK's store: paged lists and watches, in one
 * namespace or across all of them, returning the objects exactly as the server sent them (MicroTime
 * strings keep their six digits for `-o yaml`).
 */

/** A Lease as the API server sends it over the wire: the SDK's `LeaseObject`, with its times as strings. */
export type LeaseJson = LeaseObject & {
  metadata?: { creationTimestamp?: string }
  spec?: { acquireTime?: string; renewTime?: string }
}

interface Status {
  kind?: string
  code?: number
  reason?: string
  message?: string
}

export interface ApiClientOptions {
  /** Seconds to wait for an answer; 0 waits as long as the connection lives. */
  readonly requestTimeout: number
  /** Receives one line per request, for `--verbose`. */
  readonly trace?: ((line: string) => void) | undefined
}

export interface ListPage {
  readonly items: LeaseJson[]
  readonly resourceVersion: string
  readonly continueToken: string | undefined
}

export type WatchEvent =
  | { readonly type: 'ADDED' | 'MODIFIED' | 'DELETED'; readonly lease: LeaseJson }
  | { readonly type: 'BOOKMARK'; readonly resourceVersion: string }

/** Thrown by `watch` when the resourceVersion is too old (410 Gone): list again, then watch. */
export class WatchExpired extends Error {
  constructor() {
    super('the watch resourceVersion is too old; list again')
    this.name = 'WatchExpired'
  }
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'EPIPE',
])

export function leasesPath(namespace: string | undefined, name?: string): string {
  const base =
    namespace === undefined
      ? '/apis/coordination.k8s.io/v1/leases'
      : `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`
  return name === undefined ? base : `${base}/${encodeURIComponent(name)}`
}

export class ApiClient {
  readonly server: string
  readonly #config: KubeConfig
  readonly #options: ApiClientOptions

  constructor(config: KubeConfig, options: ApiClientOptions) {
    const server = config.getCurrentCluster()?.server
    if (!server) {
      throw new CliError(
        `the kubeconfig context \`${config.getCurrentContext()}\` names no cluster server: pick another with --context or fix the kubeconfig`,
      )
    }
    this.server = server.replace(/\/+$/, '')
    this.#config = config
    this.#options = options
  }

  /** One page of a list; `namespace` undefined lists across all namespaces. */
  async listPage(
    namespace: string | undefined,
    query: { labelSelector: string; limit?: number | undefined; continueToken?: string | undefined },
    signal?: AbortSignal,
  ): Promise<ListPage> {
    const params = new URLSearchParams({ labelSelector: query.labelSelector })
    if (query.limit !== undefined && query.limit > 0) params.set('limit', String(query.limit))
    if (query.continueToken) params.set('continue', query.continueToken)
    const { body } = await this.#json(
      'GET',
      `${leasesPath(namespace)}?${params}`,
      { verb: 'list', namespace },
      signal,
    )
    const list = body as { items?: LeaseJson[]; metadata?: { resourceVersion?: string; continue?: string } }
    return {
      items: (list.items ?? []).map((item) => ({
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        ...item,
      })),
      resourceVersion: list.metadata?.resourceVersion ?? '',
      continueToken: list.metadata?.continue || undefined,
    }
  }

  /** The whole list, page by page (`limit`/`continue`), like kubectl's `--chunk-size`. */
  async list(
    namespace: string | undefined,
    query: { labelSelector: string; chunkSize: number },
    signal?: AbortSignal,
  ): Promise<{ items: LeaseJson[]; resourceVersion: string }> {
    const items: LeaseJson[] = []
    let continueToken: string | undefined
    let resourceVersion = ''
    do {
      const page = await this.listPage(
        namespace,
        { labelSelector: query.labelSelector, limit: query.chunkSize, continueToken },
        signal,
      )
      items.push(...page.items)
      // The first page fixes the snapshot; later pages carry the same resourceVersion.
      if (resourceVersion === '') resourceVersion = page.resourceVersion
      continueToken = page.continueToken
    } while (continueToken !== undefined)
    return { items, resourceVersion }
  }

  /** A lease by its name, or `undefined` if there is none. */
  async get(namespace: string, name: string, signal?: AbortSignal): Promise<LeaseJson | undefined> {
    const { status, body } = await this.#json(
      'GET',
      leasesPath(namespace, name),
      { verb: 'get', namespace, allowNotFound: true },
      signal,
    )
    if (status === 404) return undefined
    return { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', ...(body as LeaseJson) }
  }

  /**
   * Replaces a lease only if its `uid` and `resourceVersion` (carried in `lease.metadata`) still match.
   * Returns the new object, or `undefined` when the lease changed or was deleted since it was read.
   */
  async replace(lease: LeaseJson, signal?: AbortSignal): Promise<LeaseJson | undefined> {
    const namespace = lease.metadata?.namespace ?? ''
    const name = lease.metadata?.name ?? ''
    const { status, body } = await this.#json(
      'PUT',
      leasesPath(namespace, name),
      { verb: 'update', namespace, allowNotFound: true, allowConflict: true },
      signal,
      JSON.stringify(lease),
    )
    if (status === 404 || status === 409) return undefined
    return { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', ...(body as LeaseJson) }
  }

  /**
   * Streams changes after `resourceVersion` to `onEvent` until the server ends the stream (resolves) or
   * `signal` aborts (resolves). Rejects with {@link WatchExpired} on 410 Gone, or a {@link CliError}.
   */
  async watch(
    namespace: string | undefined,
    query: {
      labelSelector?: string | undefined
      fieldSelector?: string | undefined
      resourceVersion: string
      timeoutSeconds: number
    },
    onEvent: (event: WatchEvent) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const params = new URLSearchParams({ watch: 'true' })
    if (query.labelSelector !== undefined) params.set('labelSelector', query.labelSelector)
    if (query.fieldSelector !== undefined) params.set('fieldSelector', query.fieldSelector)
    params.set('resourceVersion', query.resourceVersion)
    params.set('allowWatchBookmarks', 'true')
    params.set('timeoutSeconds', String(query.timeoutSeconds))
    const path = `${leasesPath(namespace)}?${params}`
    if (signal.aborted) return
    let response: IncomingMessage
    try {
      response = await this.#send('GET', path, undefined, signal, false)
    } catch (error) {
      if (signal.aborted) return
      throw this.#networkError(error)
    }
    if (response.statusCode !== 200) {
      const body = await readBody(response)
      if (response.statusCode === 410) throw new WatchExpired()
      throw this.#statusError(response.statusCode ?? 0, parseStatus(body), { verb: 'watch', namespace })
    }
    await new Promise<void>((resolve, reject) => {
      let buffer = ''
      let failed = false
      const onAbort = () => {
        response.destroy()
        resolve()
      }
      signal.addEventListener('abort', onAbort, { once: true })
      const finish = (error?: unknown) => {
        signal.removeEventListener('abort', onAbort)
        if (error === undefined) resolve()
        else reject(error)
      }
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => {
        if (failed) return
        buffer += chunk
        for (let newline = buffer.indexOf('\n'); newline >= 0; newline = buffer.indexOf('\n')) {
          const line = buffer.slice(0, newline).trim()
          buffer = buffer.slice(newline + 1)
          if (line === '') continue
          let event: { type?: string; object?: unknown }
          try {
            event = JSON.parse(line) as typeof event
          } catch {
            continue
          }
          if (event.type === 'ERROR') {
            const status = (event.object ?? {}) as Status
            failed = true
            response.destroy()
            finish(
              status.code === 410 || status.reason === 'Expired' || status.reason === 'Gone'
                ? new WatchExpired()
                : this.#statusError(status.code ?? 500, status, { verb: 'watch', namespace }),
            )
            return
          }
          if (event.type === 'BOOKMARK') {
            const resourceVersion = (event.object as LeaseJson | undefined)?.metadata?.resourceVersion
            if (resourceVersion) onEvent({ type: 'BOOKMARK', resourceVersion })
          } else if (event.type === 'ADDED' || event.type === 'MODIFIED' || event.type === 'DELETED') {
            const lease = {
              apiVersion: 'coordination.k8s.io/v1',
              kind: 'Lease',
              ...(event.object as LeaseJson),
            }
            onEvent({ type: event.type, lease })
          }
        }
      })
      response.on('end', () => finish())
      response.on('error', (error) => finish(signal.aborted ? undefined : this.#networkError(error)))
      response.on('close', () => finish())
    })
  }

  async #json(
    method: string,
    path: string,
    context: {
      verb: string
      namespace: string | undefined
      allowNotFound?: boolean
      allowConflict?: boolean
    },
    signal: AbortSignal | undefined,
    payload?: string,
  ): Promise<{ status: number; body: unknown }> {
    let response: IncomingMessage
    let text: string
    try {
      response = await this.#send(method, path, payload, signal, true)
      text = await readBody(response)
    } catch (error) {
      if (signal?.aborted) throw signal.reason
      throw this.#networkError(error)
    }
    const status = response.statusCode ?? 0
    if (status === 404 && context.allowNotFound) return { status, body: undefined }
    if (status === 409 && context.allowConflict) return { status, body: undefined }
    if (status < 200 || status >= 300) throw this.#statusError(status, parseStatus(text), context)
    try {
      return { status, body: JSON.parse(text) }
    } catch {
      throw new CliError(
        `the server at ${this.server} did not answer with JSON: is it a Kubernetes API server?`,
      )
    }
  }

  async #send(
    method: string,
    path: string,
    body: string | undefined,
    signal: AbortSignal | undefined,
    timed: boolean,
  ): Promise<IncomingMessage> {
    this.#options.trace?.(`${method} ${this.server}${path}`)
    const headers: Record<string, string> = { accept: 'application/json' }
    if (body !== undefined) headers['content-type'] = 'application/json'
    const options: RequestOptions = { method, headers }
    await this.#config.applyToHTTPSOptions(options)
    const url = new URL(`${this.server}${path}`)
    const send = url.protocol === 'http:' ? httpRequest : httpsRequest
    const timeoutMs = this.#options.requestTimeout * 1000
    return new Promise((resolve, reject) => {
      const req = send(url, { ...options, ...(signal ? { signal } : {}) }, resolve)
      if (timed && timeoutMs > 0) {
        req.setTimeout(timeoutMs, () => {
          const error = Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })
          req.destroy(error)
        })
      }
      req.on('error', reject)
      req.end(body)
    })
  }

  #networkError(error: unknown): CliError {
    if (error instanceof CliError) return error
    const code = (error as { code?: unknown } | null)?.code
    const detail = typeof code === 'string' ? code : error instanceof Error ? error.message : String(error)
    if (code === 'ETIMEDOUT') {
      return new CliError(
        `the Kubernetes API server at ${this.server} did not answer within ${this.#options.requestTimeout} s: check that it is up and reachable, or raise --request-timeout`,
        { cause: error },
      )
    }
    const hint =
      typeof code === 'string' && !NETWORK_CODES.has(code)
        ? 'check the cluster certificate and credentials in the kubeconfig'
        : 'check that the cluster is running and that --kubeconfig/--context point at it'
    return new CliError(`cannot reach the Kubernetes API server at ${this.server} (${detail}): ${hint}`, {
      cause: error,
    })
  }

  #statusError(
    status: number,
    body: Status,
    context: { verb: string; namespace: string | undefined },
  ): CliError {
    const where =
      context.namespace === undefined ? 'across all namespaces' : `in namespace \`${context.namespace}\``
    if (status === 401) {
      return new CliError(
        `the Kubernetes API server at ${this.server} did not accept the credentials of context \`${this.#config.getCurrentContext()}\`: log in again or fix the user in the kubeconfig`,
      )
    }
    if (status === 403) {
      const user = /User "([^"]+)"/.exec(body.message ?? '')?.[1]
      const who = user ? ` as \`${user}\`` : ''
      const ns = context.namespace === undefined ? '-A' : `-n ${context.namespace}`
      return new CliError(
        `forbidden: cannot ${context.verb} leases.coordination.k8s.io ${where}${who}: ask for a Role (or ClusterRole for -A) that grants \`${context.verb}\` on leases in group coordination.k8s.io; check with \`kubectl auth can-i ${context.verb} leases.coordination.k8s.io ${ns}\``,
      )
    }
    if (status === 400 && /selector/i.test(body.message ?? '')) {
      return new CliError(`the label selector is not valid: ${oneLineOf(body.message)}`)
    }
    const reason = body.reason ? ` ${body.reason}` : ''
    const message = body.message ? `: ${oneLineOf(body.message)}` : ''
    return new CliError(
      `the Kubernetes API server at ${this.server} answered ${status}${reason} to ${context.verb} leases ${where}${message}`,
    )
  }
}

function oneLineOf(text: string | undefined): string {
  return (text ?? '').replace(/\s*\n\s*/g, '; ')
}

function parseStatus(text: string): Status {
  try {
    const parsed = JSON.parse(text) as Status
    return typeof parsed === 'object' && parsed !== null ? parsed : {}
  } catch {
    return {}
  }
}

function readBody(response: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    response.setEncoding('utf8')
    response.on('data', (chunk: string) => {
      text += chunk
    })
    response.on('end', () => resolve(text))
    response.on('error', reject)
  })
}
