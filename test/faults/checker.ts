import type { History, Hold, HoldMode, Violation, Write } from './history.ts'

export interface CheckOptions {
  /**
   * Allowance, in ms, for the error of putting the workers' times on one timebase (see
   * `overlapToleranceMs` in timebase.ts: twice the measured error of the offset, about a microsecond).
   * Two holds count as overlapping only when one began more than this before the other ended, and tokens
   * as out of order only when the hold with the larger token began more than this before the other. A
   * hold's start is when its holder learned it had the lock, after the acquiring write; its end is when
   * its signal fired or its process died (see `judgeHold`): both err towards reporting a violation.
   */
  readonly toleranceMs: number
  /**
   * The least time, in ms, allowed between the holder's probe (its own timer at the documented bound,
   * which found the signal not yet aborted) and the signal: one more event-loop turn (the SDK's deadline
   * timer may run a moment early, re-check and re-arm). The allowance is the larger of this and the
   * probe's own measured lag. @default 50
   */
  readonly signalTurnMs?: number
  /**
   * How long after `due`, in ms, a hold may stay open with neither its signal nor its probe reported
   * before its signal counts as never fired (reports in flight, a starved worker). @default 2000
   */
  readonly unansweredMs?: number
  /** Monotonic time at which open holds are considered to end. @default Infinity */
  readonly now?: number
}

export interface CheckResult {
  readonly violations: readonly Violation[]
  readonly holds: number
  readonly writes: number
  readonly committed: number
  readonly fenced: number
  /** Per lock, the most holds valid at once (overlapping by more than the tolerance). */
  readonly peaks: Readonly<Record<string, number>>
}

/**
 * Judges a history: mutual exclusion of valid holds per lock (an exclusive hold alone, shared holds
 * only with shared ones, at most `limit` semaphore holds at once), fencing tokens that increase in the
 * order holds began (in every pair with an exclusive hold), signals that fire by their documented
 * bound, writes made only while the hold lasted, and no lost update on the fenced resource (a write
 * that interleaved with another, a valid holder's write refused by the fencing check, or a final
 * counter that disagrees with the writes that committed).
 */
export function checkHistory(history: History, options: CheckOptions): CheckResult {
  const { toleranceMs } = options
  const now = options.now ?? Number.POSITIVE_INFINITY
  const violations: Violation[] = []
  for (const hold of history.holds) {
    const late = lateSignal(hold, now, options)
    if (late) violations.push({ kind: 'late-signal', lock: hold.lock, hold, ...late })
  }
  const byLock = groupBy(history.holds, (hold) => hold.lock)
  const peaks: Record<string, number> = {}
  for (const [lock, holds] of byLock) {
    const byStart = [...holds].sort((a, b) => a.start - b.start)
    let peak = 0
    // Sweep: every earlier hold whose end lies past this start overlaps it. The most holds valid at
    // once are valid together at the start of one of them, so counting at each start finds the peak.
    // Starts only grow: a hold that ended by one start has ended by every later one.
    let active: Hold[] = []
    for (const b of byStart) {
      active = active.filter((a) => (a.end ?? now) - b.start > toleranceMs)
      for (const a of active) {
        const byMs = (a.end ?? now) - b.start
        if (!compatible(a, b)) violations.push({ kind: 'overlap', lock, a, b, byMs })
      }
      active.push(b)
      peak = Math.max(peak, active.length)
      if (b.mode?.kind === 'semaphore') {
        const slots = active.filter((h) => compatible(h, b))
        if (slots.length > b.mode.limit) {
          violations.push({ kind: 'over-limit', lock, limit: b.mode.limit, holds: slots })
        }
      }
    }
    peaks[lock] = peak
    violations.push(...tokenViolations(lock, holds, toleranceMs))
  }
  let committed = 0
  let fenced = 0
  const committedByLock = new Map<string, number>()
  for (const write of history.writes) {
    if (!write.late && write.checkedAt !== undefined) {
      const hold = history.holds.find(
        (h) => h.worker === write.worker && h.lock === write.lock && h.token === write.token,
      )
      const end = hold?.end ?? now
      if (hold && write.checkedAt > end + toleranceMs) {
        violations.push({ kind: 'unheld-write', lock: write.lock, write, hold })
      }
    }
    if (write.outcome === 'committed') {
      committed++
      committedByLock.set(write.lock, (committedByLock.get(write.lock) ?? 0) + 1)
    } else if (write.outcome === 'fenced') {
      fenced++
      if (!write.late) violations.push({ kind: 'valid-write-fenced', lock: write.lock, write })
    } else if (write.outcome === 'lost-update') {
      violations.push({ kind: 'lost-update', lock: write.lock, write })
    } else {
      violations.push({ kind: 'race', lock: write.lock, write })
    }
  }
  const locks = new Set([...Object.keys(history.counters), ...committedByLock.keys()])
  for (const lock of locks) {
    const expected = committedByLock.get(lock) ?? 0
    const actual = history.counters[lock] ?? 0
    const unresolved = history.unresolvedWrites?.[lock] ?? 0
    if (actual < expected || actual > expected + unresolved) {
      violations.push({ kind: 'counter', lock, expected, actual })
    }
  }
  const counts = { holds: history.holds.length, writes: history.writes.length, committed, fenced }
  return { violations, ...counts, peaks }
}

/** Whether two holds of one lock may be valid together: both shared, or slots of the same semaphore. */
function compatible(a: Hold, b: Hold): boolean {
  const x = a.mode ?? EXCLUSIVE
  const y = b.mode ?? EXCLUSIVE
  if (x.kind === 'shared') return y.kind === 'shared'
  return x.kind === 'semaphore' && y.kind === 'semaphore' && x.limit === y.limit
}

const EXCLUSIVE: HoldMode = { kind: 'exclusive' }

/**
 * Fencing tokens of one lock (docs/guarantees.md, "Fencing with shared holders"), in every pair with
 * an exclusive hold: the two tokens differ, and the hold that began later has the larger one. Holds
 * that may be valid together (readers, semaphore slots) are not ordered among themselves, and may
 * share a token (a shared holder's token can be the lock lease's resourceVersion that its check read).
 */
function tokenViolations(lock: string, holds: readonly Hold[], toleranceMs: number): Violation[] {
  const violations: Violation[] = []
  const byToken = [...holds].sort((a, b) => compareTokens(a.token, b.token))
  const exclusive = byToken.filter((h) => (h.mode ?? EXCLUSIVE).kind === 'exclusive')
  for (let i = 1; i < exclusive.length; i++) {
    const a = exclusive[i - 1] as Hold
    const b = exclusive[i] as Hold
    if (compareTokens(a.token, b.token) === 0) violations.push({ kind: 'duplicate-token', lock, a, b })
    // b has the larger token, so it must not have begun before a (allowing for the timebase error).
    else if (b.start + toleranceMs < a.start) violations.push({ kind: 'token-order', lock, a, b })
  }
  for (const h of byToken) {
    if ((h.mode ?? EXCLUSIVE).kind === 'exclusive') continue
    for (const e of exclusive) {
      const order = compareTokens(h.token, e.token)
      // As above: `b` has the larger token and began more than the tolerance before `a`.
      const [a, b] = order > 0 ? [e, h] : [h, e]
      if (order === 0) violations.push({ kind: 'duplicate-token', lock, a, b })
      else if (b.start + toleranceMs < a.start) violations.push({ kind: 'token-order', lock, a, b })
    }
  }
  return violations
}

/**
 * Whether a hold's signal came too late: after its probe (the holder's timer at `due` that found it
 * not yet aborted) by more than one event-loop turn, or not at all.
 */
function lateSignal(
  hold: Hold,
  now: number,
  options: CheckOptions,
): { lateMs: number; never: boolean } | undefined {
  const { due, probeAt } = hold
  if (due === undefined) return undefined
  // The process died before the signal was due: nothing more to fire.
  if (hold.exitedAt !== undefined && hold.exitedAt <= due && hold.signalAt === undefined) return undefined
  if (hold.signalAt !== undefined && hold.signalAt <= due) return undefined
  const observed = hold.signalAt ?? hold.exitedAt ?? now
  if (probeAt !== undefined) {
    const lagMs = Math.max(0, probeAt - due)
    const allowanceMs = Math.max(lagMs, options.signalTurnMs ?? 50)
    if (observed - probeAt > allowanceMs) {
      return { lateMs: observed - due, never: hold.signalAt === undefined }
    }
    return undefined
  }
  // Neither the probe nor the signal: the signal came first (fine), unless nothing came at all.
  if (
    hold.signalAt === undefined &&
    hold.exitedAt === undefined &&
    now - due > (options.unansweredMs ?? 2_000)
  ) {
    return { lateMs: now - due, never: true }
  }
  return undefined
}

export function compareTokens(a: string, b: string): number {
  const x = BigInt(a)
  const y = BigInt(b)
  return x < y ? -1 : x > y ? 1 : 0
}

/** One line per violation, for failure messages. */
export function describeViolations(violations: readonly Violation[]): string {
  return violations
    .map((v) => {
      switch (v.kind) {
        case 'overlap':
          return `overlap on ${v.lock}: ${describeHold(v.a)} and ${describeHold(v.b)} overlap by ${v.byMs.toFixed(1)} ms`
        case 'over-limit':
          return `over limit on ${v.lock}: ${v.holds.length} holds of a semaphore with limit ${v.limit} valid at once: ${v.holds.map(describeHold).join(', ')}`
        case 'token-order':
          return `token order on ${v.lock}: ${describeHold(v.b)} began before ${describeHold(v.a)} with a larger token`
        case 'duplicate-token':
          return `duplicate token on ${v.lock}: ${describeHold(v.a)} and ${describeHold(v.b)}`
        case 'late-signal':
          return v.never
            ? `late signal on ${v.lock}: ${describeHold(v.hold)} had not fired ${v.lateMs.toFixed(1)} ms after it was due at ${v.hold.due?.toFixed(1)}`
            : `late signal on ${v.lock}: ${describeHold(v.hold)} fired ${v.lateMs.toFixed(1)} ms after it was due at ${v.hold.due?.toFixed(1)}`
        case 'unheld-write':
          return `unheld write on ${v.lock}: ${describeWrite(v.write)} judged valid at ${v.write.checkedAt?.toFixed(1)}, after ${describeHold(v.hold)} ended`
        case 'counter':
          return `counter of ${v.lock} is ${v.actual}, but ${v.expected} writes committed`
        default:
          return `${v.kind} on ${v.lock}: ${describeWrite(v.write)}`
      }
    })
    .join('\n')
}

function describeHold(hold: Hold): string {
  const end = hold.end === undefined ? 'open' : hold.end.toFixed(1)
  const mode = hold.mode === undefined || hold.mode.kind === 'exclusive' ? '' : ` ${hold.mode.kind}`
  return `${hold.worker}${mode} token ${hold.token} [${hold.start.toFixed(1)}, ${end}] (${hold.endedBy ?? 'open'})`
}

function describeWrite(write: Write): string {
  return `${write.worker} token ${write.token} read v${write.readVersion} (counter ${write.readCounter}), late ${write.late}`
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const map = new Map<string, T[]>()
  for (const item of items) {
    const k = key(item)
    const list = map.get(k)
    if (list) list.push(item)
    else map.set(k, [item])
  }
  return map
}
