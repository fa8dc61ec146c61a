/**
 * Turns the service processes' reports into the demo's summary. Pure: no I/O, no clock.
 *
 * A hold is the interval from the start of a `withLock()` body to the moment its holder stopped relying
 * on the lock (the body finished, or the signal fired). It lies inside the interval in which the lease
 * (or, for a semaphore or shared holder, its holder record) named that holder, so holds that overlap
 * where the lock's mode forbids it would be a broken promise: an exclusive holder together with any
 * other holder of the name, or more semaphore holders than the limit.
 */
import { compareResourceVersions } from '../sdk/internal.ts'
import type { LockMode, Report } from './protocol.ts'

export interface Tagged {
  /** The process that sent the report. */
  readonly instance: string
  readonly report: Report
}

export interface Hold {
  readonly lock: string
  readonly mode: LockMode
  readonly instance: string
  readonly holder: string
  readonly token: string
  readonly requestedAt: number
  readonly start: number
  readonly end: number
  /** `unreported`: the process never said; `end` is then the latest the lock could have been valid. */
  readonly how: 'released' | 'expired' | 'lost' | 'unreported'
}

export interface Percentiles {
  readonly count: number
  readonly p50: number | undefined
  readonly p99: number | undefined
  readonly max: number | undefined
}

export interface InstanceCounts {
  readonly instance: string
  acquisitions: number
  waits: number
  timeouts: number
  expirations: number
}

/** The most holds of one lock in at one instant, by kind. */
export interface Peaks {
  /** Holds of any kind. */
  readonly holders: number
  /** Holds, counted at instants when an exclusive hold was among them: 1 is the promise, 0 means no exclusive hold. */
  readonly withExclusive: number
  readonly shared: number
  readonly semaphore: number
  /** The instant with the most semaphore holds over the smallest `limit` among them, if there was one. */
  readonly overLimit: { readonly holders: number; readonly limit: number } | undefined
  /** Whether shared and semaphore holds were in at once (the SDK refuses the second mode). */
  readonly mixed: boolean
}

/** A name used as a semaphore: its calls, and whether more than `limit` were ever inside. */
export interface SemaphoreSummary {
  readonly lock: string
  readonly limit: number
  readonly calls: number
  /** Calls asked for while `limit` holders were inside. */
  readonly waits: number
  readonly timeouts: number
  /** The most semaphore holders inside at once, from the reports: at most `limit` is the promise. */
  readonly peak: number
}

/** A name read under shared locks and written under exclusive ones. */
export interface SharedSummary {
  readonly lock: string
  readonly reads: number
  readonly writes: number
  /** The most readers in at once: 2 or more shows that readers did run together. */
  readonly peakReaders: number
  /** The most holders in at once while a writer was in: 1 is the promise. */
  readonly peakWithWriter: number
  /** From a writer's release to the start of a reader that was waiting for it, in ms. */
  readonly readerHandoverMs: Percentiles
}

export interface Summary {
  readonly acquisitions: number
  /** Acquisitions asked for while the lock was taken: by anyone (exclusive), a writer (shared), all its places (semaphore). */
  readonly waits: number
  readonly timeouts: number
  /** Timeouts of calls with `timeout: 0`, which fail at once when the lock is held. */
  readonly immediateTimeouts: number
  /** Holds whose signal fired because the lock expired. */
  readonly expirations: number
  /** Holds whose signal fired for another reason (a failed renewal, the lease taken). */
  readonly lost: number
  /** Results thrown away because the lock's signal had fired before the work finished. */
  readonly dropped: number
  readonly errors: readonly string[]
  /** The most holds of one lock in at an instant when one of them was exclusive: 1 is the promise. */
  readonly maxHolders: number
  /** `maxHolders` per lock that had an exclusive hold. */
  readonly maxHoldersByLock: Readonly<Record<string, number>>
  /** Holds whose fencing token broke the rule of docs/guarantees.md (see `fencingViolationsOf`). */
  readonly fencingViolations: readonly string[]
  /** From a holder's release to the start of the next exclusive holder that was waiting for it, in ms. */
  readonly handoverMs: Percentiles
  readonly semaphores: readonly SemaphoreSummary[]
  readonly shared: readonly SharedSummary[]
  /** Every broken promise, one line each; empty when the run kept them all. */
  readonly violations: readonly string[]
  readonly byInstance: readonly InstanceCounts[]
}

export function holdsOf(reports: readonly Tagged[]): Hold[] {
  const ends = new Map<string, { at: number; how: Hold['how'] }>()
  for (const { report } of reports) {
    if (report.type === 'ended' && !ends.has(report.holder)) {
      ends.set(report.holder, { at: report.at, how: report.how })
    }
  }
  const holds: Hold[] = []
  for (const { instance, report } of reports) {
    if (report.type !== 'acquired') continue
    const end = ends.get(report.holder) ?? { at: report.at + report.expires * 1000, how: 'unreported' }
    holds.push({
      lock: report.lock,
      mode: report.mode,
      instance,
      holder: report.holder,
      token: report.token,
      requestedAt: report.requestedAt,
      start: report.at,
      end: end.at,
      how: end.how,
    })
  }
  return holds.sort((a, b) => a.start - b.start)
}

/** Start and end points in time order; a hold that ends when another starts does not overlap it. */
function sweep<T extends Pick<Hold, 'start' | 'end'>>(holds: readonly T[]) {
  const points = holds.flatMap((hold) => [
    { at: hold.start, delta: 1, hold },
    { at: hold.end, delta: -1, hold },
  ])
  return points.sort((a, b) => a.at - b.at || a.delta - b.delta)
}

/** The most intervals that contain one instant; an interval that ends when another starts does not overlap it. */
export function maxOverlap(holds: readonly Pick<Hold, 'start' | 'end'>[]): number {
  let current = 0
  let max = 0
  for (const point of sweep(holds)) {
    current += point.delta
    max = Math.max(max, current)
  }
  return max
}

/** The peaks of one lock's holds (the counts only grow when a hold starts, so only starts are checked). */
export function peaksOf(holds: readonly Pick<Hold, 'start' | 'end' | 'mode'>[]): Peaks {
  const inside = new Set<Pick<Hold, 'mode'>>()
  let peaks: Peaks = {
    holders: 0,
    withExclusive: 0,
    shared: 0,
    semaphore: 0,
    overLimit: undefined,
    mixed: false,
  }
  for (const point of sweep(holds)) {
    if (point.delta < 0) {
      inside.delete(point.hold)
      continue
    }
    inside.add(point.hold)
    const modes = [...inside].map((hold) => hold.mode)
    const exclusive = modes.filter((mode) => mode.kind === 'exclusive').length
    const shared = modes.filter((mode) => mode.kind === 'shared').length
    const limits = modes.flatMap((mode) => (mode.kind === 'semaphore' ? [mode.limit] : []))
    // Holders of one name agree on the limit (the SDK refuses another); if not, the smallest binds.
    const limit = Math.min(...limits)
    const over = limits.length > 0 && limits.length > limit && limits.length > (peaks.overLimit?.holders ?? 0)
    peaks = {
      holders: Math.max(peaks.holders, inside.size),
      withExclusive: exclusive > 0 ? Math.max(peaks.withExclusive, inside.size) : peaks.withExclusive,
      shared: Math.max(peaks.shared, shared),
      semaphore: Math.max(peaks.semaphore, limits.length),
      overLimit: over ? { holders: limits.length, limit } : peaks.overLimit,
      mixed: peaks.mixed || (shared > 0 && limits.length > 0),
    }
  }
  return peaks
}

/**
 * The fencing rule of docs/guarantees.md, over one lock's holds in the order they got in: an exclusive
 * holder's token is greater than every earlier holder's; a shared or semaphore holder's token is
 * greater than every earlier exclusive holder's. Holders in together have no order among themselves.
 */
export function fencingViolationsOf(lock: string, holds: readonly Hold[]): string[] {
  const violations: string[] = []
  const higher = (a: Hold | undefined, b: Hold) =>
    a === undefined || compareResourceVersions(a.token, b.token) < 0 ? b : a
  let highest: Hold | undefined
  let highestExclusive: Hold | undefined
  for (const hold of [...holds].sort((a, b) => a.start - b.start)) {
    const before = hold.mode.kind === 'exclusive' ? highest : highestExclusive
    if (before !== undefined && compareResourceVersions(before.token, hold.token) >= 0) {
      violations.push(
        `${lock}: token ${hold.token} of ${hold.holder} after ${before.token} of ${before.holder}`,
      )
    }
    highest = higher(highest, hold)
    if (hold.mode.kind === 'exclusive') highestExclusive = higher(highestExclusive, hold)
  }
  return violations
}

/** The broken promises among one lock's peaks, one line each. */
export function exclusionViolationsOf(lock: string, peaks: Peaks): string[] {
  const violations: string[] = []
  if (peaks.withExclusive > 1) {
    violations.push(
      `${lock}: ${peaks.withExclusive} holders at once, one of them exclusive (an exclusive holder must be alone)`,
    )
  }
  if (peaks.overLimit !== undefined) {
    violations.push(
      `${lock}: ${peaks.overLimit.holders} semaphore holders inside at once, over the limit of ${peaks.overLimit.limit}`,
    )
  }
  if (peaks.mixed) violations.push(`${lock}: shared and semaphore holders at once`)
  return violations
}

/** Whether `hold` had to wait when it asked: whether the holds in at that moment left it no room. */
function waited(hold: Hold, list: readonly Hold[]): boolean {
  const inside = list.filter(
    (other) => other !== hold && other.start < hold.requestedAt && other.end > hold.requestedAt,
  )
  if (hold.mode.kind === 'exclusive') return inside.length > 0
  if (inside.some((other) => other.mode.kind === 'exclusive')) return true
  if (hold.mode.kind === 'shared') return false
  return inside.filter((other) => other.mode.kind === 'semaphore').length >= hold.mode.limit
}

/**
 * From the release of the holder that `hold` (which waited) waited for last, the latest hold in its way
 * that ended before it started, to its start; `undefined` if that holder did not release while it
 * waited. A semaphore's place is freed by whichever holder leaves first: no one hold it waited for.
 */
function handoverOf(hold: Hold, list: readonly Hold[]): number | undefined {
  if (hold.mode.kind === 'semaphore') return undefined
  const last = list
    .filter((other) => other !== hold && other.end <= hold.start)
    .filter((other) => hold.mode.kind === 'exclusive' || other.mode.kind === 'exclusive')
    .reduce<Hold | undefined>((a, b) => (a === undefined || b.end > a.end ? b : a), undefined)
  return last?.how === 'released' && last.end > hold.requestedAt ? hold.start - last.end : undefined
}

/** Nearest-rank percentiles. */
export function percentiles(values: readonly number[]): Percentiles {
  const sorted = [...values].sort((a, b) => a - b)
  const rank = (p: number) => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]
  return { count: sorted.length, p50: rank(50), p99: rank(99), max: sorted.at(-1) }
}

export function summarize(reports: readonly Tagged[]): Summary {
  const holds = holdsOf(reports)
  const byLock = new Map<string, Hold[]>()
  for (const hold of holds) byLock.set(hold.lock, [...(byLock.get(hold.lock) ?? []), hold])

  const counts = new Map<string, InstanceCounts>()
  const countsOf = (instance: string) => {
    let found = counts.get(instance)
    if (found === undefined) {
      found = { instance, acquisitions: 0, waits: 0, timeouts: 0, expirations: 0 }
      counts.set(instance, found)
    }
    return found
  }
  for (const { instance } of reports) countsOf(instance)

  const timeoutsByLock = new Map<string, number>()
  let timeouts = 0
  let immediateTimeouts = 0
  let dropped = 0
  const errors: string[] = []
  for (const { instance, report } of reports) {
    if (report.type === 'timeout') {
      timeouts++
      if (report.timeout === 0) immediateTimeouts++
      countsOf(instance).timeouts++
      timeoutsByLock.set(report.lock, (timeoutsByLock.get(report.lock) ?? 0) + 1)
    } else if (report.type === 'dropped') {
      dropped++
    } else if (report.type === 'error') {
      errors.push(`${instance}: ${report.message}`)
    }
  }

  const maxHoldersByLock: Record<string, number> = {}
  const fencingViolations: string[] = []
  const violations: string[] = []
  const semaphores: SemaphoreSummary[] = []
  const shared: SharedSummary[] = []
  const handovers: number[] = []
  let waits = 0
  for (const [lock, list] of byLock) {
    const peaks = peaksOf(list)
    if (list.some((hold) => hold.mode.kind === 'exclusive')) maxHoldersByLock[lock] = peaks.withExclusive
    violations.push(...exclusionViolationsOf(lock, peaks))
    fencingViolations.push(...fencingViolationsOf(lock, list))
    const waiting = new Set(list.filter((hold) => waited(hold, list)))
    const readerHandovers: number[] = []
    waits += waiting.size
    for (const hold of list) {
      countsOf(hold.instance).acquisitions++
      if (hold.how === 'expired') countsOf(hold.instance).expirations++
      if (!waiting.has(hold)) continue
      countsOf(hold.instance).waits++
      const handover = handoverOf(hold, list)
      if (handover === undefined) continue
      if (hold.mode.kind === 'exclusive') handovers.push(handover)
      else readerHandovers.push(handover)
    }
    const semaphoreHolds = list.filter((hold) => hold.mode.kind === 'semaphore')
    const limits = semaphoreHolds.flatMap((hold) => (hold.mode.kind === 'semaphore' ? [hold.mode.limit] : []))
    if (limits.length > 0) {
      semaphores.push({
        lock,
        limit: Math.min(...limits),
        calls: semaphoreHolds.length,
        waits: semaphoreHolds.filter((hold) => waiting.has(hold)).length,
        timeouts: timeoutsByLock.get(lock) ?? 0,
        peak: peaks.semaphore,
      })
    }
    if (list.some((hold) => hold.mode.kind === 'shared')) {
      shared.push({
        lock,
        reads: list.filter((hold) => hold.mode.kind === 'shared').length,
        writes: list.filter((hold) => hold.mode.kind === 'exclusive').length,
        peakReaders: peaks.shared,
        peakWithWriter: peaks.withExclusive,
        readerHandoverMs: percentiles(readerHandovers),
      })
    }
  }
  violations.push(...fencingViolations)

  return {
    acquisitions: holds.length,
    waits,
    timeouts,
    immediateTimeouts,
    expirations: holds.filter((hold) => hold.how === 'expired').length,
    lost: holds.filter((hold) => hold.how === 'lost').length,
    dropped,
    errors,
    maxHolders: Math.max(0, ...Object.values(maxHoldersByLock)),
    maxHoldersByLock,
    fencingViolations,
    handoverMs: percentiles(handovers),
    semaphores: semaphores.sort((a, b) => a.lock.localeCompare(b.lock)),
    shared: shared.sort((a, b) => a.lock.localeCompare(b.lock)),
    violations,
    byInstance: [...counts.values()].sort((a, b) => a.instance.localeCompare(b.instance)),
  }
}
