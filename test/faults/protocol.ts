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
  /** Autonomous contention: acquire a random lock of `locks`, read, pause, write, release; repeat. */
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
       * Real milliseconds from a write being sent until the holder's deadline unless renewed
       * (`expires − safetyMargin`, scaled by the clock rate): a hold is surely over this long after it
       * was reported without renewal, or after its holder was stopped.
       */
      readonly validForMs: number
      readonly renews: boolean
    }
  | { readonly type: 'aborted'; readonly lock: string; readonly token: string; readonly error: ErrorInfo }
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
      readonly late: boolean
    }
  /** The holder skipped its write because its signal had fired during the pause. */
  | { readonly type: 'skipped'; readonly lock: string; readonly token: string }
  | { readonly type: 'released'; readonly lock: string; readonly token: string }
  | { readonly type: 'failed'; readonly lock: string; readonly error: ErrorInfo }
  | { readonly type: 'done' }
)

export type ReportType = Report['type']
