/**
 * The demo's cast: each entry is one process (one "pod") running `demo/service.ts`.
 *
 * - `update-customer` runs as two replicas that lock their own name (the default lock name is the
 *   service name), and as a third caller that asks with `timeout: 0`: an interactive request that would
 *   rather fail at once than wait while a replica holds the lock.
 * - `update-account` (twice) and `delete-account` lock one account number each time: the same lock
 *   names across two services, so an update and a delete of one account never overlap.
 * - `export-statements` holds its lock with a short `expires` and its work overruns it: its signal
 *   fires, it drops its result, and since it neither renews nor releases in time the controller marks
 *   the lease free with a `LockExpired` Event. Nobody else uses that lock, so it is the controller, not
 *   a waiter that has watched the lease all along, that frees it.
 * - `call-partner` (four replicas) calls a partner API that allows two concurrent calls: a semaphore,
 *   `limit: 2`, so at most two of the four are inside at once and the others wait for a place.
 * - `report-balance` (twice) reads one account under a shared lock, so the two reports may run
 *   together, while `rewrite-account` rewrites that account under a plain (exclusive) lock of the same
 *   name: never together with a report.
 */
import type { LockMode } from './protocol.ts'

export interface Role {
  /** Process name: pod name, holder-identity prefix and the name shown in the live view. */
  readonly instance: string
  /** `createLocks({ service })`: the default lock name and the `kube-locks.io/service` annotation. */
  readonly service: string
  /** Lock names to pick from at random; empty means the default name (the service's). */
  readonly locks: readonly string[]
  /** `withLock()` with `limit` (semaphore), `shared: true`, or neither (exclusive). */
  readonly mode: LockMode
  /** `withLock()` options, in seconds. */
  readonly timeout: number
  readonly expires: number
  /** Length of the work under the lock, in milliseconds: random in `[min, max]`. */
  readonly workMs: readonly [number, number]
  /** Pause between two lock calls, in milliseconds: random in `[min, max]`. */
  readonly pauseMs: readonly [number, number]
  /**
   * The work is one call that ignores the lock's signal (a slow downstream) and takes `workMs`;
   * the result is committed only if the signal has not fired by then.
   */
  readonly overruns: boolean
}

export const ACCOUNTS = ['acct-1001', 'acct-1002', 'acct-1003'] as const

/** The partner API's semaphore and how many calls it lets in at once. */
export const PARTNER_API = { lock: 'partner-api', limit: 2 } as const

/** The account that reports read under a shared lock and a rewrite writes under an exclusive one. */
export const REPORTED_ACCOUNT = 'acct-2001'

export function scenario(): Role[] {
  const exclusive = { kind: 'exclusive' } as const
  const shortWork = { timeout: 10, expires: 10, overruns: false, mode: exclusive } as const
  return [
    ...['update-customer-1', 'update-customer-2'].map(
      (instance): Role => ({
        instance,
        service: 'update-customer',
        locks: [],
        ...shortWork,
        workMs: [150, 400],
        pauseMs: [50, 300],
      }),
    ),
    {
      instance: 'update-customer-now',
      service: 'update-customer',
      locks: [],
      timeout: 0,
      expires: 10,
      mode: exclusive,
      workMs: [100, 200],
      pauseMs: [500, 900],
      overruns: false,
    },
    ...['update-account-1', 'update-account-2'].map(
      (instance): Role => ({
        instance,
        service: 'update-account',
        locks: ACCOUNTS,
        ...shortWork,
        workMs: [100, 300],
        pauseMs: [50, 250],
      }),
    ),
    {
      instance: 'delete-account-1',
      service: 'delete-account',
      locks: ACCOUNTS,
      ...shortWork,
      workMs: [200, 400],
      pauseMs: [300, 800],
    },
    {
      instance: 'export-statements',
      service: 'export-statements',
      locks: [],
      timeout: 10,
      // The controller frees the lease `expires` + its grace (2 s by default) after the last write;
      // the work takes more than twice as long, so that a busy machine still shows it.
      expires: 3,
      mode: exclusive,
      workMs: [12_000, 12_000],
      pauseMs: [500, 1_000],
      overruns: true,
    },
    // Four callers that each want the partner API most of the time: more than its two places.
    ...[1, 2, 3, 4].map(
      (n): Role => ({
        instance: `call-partner-${n}`,
        service: 'call-partner',
        locks: [PARTNER_API.lock],
        ...shortWork,
        mode: { kind: 'semaphore', limit: PARTNER_API.limit },
        workMs: [200, 500],
        pauseMs: [50, 200],
      }),
    ),
    // Reports that run most of the time, so that two of them are often in together; a rewrite now
    // and then, which waits for the reports in and holds back the reports that come after it.
    ...[1, 2].map(
      (n): Role => ({
        instance: `report-balance-${n}`,
        service: 'report-balance',
        locks: [REPORTED_ACCOUNT],
        ...shortWork,
        mode: { kind: 'shared' },
        workMs: [300, 700],
        pauseMs: [50, 200],
      }),
    ),
    {
      instance: 'rewrite-account',
      service: 'rewrite-account',
      locks: [REPORTED_ACCOUNT],
      ...shortWork,
      workMs: [150, 300],
      pauseMs: [800, 1_500],
    },
  ]
}

export function roleArgs(role: Role): string[] {
  return [
    `--instance=${role.instance}`,
    `--service=${role.service}`,
    `--locks=${role.locks.join(',')}`,
    `--timeout=${role.timeout}`,
    `--expires=${role.expires}`,
    `--work=${role.workMs.join('-')}`,
    `--pause=${role.pauseMs.join('-')}`,
    ...(role.mode.kind === 'semaphore' ? [`--limit=${role.mode.limit}`] : []),
    ...(role.mode.kind === 'shared' ? ['--shared'] : []),
    ...(role.overruns ? ['--overruns'] : []),
  ]
}
