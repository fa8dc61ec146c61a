import { LEASE_RESOURCE } from '../constants.ts'
import {
  LeaseConflictError,
  LeaseNotFoundError,
  LockApiError,
  LockError,
  LockPermissionError,
  LockUnavailableError,
  NamespaceNotFoundError,
  WatchExpiredError,
} from '../errors.ts'
import type { HttpResponse } from './http.ts'

/**
 * The one translation of Kubernetes API answers into the SDK's errors: by HTTP status and by the
 * Status `reason`, never by message text. Used by the store, the controller and the CLI alike.
 */

export type Verb = 'get' | 'create' | 'update' | 'patch' | 'delete' | 'list' | 'watch'

function isWrite(verb: Verb): boolean {
  return verb === 'create' || verb === 'update' || verb === 'patch' || verb === 'delete'
}

// Errors from a connection that never carried the request: a write failing this way was not applied.
// Codes of a connection that never reached a server: nothing was sent.
const UNREACHABLE_CODES = [
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET_CONNECT',
]
// Codes of a TLS handshake that failed: nothing was sent either, but the fix is in the configuration.
const TLS_CODES = [
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_HAS_EXPIRED',
]
// Codes of a connection cut off or timed out after a request may have been sent.
const CUT_OFF_CODES = ['ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'TimeoutError']
const NOT_SENT_CODES = new Set([...UNREACHABLE_CODES, ...TLS_CODES])
const NETWORK_CODES = new Set([...UNREACHABLE_CODES, ...CUT_OFF_CODES])

/**
 * Why a request got no answer, from the error (or its causes): the system or TLS `code`, and whether
 * it is the network's doing (server down or unreachable, connection cut) rather than the
 * configuration's (a certificate the client rejects, credentials the TLS layer refuses).
 */
export function connectionFailure(error: unknown): {
  readonly code: string | undefined
  readonly network: boolean
} {
  const code = networkCode(error)
  return { code, network: code === undefined || NETWORK_CODES.has(code) }
}

export interface ErrorContext {
  readonly verb: Verb
  /** What the request was about, for messages: `leases.coordination.k8s.io` unless said. */
  readonly resource?: string | undefined
  readonly namespace: string
  readonly name: string | undefined
  readonly server: string
}

/** The error for an answer that is not a success. */
export function responseError(response: HttpResponse, context: ErrorContext): LockError {
  const retryAfter = headerValue(response.headers, 'retry-after')
  return fromStatus(
    response.status,
    parseBody(response.body),
    context,
    response.body,
    parseRetryAfter(retryAfter, Date.now()),
  )
}

/** The error for a request that got no answer: refused, reset, timed out. */
export function transportError(error: unknown, context: ErrorContext): LockError {
  if (error instanceof LockError) return error
  const code = networkCode(error)
  const write = isWrite(context.verb)
  const sent = code === undefined || !NOT_SENT_CODES.has(code)
  const detail = code ?? (error instanceof Error ? error.message : String(error))
  return new LockUnavailableError(
    { server: context.server, problem: `could not be reached (${detail})`, outcomeUnknown: write && sent },
    { cause: error },
  )
}

/** The error of an ERROR event on a watch stream (410 Gone arrives this way, too). */
export function watchEventError(object: unknown, context: ErrorContext): LockError {
  const status = (object ?? {}) as { code?: number; reason?: string }
  if (status.code === 410 || status.reason === 'Expired' || status.reason === 'Gone') {
    return new WatchExpiredError(undefined, { cause: status })
  }
  return fromStatus(status.code ?? 500, parseBody(object), context, object)
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
      { verb: context.verb, resource: context.resource ?? LEASE_RESOURCE, namespace, status },
      options,
    )
  }
  // A create in a namespace that does not exist: the Status names the namespace, not the lease.
  if (status === 404 && body.details?.kind === 'namespaces') {
    return new NamespaceNotFoundError(body.details.name || namespace, options)
  }
  // Lease errors for leases only: a missing or changed Event is a LockApiError with its status.
  const lease = context.resource === undefined || context.resource === LEASE_RESOURCE
  if (status === 404 && context.name !== undefined && lease) {
    return new LeaseNotFoundError({ leaseName, namespace }, options)
  }
  if (status === 409 && lease) {
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
    const write = isWrite(context.verb)
    const what = body.message ? `: ${body.message}` : ''
    return new LockUnavailableError(
      { server: context.server, problem: `answered ${status}${what}`, outcomeUnknown: write, status },
      options,
    )
  }
  const resource = context.resource ?? LEASE_RESOURCE
  const target =
    context.name === undefined
      ? resource.split('.')[0]
      : `${lease ? 'lease' : resource} \`${namespace}/${leaseName}\``
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
