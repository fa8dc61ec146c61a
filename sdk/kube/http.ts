import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import { Agent as HttpAgent, request as httpRequest } from 'node:http'
import type { AgentOptions } from 'node:https'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import { createSecureContext } from 'node:tls'

/**
 * The HTTP layer under the Kubernetes store: JSON requests and newline-delimited JSON streams (watches)
 * over Node's own `https`, with kept-alive connections. Node's client is part of the runtime: it costs
 * a pod about 3 MiB, where the generated Kubernetes client costs about 85 MiB and the `undici` package
 * or `fetch` 16–37 MiB (docs/benchmarks.md).
 */

/** How to reach and authenticate to one API server. */
export interface Connection {
  /** `https://host:port` (or `http://` for a local insecure server). */
  readonly server: string
  /** CA bundle, client certificate and key, server name, `rejectUnauthorized`: for every connection. */
  readonly tls: Pick<AgentOptions, 'ca' | 'cert' | 'key' | 'rejectUnauthorized' | 'servername'>
  /**
   * Headers for one request (`Authorization`, impersonation). Asked before every request: tokens
   * rotate, and exec credential plugins hand out new ones.
   */
  readonly headers: () => Promise<Readonly<Record<string, string>>> | Readonly<Record<string, string>>
  /** The namespace the configuration names (kubeconfig context, service account), if any. */
  readonly namespace?: string | undefined
}

export interface HttpResponse {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  /** The body parsed as JSON; the text when it is not JSON; `undefined` when empty. */
  readonly body: unknown
}

export interface RequestInit {
  readonly query?: Readonly<Record<string, string | number | boolean | undefined>> | undefined
  readonly body?: unknown
  /** @default `application/json` (a merge patch says `application/merge-patch+json`) */
  readonly contentType?: string | undefined
  readonly signal?: AbortSignal | undefined
}

/** Connections kept open per API server; a lock client rarely has more than a few requests in flight. */
const MAX_SOCKETS = 16

export class HttpTransport {
  readonly server: string
  readonly #connection: Connection
  readonly #agent: HttpAgent
  readonly #secure: boolean
  readonly #base: URL
  readonly #onRequest: ((method: string, url: string) => void) | undefined

  /** `onRequest` is told of every request before it is sent (a CLI's `--verbose`). */
  constructor(connection: Connection, onRequest?: (method: string, url: string) => void) {
    this.#connection = connection
    this.#onRequest = onRequest
    this.#base = new URL(connection.server)
    this.server = connection.server
    this.#secure = this.#base.protocol === 'https:'
    const agentOptions = { keepAlive: true, maxSockets: MAX_SOCKETS, scheduling: 'lifo' as const }
    this.#agent = this.#secure
      ? new HttpsAgent({ ...agentOptions, ...tlsOptions(connection.tls) })
      : new HttpAgent(agentOptions)
  }

  /** One request with a JSON body (if any); resolves with any status, rejects only when no answer came. */
  async request(method: string, path: string, init: RequestInit = {}): Promise<HttpResponse> {
    const response = await this.#send(method, path, init)
    const text = await readAll(response, init.signal)
    return { status: response.statusCode ?? 0, headers: response.headers, body: parseBody(text) }
  }

  /**
   * A streaming GET: `onObject` gets each line of the body parsed as JSON. Resolves when the server
   * ends the stream (with its status; a body that is not a 200 stream is returned parsed instead) or
   * when `signal` aborts it.
   */
  async stream(path: string, init: RequestInit, onObject: (object: unknown) => void): Promise<HttpResponse> {
    const response = await this.#send('GET', path, init)
    const status = response.statusCode ?? 0
    if (status !== 200) {
      const text = await readAll(response, init.signal)
      return { status, headers: response.headers, body: parseBody(text) }
    }
    const { signal } = init
    await new Promise<void>((resolve, reject) => {
      let buffer = ''
      let done = false
      const finish = (error?: unknown) => {
        if (done) return
        done = true
        signal?.removeEventListener('abort', onAbort)
        if (error === undefined || signal?.aborted) resolve()
        else reject(error)
      }
      const onAbort = () => {
        response.destroy()
        finish()
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => {
        buffer += chunk
        for (let end = buffer.indexOf('\n'); end >= 0 && !done; end = buffer.indexOf('\n')) {
          const line = buffer.slice(0, end)
          buffer = buffer.slice(end + 1)
          if (line.trim() === '') continue
          try {
            onObject(JSON.parse(line))
          } catch (error) {
            response.destroy()
            finish(error)
          }
        }
      })
      response.once('end', () => finish())
      response.once('error', (error) => finish(error))
      response.once('close', () =>
        finish(
          response.complete
            ? undefined
            : Object.assign(new Error('the stream was cut off'), { code: 'ECONNRESET' }),
        ),
      )
    })
    return { status, headers: response.headers, body: undefined }
  }

  /** Closes the kept-alive connections. */
  close(): void {
    this.#agent.destroy()
  }

  async #send(method: string, path: string, init: RequestInit): Promise<IncomingMessage> {
    const { signal } = init
    signal?.throwIfAborted()
    // Appended to the server's own path: a server behind a proxy can live under a prefix
    // (`https://rancher.example/k8s/clusters/c-1`).
    const url = new URL(this.#base)
    url.pathname = `${this.#base.pathname.replace(/\/+$/, '')}${path}`
    for (const [key, value] of Object.entries(init.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value))
    }
    const headers: Record<string, string> = {
      Accept: 'application/json',
      ...(await this.#connection.headers()),
    }
    let payload: string | undefined
    if (init.body !== undefined) {
      payload = JSON.stringify(init.body)
      headers['Content-Type'] = init.contentType ?? 'application/json'
      headers['Content-Length'] = String(Buffer.byteLength(payload))
    }
    signal?.throwIfAborted()
    this.#onRequest?.(method, url.href)
    const send = this.#secure ? httpsRequest : httpRequest
    return new Promise<IncomingMessage>((resolve, reject) => {
      const request = send(url, { method, headers, agent: this.#agent, signal })
      request.once('response', resolve)
      request.once('error', (error) => reject(signal?.aborted ? signal.reason : error))
      request.end(payload)
    })
  }
}

/**
 * The TLS material as one secure context, built once. Given as `ca`, `cert` and `key`, the agent would
 * spell all three out in the pool key it builds for every request and every freed socket: several
 * kilobytes of PEM text each time.
 */
function tlsOptions({ ca, cert, key, ...rest }: Connection['tls']): AgentOptions {
  if (ca === undefined && cert === undefined && key === undefined) return rest
  return { ...rest, secureContext: createSecureContext({ ca, cert, key }) }
}

async function readAll(response: IncomingMessage, signal: AbortSignal | undefined): Promise<string> {
  const chunks: Buffer[] = []
  try {
    for await (const chunk of response) chunks.push(chunk as Buffer)
  } catch (error) {
    throw signal?.aborted ? signal.reason : error
  }
  return Buffer.concat(chunks).toString('utf8')
}

function parseBody(text: string): unknown {
  if (text === '') return undefined
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}
