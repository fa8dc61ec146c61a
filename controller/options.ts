import {
  type Clock,
  InvalidLockOptionsError,
  nearestName,
  RECLAIM_DEFAULTS,
  rejectUnknownKeys,
  systemClock,
} from '../sdk/internal.ts'

/**
 * Options of the controller. Times are in seconds, like the SDK's `expires`. Every default lives in
 * {@link DEFAULTS} and is applied in {@link resolveControllerOptions}, the only place that does so; the
 * command line reads its flag defaults from there too.
 */
export interface ControllerOptions {
  /**
   * Namespaces whose kube-locks leases the controller manages. Empty means every namespace.
   * Defaults to `[]` (all namespaces).
   */
  readonly namespaces?: readonly string[] | undefined
  /**
   * Seconds a lease must stay free (as seen by this process) before it is deleted.
   * Defaults to 300 (the SDK's `RECLAIM_DEFAULTS.retention`).
   */
  readonly retention?: number | undefined
  /**
   * Seconds beyond a lease's `leaseDurationSeconds` that this process must see a held lease unchanged
   * before it marks it free. Covers clock-rate differences and the time the holder's last write took to
   * reach the watch. Defaults to 2 (the SDK's `RECLAIM_DEFAULTS.grace`; why it exceeds the SDK's
   * `expiryGrace` of 1 s is said there).
   */
  readonly grace?: number | undefined
  /**
   * Leases reconciled concurrently. Defaults to 8.
   */
  readonly workers?: number | undefined
  /**
   * Longest wait, in seconds, for one API write before it counts as failed. Defaults to 10.
   */
  readonly requestTimeout?: number | undefined
  /**
   * Monotonic clock that judges expiry and retention. Defaults to `performance.now()`.
   */
  readonly clock?: Clock | undefined
}

/** The keys of {@link ControllerOptions}; any other key is rejected (a typo would silently be ignored). */
export const CONTROLLER_OPTION_KEYS = Object.freeze([
  'namespaces',
  'retention',
  'grace',
  'workers',
  'requestTimeout',
  'clock',
] as const satisfies readonly (keyof ControllerOptions)[])

export const DEFAULTS = Object.freeze({
  namespaces: Object.freeze([] as string[]),
  retention: RECLAIM_DEFAULTS.retention,
  grace: RECLAIM_DEFAULTS.grace,
  workers: 8,
  requestTimeout: 10,
  listen: ':8080',
  logLevel: 'info',
  leaderElectionName: 'kube-locks-controller',
  leaderElectionExpires: 15,
  shutdownTimeout: 20,
})

export interface ResolvedControllerOptions {
  readonly namespaces: readonly string[]
  readonly retentionMs: number
  readonly graceMs: number
  readonly workers: number
  readonly requestTimeoutMs: number
  readonly clock: Clock
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/

/**
 * An invalid controller option: one of the SDK's `InvalidLockOptionsError`s (code `INVALID_OPTIONS`),
 * since the controller's options are lock options of a kind and whoever embeds the controller catches
 * one family of errors.
 */
export class InvalidControllerOptionError extends InvalidLockOptionsError {
  constructor(option: string, expected: string, given: unknown) {
    super(option, expected, given)
    this.name = 'InvalidControllerOptionError'
  }
}

/** Applies {@link DEFAULTS} and validates. Never mutates `options`. */
export function resolveControllerOptions(options: ControllerOptions = {}): ResolvedControllerOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidLockOptionsError('options', 'an object', options)
  }
  rejectUnknownKeys(options, CONTROLLER_OPTION_KEYS, 'the controller options')
  const namespaces = options.namespaces ?? DEFAULTS.namespaces
  if (!Array.isArray(namespaces)) {
    throw new InvalidControllerOptionError('namespaces', 'an array of namespace names', namespaces)
  }
  for (const namespace of namespaces) {
    if (typeof namespace !== 'string' || namespace.length > 63 || !DNS1123_LABEL.test(namespace)) {
      throw new InvalidControllerOptionError(
        'namespaces',
        'a list of DNS-1123 labels (lowercase, at most 63 characters)',
        namespace,
      )
    }
  }
  const clock = options.clock ?? systemClock
  if (typeof clock?.now !== 'function' || typeof clock.wallNow !== 'function') {
    throw new InvalidControllerOptionError('clock', 'an object with now() and wallNow() methods', clock)
  }
  const workers = options.workers ?? DEFAULTS.workers
  if (!Number.isInteger(workers) || workers < 1 || workers > 1000) {
    throw new InvalidControllerOptionError('workers', 'an integer from 1 to 1000', workers)
  }
  return Object.freeze({
    namespaces: Object.freeze([...new Set(namespaces)]),
    retentionMs: seconds(options.retention, DEFAULTS.retention, 'retention', 0) * 1000,
    graceMs: seconds(options.grace, DEFAULTS.grace, 'grace', 0) * 1000,
    workers,
    requestTimeoutMs:
      seconds(options.requestTimeout, DEFAULTS.requestTimeout, 'requestTimeout', 0.001) * 1000,
    clock,
  })
}

/** The prefix of the controller's environment variables (`KUBE_LOCKS_RETENTION`, …). */
export const ENV_PREFIX = 'KUBE_LOCKS_'

/**
 * Checks the environment for `KUBE_LOCKS_*` variables the controller does not read. A near miss of an
 * accepted name is an error — `KUBE_LOCKS_RETENSION=600` would otherwise keep the default retention,
 * and `KUBE_LOCKS_NAMESPACE=shop` would manage every namespace. Any other unknown name is only a
 * warning: the prefix is shared with other kube-locks programs (`locks run` sets `KUBE_LOCKS_NAME`,
 * `KUBE_LOCKS_FENCING_TOKEN`, … for its command), and a pod's environment may come from a shared
 * ConfigMap, so a controller must not refuse to start over a variable meant for someone else.
 */
export function checkEnvironment(
  env: Readonly<Record<string, string | undefined>>,
  accepted: readonly string[],
): { readonly errors: readonly string[]; readonly warnings: readonly string[] } {
  const errors: string[] = []
  const warnings: string[] = []
  const suffixes = accepted.map((name) => name.slice(ENV_PREFIX.length))
  for (const name of Object.keys(env)) {
    if (!name.startsWith(ENV_PREFIX) || accepted.includes(name)) continue
    const nearest = nearestName(name.slice(ENV_PREFIX.length), suffixes)
    if (nearest === undefined) {
      warnings.push(name)
      continue
    }
    errors.push(
      `unknown environment variable ${name}; did you mean ${ENV_PREFIX}${nearest}? ` +
        `(accepted: ${accepted.join(', ')})`,
    )
  }
  return { errors, warnings }
}

/** Parses a number of seconds given as text (a flag or an environment variable). */
export function parseSeconds(option: string, text: string, min = 0): number {
  const value = text.trim() === '' ? Number.NaN : Number(text)
  return seconds(value, Number.NaN, option, min)
}

/** Parses `a,b,c` into namespace names; blanks are dropped, so an empty string means all namespaces. */
export function parseNamespaces(text: string): string[] {
  const names = text
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '')
  resolveControllerOptions({ namespaces: names })
  return names
}

function seconds(value: unknown, fallback: number, option: string, min: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > 2 ** 31 - 1) {
    const lower = min === 0 ? '>= 0' : `>= ${min}`
    throw new InvalidControllerOptionError(option, `a finite number of seconds ${lower}`, value)
  }
  return value
}
