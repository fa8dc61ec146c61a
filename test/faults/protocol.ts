import type { HoldMode } from './history.ts'

/**
 * Messages between the coordinating test process and a fault worker (`test/e2e/fixtures/faults-worker.ts`)
 * over the IPC channel. `sent` is the worker's `process.hrtime` in ms (the host's monotonic clock) when
 * it sent the message; the coordinator puts it on its own `performance.now()` scale.
 */

export interface WorkerAcquireOptions {
  readonly expires: number
  readonly timeout: number
  readonly renew?: boolean
  readonly safetyMargin?: number
  /** Wait in line (`true`, the SDK's default) or race for a released lock (`false`). */
  readonly fair?: boolean
  /** A semaphore slot: at most `limit` holders at once. */
  readonly limit?: number
  /** A shared (read) hold. */
  readonly shared?: boolean
}

export interface WorkerConfig {
  readonly id: string
  readonly kubeconfig: string
  readonly namespace: string
  /** Root directory of the fenced resources. */
  readonly resourceRoot: string
  readonly requestTimeout?: number
  readonly retryInterval?: number
  readonly expiryGrace?: number
  /** Added to the wall clock the SDK sees, in ms (clock skew). @default 0 */
  readonly wallSkewMs?: number
  /** Rate of the monotonic clock the SDK sees relative to the real one. @default 1 */
  readonly clockRate?: number
  /** Seed of the worker's random choices (see random.ts). */
  readonly seed: number
  /**
   * A planted bug, to show the checker catches it: the SDK is given this safety margin (seconds) while
   * the documented bound is computed with the margin the options ask for, so the signal fires late.
   */
  readonly plantSdkSafetyMargin?: number
  /**
   * Autonomous contention: acquire a random lock of `locks`, read, pause, write, release; repeat. A
   * shared or semaphore holder, which is not alone with the resource, only pauses.
   */
  readonly contend?: {
    readonly locks: readonly string[]
    readonly acquire: WorkerAcquireOptions
    readonly pauseMs: readonly [number, number]
    /** Stop after this many holds (also stops on a `stop` command). */
    readonly rounds: number
  }
}

export type Command =
  | { readonly type: 'acquire'; readonly lock: string; readonly options: WorkerAcquireOptions }
  /** Read the resource of the held lock (the first half of a read–modify–write). */
  | { readonly type: 'read'; readonly lock: string }
  /** Write what was read back, plus one, whether or not the signal has fired (a late write). */
  | { readonly type: 'commit'; readonly lock: string }
  | { readonly type: 'release'; readonly lock: string }
  /** Answered with `pong` after the timers that were due by then have run (after a SIGCONT: overdue ones). */
  | { readonly type: 'ping'; readonly id: number }
  /** Finish the current hold, close the client and exit. */
  | { readonly type: 'stop' }

export interface ErrorInfo {
  readonly name: string
  readonly code?: string | undefined
  readonly reason?: string | undefined
  readonly message: string
}

export type Report = { readonly sent: number } & (
  | { readonly type: 'ready' }
  | { readonly type: 'acquiring'; readonly lock: string }
  | {
      readonly type: 'acquired'
      readonly lock: string
      readonly holder: string
      readonly token: string
      /**
       * Real milliseconds from a write being sent until the documented bound of its signal:
       * `expires − safetyMargin`, the margin as the SDK resolves it (`defaultSafetyMargin` or the
       * option), stretched by `1 / clockRate` for a clock that runs slow.
       */
      readonly validForMs: number
      readonly renews: boolean
      readonly mode: HoldMode
    }
  | { readonly type: 'aborted'; readonly lock: string; readonly token: string; readonly error: ErrorInfo }
  /**
   * A create or update the SDK's store sent, once it settled: `holder` is the holder it names (none for
   * a release), `writeSent` the host time it was sent; `unknown` when it failed in a way that may have
   * applied, `refused` when it surely did not.
   */
  | {
      readonly type: 'store-write'
      readonly op: 'create' | 'update'
      readonly name: string
      /** For a holder record, the lock lease it holds (its `kube-locks.io/holds` annotation). */
      readonly holds: string | undefined
      readonly holder: string | undefined
      readonly writeSent: number
      readonly outcome: 'applied' | 'unknown' | 'refused'
      readonly resourceVersion?: string | undefined
    }
  /** The worker's own timer at the documented bound (`due`, host time) ran and the signal had not fired. */
  | { readonly type: 'probe'; readonly lock: string; readonly token: string; readonly due: number }
  /** `inFlight`: creates and updates sent and not yet settled. */
  | { readonly type: 'pong'; readonly id: number; readonly inFlight: number }
  | {
      readonly type: 'read'
      readonly lock: string
      readonly token: string
      readonly version: number
      readonly counter: number
    }
  | {
      readonly type: 'write'
      readonly lock: string
      readonly token: string
      readonly outcome: 'committed' | 'fenced' | 'lost-update' | 'race'
      readonly readVersion: number
      readonly readCounter: number
      /** `lock.valid` was false right before the write. */
      readonly late: boolean
      /** Host time of that check. */
      readonly checkedAt: number
    }
  /** The holder skipped its write because its signal had fired during the pause. */
  | { readonly type: 'skipped'; readonly lock: string; readonly token: string }
  | { readonly type: 'released'; readonly lock: string; readonly token: string }
  | { readonly type: 'failed'; readonly lock: string; readonly error: ErrorInfo }
  | { readonly type: 'done' }
)

export type ReportType = Report['type']
