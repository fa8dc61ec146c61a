/**
 * Turns the service processes' reports into the demo's summary. Pure: no I/O, no clock.
 *
 * A hold is the interval from the start of a `withLock()` body to the moment its holder stopped relying
 * on the lock (the body finished, or the signal fired). It lies inside the interval in which the lease
 * named that holder, so two holds of one lock that overlap would be a broken promise.
 */
import { compareResourceVersions } from '../sdk/internal.ts'
import type { Report } from './protocol.ts'

export interface Tagged {
  /** The process that sent the report. */
  readonly instance: string
  readonly report: Report
}

export interface Hold {
  readonly lock: string
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

export interface Summary {
  readonly acquisitions: number
  /** Acquisitions asked for while another process held the lock. */
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
  /** The most holds of one lock that overlapped at any instant: 1 is the promise. */
  readonly maxHolders: number
  readonly maxHoldersByLock: Readonly<Record<string, number>>
  /** Locks whose fencing tokens did not increase strictly in the order of their holds. */
  readonly fencingViolations: readonly string[]
  /** From a holder's release to the start of the next holder that was waiting for it, in ms. */
  readonly handoverMs: Percentiles
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

/** The most intervals that contain one instant; an interval that ends when another starts does not overlap it. */
export function maxOverlap(holds: readonly Pick<Hold, 'start' | 'end'>[]): number {
  const points = holds.flatMap((hold) => [
    { at: hold.start, delta: 1 },
    { at: hold.end, delta: -1 },
  ])
  points.sort((a, b) => a.at - b.at || a.delta - b.delta)
  let current = 0
  let max = 0
  for (const point of points) {
    current += point.delta
    max = Math.max(max, current)
  }
  return max
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

  const maxHoldersByLock: Record<string, number> = {}
  const fencingViolations: string[] = []
  const handovers: number[] = []
  let waits = 0
  for (const [lock, list] of byLock) {
    maxHoldersByLock[lock] = maxOverlap(list)
    for (let i = 1; i < list.length; i++) {
      const [previous, next] = [list[i - 1], list[i]]
      if (previous && next && compareResourceVersions(previous.token, next.token) >= 0) {
        fencingViolations.push(`${lock}: token ${next.token} of ${next.holder} after ${previous.token}`)
      }
    }
    for (const hold of list) {
      countsOf(hold.instance).acquisitions++
      if (hold.how === 'expired') countsOf(hold.instance).expirations++
      const waitedFor = list.filter(
        (other) => other !== hold && other.start < hold.requestedAt && other.end > hold.requestedAt,
      )
      if (waitedFor.length === 0) continue
      waits++
      countsOf(hold.instance).waits++
      // The holder it waited for last: the latest hold of the lock that ended before this one started.
      const before = list.filter((other) => other !== hold && other.end <= hold.start)
      const last = before.reduce<Hold | undefined>(
        (a, b) => (a === undefined || b.end > a.end ? b : a),
        undefined,
      )
      if (last?.how === 'released' && last.end > hold.requestedAt) handovers.push(hold.start - last.end)
    }
  }

  let timeouts = 0
  let immediateTimeouts = 0
  let dropped = 0
  const errors: string[] = []
  for (const { instance, report } of reports) {
    if (report.type === 'timeout') {
      timeouts++
      if (report.timeout === 0) immediateTimeouts++
      countsOf(instance).timeouts++
    } else if (report.type === 'dropped') {
      dropped++
    } else if (report.type === 'error') {
      errors.push(`${instance}: ${report.message}`)
    }
  }

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
    byInstance: [...counts.values()].sort((a, b) => a.instance.localeCompare(b.instance)),
  }
}
