import type { Hold, HoldMode } from './history.ts'

/**
 * What the coordinator recorded about one acquisition, on its timebase (ms of `performance.now()`).
 * Everything here comes from the SDK's behaviour as the holder saw it: the writes its store sent, when
 * its signal aborted, when its own timer at the documented bound ran.
 */
export interface HoldRecord {
  readonly lock: string
  /** @default exclusive */
  readonly mode?: HoldMode | undefined
  readonly worker: string
  readonly holder: string
  readonly token: string
  readonly start: number
  /** `expires − safetyMargin` in real ms (stretched for a holder whose clock runs slow). */
  readonly validForMs: number
  /**
   * Send time of the holder's last write that may have applied (succeeded, or outcome unknown): to the
   * lock's lease, or for a shared or semaphore hold to its holder record.
   */
  anchor: number | undefined
  /** The worker's probe: when it ran, and the `due` it was set for. */
  probe: { readonly due: number; readonly at: number } | undefined
  signalAt: number | undefined
  /** `released`, a `LockLostReason`, or the error's name. */
  signalReason: string | undefined
  exitedAt: number | undefined
}

/** SIGSTOP … SIGCONT of a worker; `to` is `undefined` while it is stopped. */
export type Pause = readonly [from: number, to: number | undefined]

/**
 * The hold as the checker judges it. It ends when the signal aborted or the process exited, whichever
 * came first, with one exception: when the documented bound (`anchor + validFor`) fell while the holder
 * was stopped, the hold ends at that bound — the holder could not act from the stop on, and a holder
 * that continues must see `lock.valid === false` before any write (the checker's `unheld-write`) and its
 * signal must then fire at once (`due` moves to the moment it continued, for `late-signal`). No other
 * cut-off: a signal that fires late or never leaves the hold open for the overlap check.
 */
export function judgeHold(record: HoldRecord, pauses: readonly Pause[], now: number): Hold {
  const bound = record.anchor === undefined ? undefined : record.anchor + record.validForMs
  let end = minDefined(record.signalAt, record.exitedAt)
  let endedBy = record.signalAt !== undefined && end === record.signalAt ? record.signalReason : undefined
  if (end !== undefined && endedBy === undefined) endedBy = 'exited'
  let due = bound
  if (bound !== undefined) {
    for (const [from, to] of pauses) {
      const until = to ?? record.exitedAt ?? now
      if (from <= bound && bound < until && (end === undefined || bound < end)) {
        end = bound
        endedBy = `deadline while stopped (${endedBy ?? 'open'})`
        // Judged only once the holder could run again; not at all while it is still stopped.
        due = to
      }
    }
  }
  const probeAt =
    record.probe !== undefined && bound !== undefined && Math.abs(record.probe.due - bound) < 0.01
      ? record.probe.at
      : undefined
  return {
    lock: record.lock,
    mode: record.mode,
    worker: record.worker,
    holder: record.holder,
    token: record.token,
    start: record.start,
    end,
    endedBy,
    due,
    signalAt: record.signalAt,
    probeAt,
    exitedAt: record.exitedAt,
  }
}

function minDefined(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b
  if (b === undefined) return a
  return Math.min(a, b)
}
