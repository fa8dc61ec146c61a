/**
 * The history a fault run is judged on. Every time is in milliseconds of the coordinating process's
 * `performance.now()`: workers report events over IPC the moment they happen, with their send time,
 * which the coordinator puts on its own clock (see `toLocal` in coordinator.ts), so all holds share one
 * monotonic timebase whatever the message latency.
 */

/**
 * How a hold shares its lock: alone (a plain lock, the default), with other shared holds (a reader,
 * `shared: true`), or as one of at most `limit` holds (a semaphore slot, `limit: N`).
 */
export type HoldMode =
  | { readonly kind: 'exclusive' }
  | { readonly kind: 'shared' }
  | { readonly kind: 'semaphore'; readonly limit: number }

/** One acquisition of a lock, from the moment it was reported acquired until its validity ended. */
export interface Hold {
  readonly lock: string
  /** @default exclusive */
  readonly mode?: HoldMode | undefined
  readonly worker: string
  readonly holder: string
  /** Decimal fencing token; compared as BigInt. */
  readonly token: string
  /** When the holder learned it holds the lock: never earlier than the acquiring write. */
  readonly start: number
  /**
   * The earliest of: when the signal aborted (release, loss); receipt of the worker's exit (SIGKILL); an
   * upper bound of the local deadline of a lock that does not renew. `undefined` while the hold is open.
   */
  readonly end: number | undefined
  /** How the hold ended: `released`, a `LockLostReason`, `exited`, `deadline (…)` or open. */
  readonly endedBy?: string | undefined
  /**
   * When the signal was due at the latest, by the documented bound: the send time of the holder's last
   * write that may have applied, plus `expires − safetyMargin` (the margin as the SDK resolves it). When
   * that instant fell while the holder was stopped, the moment it continued. `undefined` when unknown.
   */
  readonly due?: number | undefined
  /** When the lock's signal aborted, as the holder saw it. */
  readonly signalAt?: number | undefined
  /**
   * When the holder's own timer, set for `due`, ran and found the signal not yet aborted (a reading of
   * the holder's event-loop lag at that moment); `undefined` if the signal came first.
   */
  readonly probeAt?: number | undefined
  /** When the coordinator saw the holder's process exit, if it did while holding. */
  readonly exitedAt?: number | undefined
}

/** One read–modify–write on the fenced resource, as the resource itself answered it. */
export interface Write {
  readonly lock: string
  readonly worker: string
  readonly token: string
  /** Version of the resource that was read before the pause. */
  readonly readVersion: number
  /** Counter value that was read. */
  readonly readCounter: number
  /**
   * `committed` — written as version `readVersion + 1`;
   * `fenced` — rejected because the resource had seen a higher token;
   * `lost-update` — someone else wrote between the read and the write (the write is refused, but two
   * writers interleaved);
   * `race` — another writer created the same version at the same instant.
   */
  readonly outcome: 'committed' | 'fenced' | 'lost-update' | 'race'
  /** Whether `lock.valid` was false right before the write (a knowingly late write). */
  readonly late: boolean
  /** When the writer checked `lock.valid`, right before the write. */
  readonly checkedAt?: number | undefined
}

export type Violation =
  /** Two holds of one lock that exclude each other overlap: one of them exclusive, or of different modes. */
  | {
      readonly kind: 'overlap'
      readonly lock: string
      readonly a: Hold
      readonly b: Hold
      readonly byMs: number
    }
  /** More than `limit` semaphore holds of one lock valid at once, at the start of the last of `holds`. */
  | {
      readonly kind: 'over-limit'
      readonly lock: string
      readonly limit: number
      readonly holds: readonly Hold[]
    }
  | { readonly kind: 'token-order'; readonly lock: string; readonly a: Hold; readonly b: Hold }
  | { readonly kind: 'duplicate-token'; readonly lock: string; readonly a: Hold; readonly b: Hold }
  | { readonly kind: 'lost-update'; readonly lock: string; readonly write: Write }
  | { readonly kind: 'race'; readonly lock: string; readonly write: Write }
  | { readonly kind: 'valid-write-fenced'; readonly lock: string; readonly write: Write }
  /** A holder believed its lock valid (`lock.valid`) after its hold had ended. */
  | { readonly kind: 'unheld-write'; readonly lock: string; readonly write: Write; readonly hold: Hold }
  /** The signal fired later than its documented bound allows, or not at all. */
  | {
      readonly kind: 'late-signal'
      readonly lock: string
      readonly hold: Hold
      /** How long after `due` it fired, or (`never`) how long after `due` it had still not. */
      readonly lateMs: number
      readonly never: boolean
    }
  | {
      readonly kind: 'counter'
      readonly lock: string
      readonly expected: number
      readonly actual: number
    }

export interface History {
  readonly holds: readonly Hold[]
  readonly writes: readonly Write[]
  /** Final counter of each lock's resource, as read from the resource after the run. */
  readonly counters: Readonly<Record<string, number>>
  /**
   * Per lock, writes that were begun but never reported (the writer was killed in between): each may or
   * may not have committed.
   */
  readonly unresolvedWrites?: Readonly<Record<string, number>>
}
