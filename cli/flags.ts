// The values the command tree shows in its help — defaults and choices of flags — apart from the
// commands that use them: building the tree (and so `locks --help`) loads none of the commands' modules,
// nor the SDK.

export const OUTPUT_FORMATS = ['table', 'wide', 'json', 'yaml', 'name'] as const
export type OutputFormat = (typeof OUTPUT_FORMATS)[number]

/** Leases per page of a list (`--chunk-size`). */
export const DEFAULT_CHUNK_SIZE = 500

/**
 * Seconds `--request-timeout` gives each API request: 0, as kubectl, waits as long as the connection
 * lives. `run` then uses the SDK's own request timeout, as a lock's writes must be bounded.
 */
export const DEFAULT_REQUEST_TIMEOUT = 0

/** Seconds `release` waits for a held lock to expire: enough for the default lease (20 s + grace 2 s), twice. */
export const DEFAULT_RELEASE_TIMEOUT = 60

// The SDK's defaults as help texts show them. The commands take their defaults from the SDK itself
// (`RECLAIM_DEFAULTS`, `DEFAULTS`) when they run; only the help reads these, because the SDK's entry
// point for the CLI loads the whole SDK, its HTTPS client included, which would double the time of
// `locks --help`. flags.test.ts fails when one of them differs from the SDK's.

/** The controller's reclaim defaults (the SDK's `RECLAIM_DEFAULTS`), in seconds, as help shows them. */
export const GC_DEFAULTS = Object.freeze({
  /** Seconds past a holder's lease duration before the controller marks the lease free. */
  grace: 2,
  /** Seconds a lease stays free before the controller deletes it. */
  retention: 300,
})

/** The SDK's `DEFAULTS.expires` and `DEFAULTS.timeout`, in seconds, as `run --help` shows them. */
export const RUN_DEFAULTS = Object.freeze({
  /** Seconds after the last renewal when a lock expires. */
  expires: 20,
  /** Seconds to wait while someone else holds the lock. */
  timeout: 10,
})

/** The most holders `run --limit` takes: the SDK's `MAX_LIMIT`. */
export const MAX_LIMIT = 1000

/** Environment variables `locks run` gives the command. */
export const RUN_ENV = Object.freeze({
  /** The lock name as given. */
  name: 'KUBE_LOCKS_NAME',
  /** The namespace of the lease. */
  namespace: 'KUBE_LOCKS_NAMESPACE',
  /** The Lease object's name: with `--limit` or `--shared`, the name of this holder's own record. */
  lease: 'KUBE_LOCKS_LEASE',
  /** This acquisition's holder identity. */
  holder: 'KUBE_LOCKS_HOLDER',
  /**
   * The fencing token: a decimal integer that grows with every acquisition of the lock. Compare as a
   * big integer; it may exceed 2^53.
   */
  fencingToken: 'KUBE_LOCKS_FENCING_TOKEN',
})

/**
 * Seconds between SIGTERM and SIGKILL when `--kill-after` is not given: 10, or a quarter of `expires`
 * if that is less, so that short locks still leave the command most of their time.
 */
export const KILL_AFTER_DEFAULTS = Object.freeze({ seconds: 10, shareOfExpires: 0.25 })
