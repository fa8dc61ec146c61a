import { hostname as osHostname } from 'node:os'
import type { Clock, Logger } from './clock.ts'
import { silentLogger, systemClock } from './clock.ts'
import { NODE_NAME_ENV, POD_NAME_ENV, POD_NAMESPACE_ENV } from './constants.ts'
import { InvalidLockOptionsError } from './errors.ts'
import type { KubeConfig } from './kubernetes-store.ts'
import { validateLockName } from './lease-name.ts'
import type { LeaseStore } from './lease-store.ts'

/** Options of {@link createLocks}. Times are in seconds, like `expires` and `timeout`. */
export interface LocksOptions {
  /**
   * The calling service's name: the lock name when `acquire()`/`withLock()` get none, and the
   * `kube-locks.io/service` annotation on leases it holds.
   * @default undefined — then every call must name its lock
   */
  readonly service?: string | undefined
  /**
   * Namespace of the leases. An explicit value wins.
   * @default `POD_NAMESPACE` from the environment, else the namespace of the kubeconfig's current
   * context (in a pod: the service account's namespace file), else `default`
   */
  readonly namespace?: string | undefined
  /**
   * How to reach the API server.
   * @default loaded like kubectl: `KUBECONFIG`, else `~/.kube/config`, else the in-cluster service
   * account (token, CA and namespace files)
   */
  readonly kubeConfig?: KubeConfig | undefined
  /**
   * Where leases are stored; replaces `kubeConfig`. Mostly for tests: `createTestLocks()` from
   * `kube-locks/testing` builds locks over a memory store.
   * @default a store over the Kubernetes API built from `kubeConfig`
   */
  readonly store?: LeaseStore | undefined
  /**
   * Prefix of each acquisition's holder identity (`<identity>_<pid>_<random>`), shown in the HOLDER
   * column of `kubectl get leases`.
   * @default `POD_NAME` from the environment, else the host name
   */
  readonly identity?: string | undefined
  /**
   * Pod name for the `kube-locks.io/pod` annotation.
   * @default `POD_NAME` from the environment (downward API), else none
   */
  readonly pod?: string | undefined
  /**
   * Node name for the `kube-locks.io/node` annotation.
   * @default `NODE_NAME` from the environment (downward API), else none
   */
  readonly node?: string | undefined
  /**
   * Receives debug/info/warn/error records.
   * @default silent
   */
  readonly logger?: Logger | undefined
  /**
   * Monotonic and wall clocks; tests inject one.
   * @default `performance.now()` and `performance.timeOrigin + performance.now()`
   */
  readonly clock?: Clock | undefined
  /**
   * Longest wait for one API request, in seconds; a request that takes longer counts as failed with an
   * unknown outcome.
   * @default 10
   */
  readonly requestTimeout?: number | undefined
  /**
   * Extra time, in seconds, that a waiter must see a lease held by someone else unchanged beyond its
   * `leaseDurationSeconds` before it takes the lease over.
   * @default 1
   */
  readonly expiryGrace?: number | undefined
  /**
   * Base interval, in seconds, between retries after an API failure and between polls while the watch
   * reconnects; each wait is jittered by ±50 %.
   * @default 1
   */
  readonly retryInterval?: number | undefined
  /**
   * Seconds a waiter's ticket (its place in a fair lock's line) lives without a renewal. Tickets are
   * renewed every half of it; a waiter that died holds up the line for at most this plus
   * `expiryGrace`, and only while it is first in line. See docs/guarantees.md, "Waiting in line".
   * @default 15
   */
  readonly ticketDuration?: number | undefined
}

/** Options of `acquire()` and `withLock()`. */
export interface AcquireOptions {
  /**
   * Seconds after the last successful write (acquire or renewal) when the lock expires if not renewed.
   * The lease records it rounded up to whole seconds.
   * @default 20
   */
  readonly expires?: number | undefined
  /**
   * Seconds to wait for a held lock. `0` makes one attempt and fails at once if the lock is held;
   * `Infinity` waits until the lock comes free or `signal` aborts.
   * @default 10
   */
  readonly timeout?: number | undefined
  /**
   * Renew the lease every `expires / 3` seconds for as long as the lock is held.
   * @default false
   */
  readonly renew?: boolean | undefined
  /**
   * Seconds before the lease could expire for others at which the holder's `signal` fires. Covers the
   * holder's clock running slower than the observers' clocks: together with `expiryGrace` it tolerates
   * a clock-rate difference of `(safetyMargin + expiryGrace) / (expires + expiryGrace)`.
   * @default 10 % of `expires`, at most 2 s — but never below 0.5 % of `expires`, so the tolerated rate
   * difference stays at least 0.5 % for long locks
   */
  readonly safetyMargin?: number | undefined
  /** Cancels the wait (rejects with `signal.reason`); once acquired, aborting it does nothing. */
  readonly signal?: AbortSignal | undefined
  /**
   * Wait in line: waiters get the lock in the order they began waiting, across processes, and only
   * the first in line tries to take a released lock. `false` lets every waiter race for it when it
   * comes free: cheaper (no ticket, one request less on an uncontended acquire) when at most one
   * waiter at a time is expected, or when order does not matter and waiters are few.
   * @default true
   */
  readonly fair?: boolean | undefined
  /**
   * Makes the lock a semaphore: up to `limit` holders of the name at once, each with its own lease,
   * expiry, signal and fencing token. Every holder of a name must use the same `limit`; an exclusive
   * acquisition (no `limit`, no `shared`) of the same name waits until all of them are gone. A whole
   * number of at least 1.
   * @default undefined — an exclusive lock
   */
  readonly limit?: number | undefined
  /**
   * A shared (read) lock: any number of shared holders at once, but none while an exclusive holder of
   * the same name holds it. An exclusive acquirer waits for the shared holders to finish, and shared
   * acquirers that come after it wait for it. Not together with `limit`.
   * @default false — an exclusive lock
   */
  readonly shared?: boolean | undefined
}

export const DEFAULTS = Object.freeze({
  expires: 20,
  timeout: 10,
  renew: false,
  safetyMarginRatio: 0.1,
  maxSafetyMargin: 2,
  minSafetyMarginRatio: 0.005,
  requestTimeout: 10,
  expiryGrace: 1,
  retryInterval: 1,
  namespace: 'default',
  fair: true,
  ticketDuration: 15,
})

/** Lease `leaseDurationSeconds` is an int32. */
export const MAX_EXPIRES = 2 ** 31 - 1

/** Upper bound of `requestTimeout`, `expiryGrace` and `retryInterval`, in seconds (one hour). */
export const MAX_CLIENT_SECONDS = 3600

const LOCKS_OPTION_KEYS: readonly (keyof LocksOptions)[] = [
  'service',
  'namespace',
  'kubeConfig',
  'store',
  'identity',
  'pod',
  'node',
  'logger',
  'clock',
  'requestTimeout',
  'expiryGrace',
  'retryInterval',
  'ticketDuration',
]
const ACQUIRE_OPTION_KEYS: readonly (keyof AcquireOptions)[] = [
  'expires',
  'timeout',
  'renew',
  'safetyMargin',
  'signal',
  'fair',
  'limit',
  'shared',
]

/** The default safety margin for a lock of `expires` seconds. */
export function defaultSafetyMargin(expires: number): number {
  const capped = Math.min(expires * DEFAULTS.safetyMarginRatio, DEFAULTS.maxSafetyMargin)
  return Math.max(capped, expires * DEFAULTS.minSafetyMarginRatio)
}

export interface ResolvedLocksOptions {
  readonly service: string | undefined
  readonly namespace: string
  readonly identity: string
  readonly pod: string | undefined
  readonly node: string | undefined
  readonly logger: Logger
  readonly clock: Clock
  readonly requestTimeoutMs: number
  readonly expiryGraceMs: number
  readonly retryIntervalMs: number
  /** Whole seconds: it becomes the tickets' `leaseDurationSeconds`. */
  readonly ticketDurationSeconds: number
}

export interface ResolvedAcquireOptions {
  readonly expires: number
  readonly timeout: number
  readonly renew: boolean
  readonly safetyMargin: number
  readonly signal: AbortSignal | undefined
  readonly fair: boolean
  /** `undefined` for an exclusive lock. */
  readonly mode: HolderMode | undefined
}

/** How a lock is held by several holders at once: shared, or as a semaphore of `limit` holders. */
export type HolderMode = { readonly kind: 'shared' } | { readonly kind: 'semaphore'; readonly limit: number }

/** Most holders of one semaphore: a bound that keeps the holder list of one lock a single small page. */
export const MAX_LIMIT = 1000

/** What option defaulting may read from outside the caller's options. */
export interface Environment {
  readonly env: Readonly<Record<string, string | undefined>>
  readonly hostname: string
  /** The namespace of the kubeconfig's current context, if it names one. */
  readonly kubeConfigNamespace?: string | undefined
}

export function processEnvironment(kubeConfigNamespace?: string): Environment {
  return { env: process.env, hostname: osHostname(), kubeConfigNamespace }
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/

/** Applies defaults over {@link DEFAULTS} and the environment, and validates. Never mutates `options`. */
export function resolveLocksOptions(
  options: LocksOptions | undefined,
  environment: Environment,
): ResolvedLocksOptions {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new InvalidLockOptionsError('options', 'an object', options)
  }
  const o = options ?? {}
  rejectUnknownKeys(o, LOCKS_OPTION_KEYS, 'createLocks()')
  const env = environment.env
  const service = o.service === undefined ? undefined : validateLockName(o.service, 'service')
  const namespace =
    o.namespace ??
    nonEmpty(env[POD_NAMESPACE_ENV]) ??
    nonEmpty(environment.kubeConfigNamespace) ??
    DEFAULTS.namespace
  if (typeof namespace !== 'string' || namespace.length > 63 || !DNS1123_LABEL.test(namespace)) {
    throw new InvalidLockOptionsError(
      'namespace',
      'a DNS-1123 label (lowercase, at most 63 characters)',
      namespace,
    )
  }
  const pod = optionalString(o.pod, 'pod') ?? nonEmpty(env[POD_NAME_ENV])
  const node = optionalString(o.node, 'node') ?? nonEmpty(env[NODE_NAME_ENV])
  const identity = optionalString(o.identity, 'identity') ?? pod ?? environment.hostname
  if (identity === '' || identity.length > 200) {
    throw new InvalidLockOptionsError('identity', 'a non-empty string of at most 200 characters', identity)
  }
  const logger = o.logger ?? silentLogger
  if (typeof logger !== 'object' || logger === null) {
    throw new InvalidLockOptionsError(
      'logger',
      'an object with optional debug/info/warn/error methods',
      logger,
    )
  }
  const clock = o.clock ?? systemClock
  if (typeof clock?.now !== 'function' || typeof clock.wallNow !== 'function') {
    throw new InvalidLockOptionsError('clock', 'an object with now() and wallNow() methods', clock)
  }
  return Object.freeze({
    service,
    namespace,
    identity,
    pod,
    node,
    logger,
    clock,
    requestTimeoutMs:
      seconds(o.requestTimeout, DEFAULTS.requestTimeout, 'requestTimeout', {
        min: 0.001,
        max: MAX_CLIENT_SECONDS,
      }) * 1000,
    expiryGraceMs:
      seconds(o.expiryGrace, DEFAULTS.expiryGrace, 'expiryGrace', { min: 0, max: MAX_CLIENT_SECONDS }) * 1000,
    retryIntervalMs:
      seconds(o.retryInterval, DEFAULTS.retryInterval, 'retryInterval', {
        min: 0.001,
        max: MAX_CLIENT_SECONDS,
      }) * 1000,
    ticketDurationSeconds: wholeSeconds(o.ticketDuration, DEFAULTS.ticketDuration, 'ticketDuration', {
      min: 2,
      max: MAX_CLIENT_SECONDS,
    }),
  })
}

export function resolveAcquireOptions(options: AcquireOptions | undefined): ResolvedAcquireOptions {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new InvalidLockOptionsError('options', 'an object', options)
  }
  const o = options ?? {}
  rejectUnknownKeys(o, ACQUIRE_OPTION_KEYS, 'acquire()/withLock()')
  const expires = seconds(o.expires, DEFAULTS.expires, 'expires', { min: 0.001, max: MAX_EXPIRES })
  const timeout = seconds(o.timeout, DEFAULTS.timeout, 'timeout', { min: 0, allowInfinity: true })
  const renew = o.renew ?? DEFAULTS.renew
  if (typeof renew !== 'boolean') throw new InvalidLockOptionsError('renew', 'a boolean', renew)
  const safetyMargin =
    o.safetyMargin === undefined
      ? defaultSafetyMargin(expires)
      : seconds(o.safetyMargin, 0, 'safetyMargin', { min: 0 })
  if (safetyMargin >= expires) {
    throw new InvalidLockOptionsError(
      'safetyMargin',
      `a number of seconds below \`expires\` (${expires})`,
      safetyMargin,
    )
  }
  const signal = o.signal
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new InvalidLockOptionsError('signal', 'an AbortSignal', signal)
  }
  const fair = o.fair ?? DEFAULTS.fair
  if (typeof fair !== 'boolean') throw new InvalidLockOptionsError('fair', 'a boolean', fair)
  return Object.freeze({ expires, timeout, renew, safetyMargin, signal, fair, mode: holderMode(o) })
}

function holderMode(o: AcquireOptions): HolderMode | undefined {
  const { limit, shared } = o
  if (shared !== undefined && typeof shared !== 'boolean') {
    throw new InvalidLockOptionsError('shared', 'a boolean', shared)
  }
  if (limit !== undefined) {
    if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
      throw new InvalidLockOptionsError('limit', `a whole number from 1 to ${MAX_LIMIT}`, limit)
    }
    if (shared === true) {
      throw new InvalidLockOptionsError(
        'shared',
        `absent or false when \`limit\` is given (a semaphore of ${limit} holders is not also a shared lock): ` +
          'choose one of the two',
        shared,
      )
    }
    return Object.freeze({ kind: 'semaphore', limit })
  }
  return shared === true ? Object.freeze({ kind: 'shared' }) : undefined
}

function seconds(
  value: unknown,
  fallback: number,
  option: string,
  limits: { min: number; max?: number; allowInfinity?: boolean },
): number {
  if (value === undefined) return fallback
  const finite =
    typeof value === 'number' && (Number.isFinite(value) || (limits.allowInfinity && value === Infinity))
  const inRange =
    finite && (value as number) >= limits.min && (limits.max === undefined || (value as number) <= limits.max)
  if (!inRange) {
    const upper = limits.max === undefined ? '' : ` and <= ${limits.max}`
    const kind = limits.allowInfinity ? 'a number (or Infinity)' : 'a finite number'
    const lower = limits.min === 0 ? '>= 0' : `>= ${limits.min}`
    throw new InvalidLockOptionsError(option, `${kind} of seconds ${lower}${upper}`, value)
  }
  return value as number
}

function wholeSeconds(
  value: unknown,
  fallback: number,
  option: string,
  limits: { min: number; max: number },
): number {
  const result = seconds(value, fallback, option, limits)
  if (!Number.isInteger(result)) {
    throw new InvalidLockOptionsError(
      option,
      `a whole number of seconds (it becomes a Lease duration)`,
      value,
    )
  }
  return result
}

function optionalString(value: unknown, option: string): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string') throw new InvalidLockOptionsError(option, 'a string', value)
  return value
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value
}

/**
 * A misspelt option is a safety bug in a lock library (`{ expire: 180 }` would take a 20 s lock), so
 * every options object is checked for keys it does not know. Keys whose value is `undefined` count as
 * absent, like everywhere else.
 */
export function rejectUnknownKeys(options: object, accepted: readonly string[], where: string): void {
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined || accepted.includes(key)) continue
    const nearest = nearestName(key, accepted)
    const hint = nearest === undefined ? '' : `; did you mean \`${nearest}\`?`
    throw new InvalidLockOptionsError(
      key,
      `absent: unknown option \`${key}\` of ${where}${hint} (accepted: ${accepted.join(', ')})`,
      value,
    )
  }
}

/** The accepted name closest to `name` by edit distance, if it is close enough to be a typo. */
export function nearestName(name: string, accepted: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = Number.POSITIVE_INFINITY
  for (const candidate of accepted) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase())
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  return bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1)
      current.push(Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, substitution))
    }
    previous = current
  }
  return previous[b.length] as number
}
