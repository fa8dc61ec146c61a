import type { History, Hold, Violation, Write } from './history.ts'

export interface CheckOptions {
  /**
   * Allowance, in ms, for the error of putting the workers' times on one timebase. Two holds count as
   * overlapping only when one began more than this before the other ended, and tokens as out of order
   * only when the hold with the larger token began more than this before the other; an overlap shorter
   * than this is missed. A hold's start is when its holder learned it had the lock, after the acquiring
   * write; its end is when its signal fired (or its deadline bound, or its process died), not earlier
   * than the end of its validity: both err towards reporting a violation, never towards hiding one.
   * @default 25
   */
  readonly toleranceMs?: number
  /** Monotonic time at which open holds are considered to end. @default Infinity */
  readonly now?: number
}

export interface CheckResult {
  readonly violations: readonly Violation[]
  readonly holds: number
  readonly writes: number
  readonly committed: number
  readonly fenced: number
}

/**
 * Judges a history: mutual exclusion of valid holds per lock, strictly increasing fencing tokens in the
 * order holds began, and no lost update on the fenced resource (a write that interleaved with another,
 * a valid holder's write refused by the fencing check, or a final counter that disagrees with the
 * writes that committed).
 */
export function checkHistory(history: History, options: CheckOptions = {}): CheckResult {
  const toleranceMs = options.toleranceMs ?? 25
  const now = options.now ?? Number.POSITIVE_INFINITY
  const violations: Violation[] = []
  const byLock = groupBy(history.holds, (hold) => hold.lock)
  for (const [lock, holds] of byLock) {
    const byStart = [...holds].sort((a, b) => a.start - b.start)
    // Sweep: every earlier hold whose end lies past this start overlaps it.
    for (let i = 0; i < byStart.length; i++) {
      const a = byStart[i] as Hold
      const aEnd = a.end ?? now
      for (let j = i + 1; j < byStart.length; j++) {
        const b = byStart[j] as Hold
        if (b.start >= aEnd) break
        const byMs = aEnd - b.start
        if (byMs > toleranceMs) violations.push({ kind: 'overlap', lock, a, b, byMs })
      }
    }
    const byToken = [...holds].sort((a, b) => compareTokens(a.token, b.token))
    for (let i = 1; i < byToken.length; i++) {
      const a = byToken[i - 1] as Hold
      const b = byToken[i] as Hold
      if (compareTokens(a.token, b.token) === 0) violations.push({ kind: 'duplicate-token', lock, a, b })
      // b has the larger token, so it must not have begun before a (allowing for the timebase error).
      else if (b.start + toleranceMs < a.start) violations.push({ kind: 'token-order', lock, a, b })
    }
  }
  let committed = 0
  let fenced = 0
  const committedByLock = new Map<string, number>()
  for (const write of history.writes) {
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
  return { violations, holds: history.holds.length, writes: history.writes.length, committed, fenced }
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
        case 'token-order':
          return `token order on ${v.lock}: ${describeHold(v.b)} began before ${describeHold(v.a)} with a larger token`
        case 'duplicate-token':
          return `duplicate token on ${v.lock}: ${describeHold(v.a)} and ${describeHold(v.b)}`
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
  return `${hold.worker} token ${hold.token} [${hold.start.toFixed(1)}, ${end}] (${hold.endedBy ?? 'open'})`
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
