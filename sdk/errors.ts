/**
 * Every error the SDK raises is a {@link LockError}: an `Error` with a stable, literal `code` that callers
 * can branch on, a `name` equal to the class name, and the underlying failure as `cause`.
 *
 * Errors raised by a `LeaseStore` (conflicts, missing leases, an expired watch) are `LockError`s too, so
 * the controller and the CLI handle them with the same vocabulary as the lock algorithm.
 */

export type LockErrorCode =
  | 'LOCK_TIMEOUT'
  | 'LOCK_LOST'
  | 'LOCK_CLOSED'
  | 'PERMISSION_DENIED'
  | 'INVALID_OPTIONS'
  | 'API_UNAVAILABLE'
  | 'API_ERROR'
  | 'LEASE_CONFLICT'
  | 'LEASE_NOT_FOUND'
  | 'LEASE_NOT_MANAGED'
  | 'NAMESPACE_NOT_FOUND'
  | 'WATCH_EXPIRED'
  | 'LOCK_MODE_CONFLICT'

export class LockError extends Error {
  readonly code: LockErrorCode

  constructor(code: LockErrorCode, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

/** The lock stayed held by someone else until the `timeout` passed. */
export class LockTimeoutError extends LockError {
  declare readonly code: 'LOCK_TIMEOUT'
  readonly lockName: string
  readonly namespace: string
  /** The holder seen last, if any: the lease's `holderIdentity`. */
  readonly holder: string | undefined
  /** The `timeout` that passed, in seconds. */
  readonly timeout: number

  constructor(
    details: { lockName: string; namespace: string; holder: string | undefined; timeout: number },
    options?: ErrorOptions,
  ) {
    const by = details.holder ? ` by \`${details.holder}\`` : ''
    const waited =
      details.timeout === 0
        ? 'and `timeout` is 0, so it did not wait'
        : `for longer than the \`timeout\` of ${details.timeout} s`
    super(
      'LOCK_TIMEOUT',
      `lock \`${details.lockName}\` in namespace \`${details.namespace}\` is held${by} ${waited}; ` +
        'raise `timeout` to wait longer, or find out why the holder keeps it (`kubectl get leases`)',
      options,
    )
    this.lockName = details.lockName
    this.namespace = details.namespace
    this.holder = details.holder
    this.timeout = details.timeout
  }
}

export type LockLostReason = 'expired' | 'renewal-failed' | 'taken' | 'closed'

/**
 * The holder can no longer rely on the lock. Used as the `reason` of a lock's `signal`: by the time the
 * signal fires, another process may acquire the lock.
 */
export class LockLostError extends LockError {
  declare readonly code: 'LOCK_LOST'
  readonly lockName: string
  readonly reason: LockLostReason

  constructor(lockName: string, reason: LockLostReason, message: string, options?: ErrorOptions) {
    super('LOCK_LOST', `lock \`${lockName}\` is lost: ${message}`, options)
    this.lockName = lockName
    this.reason = reason
  }
}

/** `acquire()` or `withLock()` was called on, or was waiting in, a `Locks` that was closed. */
export class LockClosedError extends LockError {
  declare readonly code: 'LOCK_CLOSED'

  constructor(message = 'the Locks instance was closed; create a new one with createLocks()') {
    super('LOCK_CLOSED', message)
  }
}

/** The Kubernetes API server refused the request (403, or 401 for missing credentials). */
export class LockPermissionError extends LockError {
  declare readonly code: 'PERMISSION_DENIED'
  readonly verb: string
  readonly resource: string
  readonly namespace: string
  readonly status: number

  constructor(
    details: { verb: string; resource: string; namespace: string; status: number },
    options?: ErrorOptions,
  ) {
    // An empty namespace: a request across all namespaces.
    const where = details.namespace === '' ? 'in all namespaces' : `in namespace \`${details.namespace}\``
    const message =
      details.status === 401
        ? `the Kubernetes API server did not accept the credentials while trying to ${details.verb} ` +
          `${details.resource} ${where}: check the kubeconfig or the pod's service account token`
        : details.namespace === ''
          ? `cannot ${details.verb} ${details.resource} in all namespaces: the service account needs ` +
            `\`${details.verb}\` on \`${details.resource}\` cluster-wide (a ClusterRole bound with a ` +
            'ClusterRoleBinding), or name the namespaces to work in (the controller: --namespaces)'
          : `cannot ${details.verb} ${details.resource} ${where}: the service ` +
            `account needs \`${details.verb}\` on \`${details.resource}\` there: bind the chart's ClusterRole ` +
            '`kube-locks-client` to it with a RoleBinding in that namespace (see docs/install.md)'
    super('PERMISSION_DENIED', message, options)
    this.verb = details.verb
    this.resource = details.resource
    this.namespace = details.namespace
    this.status = details.status
  }
}

/** An option had a value the SDK cannot use. The message says what was expected and what was given. */
export class InvalidLockOptionsError extends LockError {
  declare readonly code: 'INVALID_OPTIONS'
  readonly option: string

  constructor(option: string, expected: string, given: unknown, options?: ErrorOptions) {
    super('INVALID_OPTIONS', `Expected \`${option}\` to be ${expected}, got ${describeValue(given)}`, options)
    this.option = option
  }
}

/**
 * The Kubernetes API server could not be reached or did not answer in time, answered with a server
 * error, or throttled the request (429 Too Many Requests). `outcomeUnknown` is true when a write was
 * sent and may have been applied.
 */
export class LockUnavailableError extends LockError {
  declare readonly code: 'API_UNAVAILABLE'
  readonly server: string
  readonly outcomeUnknown: boolean
  readonly status: number | undefined
  /**
   * For a throttled request (429), the delay in milliseconds that the server's `Retry-After` header
   * asked for, at most one minute: send the request again no sooner. `undefined` when the server named
   * no (valid) delay, and for every other failure. A 429 was never executed (`outcomeUnknown` is false).
   */
  readonly retryAfterMs: number | undefined

  constructor(
    details: {
      server: string
      problem: string
      outcomeUnknown: boolean
      status?: number | undefined
      retryAfterMs?: number | undefined
    },
    options?: ErrorOptions,
  ) {
    const retry =
      details.retryAfterMs === undefined
        ? ''
        : ` and asked to retry after ${formatSeconds(details.retryAfterMs)} s`
    const advice =
      details.status === 429
        ? `${retry}; it is overloaded, or the API Priority and Fairness level these requests fall in is ` +
          "full: give kube-locks clients a priority level of their own (the chart's `apiPriority` values, " +
          'see docs/install.md)'
        : '; check that it is reachable from this process (network policy, DNS, kubeconfig `server`)'
    super(
      'API_UNAVAILABLE',
      `the Kubernetes API server at ${details.server} ${details.problem}${advice}`,
      options,
    )
    this.server = details.server
    this.outcomeUnknown = details.outcomeUnknown
    this.status = details.status
    this.retryAfterMs = details.retryAfterMs
  }
}

function formatSeconds(ms: number): string {
  return String(Math.round(ms) / 1000)
}

/** The API server rejected a request for a reason the SDK does not handle (for example 400 or 422). */
export class LockApiError extends LockError {
  declare readonly code: 'API_ERROR'
  readonly status: number
  readonly reason: string | undefined

  constructor(status: number, reason: string | undefined, message: string, options?: ErrorOptions) {
    super('API_ERROR', message, options)
    this.status = status
    this.reason = reason
  }
}

/**
 * A compare-and-swap lost: a create found the lease already there (`AlreadyExists`), or an update or
 * delete carried a `resourceVersion`/`uid` that no longer matches (`Conflict`).
 */
export class LeaseConflictError extends LockError {
  declare readonly code: 'LEASE_CONFLICT'
  readonly reason: 'AlreadyExists' | 'Conflict'
  readonly leaseName: string
  readonly namespace: string

  constructor(
    details: { reason: 'AlreadyExists' | 'Conflict'; leaseName: string; namespace: string },
    options?: ErrorOptions,
  ) {
    const what =
      details.reason === 'AlreadyExists'
        ? 'already exists'
        : 'was changed or re-created since it was read (resourceVersion or uid no longer match)'
    super('LEASE_CONFLICT', `lease \`${details.namespace}/${details.leaseName}\` ${what}`, options)
    this.reason = details.reason
    this.leaseName = details.leaseName
    this.namespace = details.namespace
  }
}

export class LeaseNotFoundError extends LockError {
  declare readonly code: 'LEASE_NOT_FOUND'
  readonly leaseName: string
  readonly namespace: string

  constructor(details: { leaseName: string; namespace: string }, options?: ErrorOptions) {
    super('LEASE_NOT_FOUND', `lease \`${details.namespace}/${details.leaseName}\` does not exist`, options)
    this.leaseName = details.leaseName
    this.namespace = details.namespace
  }
}

/**
 * The lease a lock maps to exists but is not managed by kube-locks (it lacks the
 * `app.kubernetes.io/managed-by=kube-locks` label): it belongs to another component — a leader
 * election, a node heartbeat — and is never written, freed or deleted.
 */
export class LeaseNotManagedError extends LockError {
  declare readonly code: 'LEASE_NOT_MANAGED'
  readonly leaseName: string
  readonly namespace: string
  /** The lease's `holderIdentity`, if any. */
  readonly holder: string | undefined

  constructor(
    details: { leaseName: string; namespace: string; holder: string | undefined },
    options?: ErrorOptions,
  ) {
    const held = details.holder ? ` (held by \`${details.holder}\`)` : ''
    super(
      'LEASE_NOT_MANAGED',
      `lease \`${details.namespace}/${details.leaseName}\`${held} belongs to another component: it lacks ` +
        'the label `app.kubernetes.io/managed-by=kube-locks`, so kube-locks will not take it over; choose ' +
        'another lock name, or another namespace',
      options,
    )
    this.leaseName = details.leaseName
    this.namespace = details.namespace
    this.holder = details.holder
  }
}

/** A lease was to be created in a namespace that does not exist. */
export class NamespaceNotFoundError extends LockError {
  declare readonly code: 'NAMESPACE_NOT_FOUND'
  readonly namespace: string

  constructor(namespace: string, options?: ErrorOptions) {
    super(
      'NAMESPACE_NOT_FOUND',
      `namespace \`${namespace}\` does not exist: create it (\`kubectl create namespace ${namespace}\`) or ` +
        'give createLocks() the `namespace` the leases belong in',
      options,
    )
    this.namespace = namespace
  }
}

/** A watch asked for a `resourceVersion` the server no longer has (410 Gone): list again, then watch. */
export class WatchExpiredError extends LockError {
  declare readonly code: 'WATCH_EXPIRED'

  constructor(
    message = 'the watch resourceVersion is too old (410 Gone); list again and watch from the list',
    options?: ErrorOptions,
  ) {
    super('WATCH_EXPIRED', message, options)
  }
}

export function describeValue(value: unknown): string {
  if (typeof value === 'string') {
    const shown = value.length > 60 ? `${value.slice(0, 60)}…` : value
    return `\`${JSON.stringify(shown).slice(1, -1)}\` (string)`
  }
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return `\`${String(value)}\` (${typeof value})`
  }
  if (value === null) return '`null`'
  if (value === undefined) return '`undefined`'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'function') return 'a function'
  return `an object (${Object.prototype.toString.call(value).slice(8, -1)})`
}

/**
 * A lock was asked for in a mode other than the one its current holders use: a `limit` other than
 * theirs, or `shared` where they hold a semaphore (or the other way round). Exclusive acquisitions
 * never conflict: they wait for every holder.
 */
export class LockModeConflictError extends LockError {
  declare readonly code: 'LOCK_MODE_CONFLICT'
  readonly lockName: string
  readonly namespace: string
  /** What this call asked for, e.g. `semaphore (limit 5)` or `shared`. */
  readonly requested: string
  /** What the lock is used as, e.g. `semaphore (limit 3)`. */
  readonly inUse: string

  constructor(
    details: { lockName: string; namespace: string; requested: string; inUse: string },
    options?: ErrorOptions,
  ) {
    super(
      'LOCK_MODE_CONFLICT',
      `lock \`${details.lockName}\` in namespace \`${details.namespace}\` is used as a ${details.inUse}, ` +
        `but this call asked for a ${details.requested}: every holder of one name must use the same ` +
        '`limit` (or all `shared: true`); use the same options everywhere, or another lock name',
      options,
    )
    this.lockName = details.lockName
    this.namespace = details.namespace
    this.requested = details.requested
    this.inUse = details.inUse
  }
}
