import { writeFileSync } from 'node:fs'
import { cpus, release, totalmem } from 'node:os'
import type { CheckResult } from '../faults/checker.ts'
import { describeViolations } from '../faults/checker.ts'
import type { Violation } from '../faults/history.ts'
import type { SoakOptions } from './options.ts'

/** Every fault the soak injects, by kind. */
export const FAULT_KINDS = [
  'worker-kill',
  'worker-pause',
  'proxy-latency',
  'proxy-blackhole',
  'proxy-reset',
  'apiserver-restart',
  'etcd-restart',
  'controller-pause',
  'clock-skew',
] as const
export type FaultKind = (typeof FAULT_KINDS)[number]

export const VIOLATION_KINDS = [
  'overlap',
  'over-limit',
  'late-signal',
  'unheld-write',
  'token-order',
  'duplicate-token',
  'lost-update',
  'race',
  'valid-write-fenced',
  'counter',
  /** A report received before it was sent, beyond twice the timebase error (see coordinator.ts). */
  'timebase',
] as const
export type ViolationKind = (typeof VIOLATION_KINDS)[number]

const MAX_EXAMPLES = 50

/** The running totals of a soak, from which the report and the progress lines are made. */
export class Tally {
  readonly startedAt = new Date()
  readonly #start = performance.now()
  epochs = 0
  /** Holds judged by the checker, over the finished epochs. */
  holdsChecked = 0
  writes = 0
  committed = 0
  fenced = 0
  /** `acquire()` calls that ended in an error (a timeout during a restart, a blackhole). */
  acquireFailures = 0
  maxLatencyMs = 0
  readonly faults = Object.fromEntries(FAULT_KINDS.map((kind) => [kind, 0])) as Record<FaultKind, number>
  readonly violations = Object.fromEntries(VIOLATION_KINDS.map((kind) => [kind, 0])) as Record<
    ViolationKind,
    number
  >
  /** The first violations, described, with the seed of their epoch. */
  readonly examples: string[] = []
  /** Failures of the harness itself (a worker that crashed, a controller that stopped leading). */
  readonly errors: string[] = []

  get elapsedMs(): number {
    return performance.now() - this.#start
  }

  get faultsTotal(): number {
    return Object.values(this.faults).reduce((a, b) => a + b, 0)
  }

  get violationsTotal(): number {
    return Object.values(this.violations).reduce((a, b) => a + b, 0)
  }

  fault(kind: FaultKind, count = 1): void {
    this.faults[kind] += count
  }

  /** Adds one epoch's check. */
  addEpoch(result: CheckResult, seed: number): void {
    this.epochs++
    this.holdsChecked += result.holds
    this.writes += result.writes
    this.committed += result.committed
    this.fenced += result.fenced
    for (const violation of result.violations) this.violations[violation.kind]++
    this.#examples(result.violations, seed)
  }

  timebaseViolation(description: string): void {
    this.violations.timebase++
    if (this.examples.length < MAX_EXAMPLES) this.examples.push(description)
  }

  #examples(violations: readonly Violation[], seed: number): void {
    const room = MAX_EXAMPLES - this.examples.length
    if (room <= 0 || violations.length === 0) return
    const lines = describeViolations(violations.slice(0, room)).split('\n')
    this.examples.push(...lines.map((line) => `${line} (epoch seed ${seed})`))
  }
}

export interface SoakReport {
  readonly partial: boolean
  /** Why the run stopped before its count, when it did. */
  readonly stoppedBecause: string | undefined
  readonly seed: number
  readonly startedAt: string
  readonly finishedAt: string
  readonly durationSeconds: number
  readonly targetAcquisitions: number
  /** Acquisitions reported by the workers, including those of an epoch cut short. */
  readonly acquisitions: number
  readonly holdsChecked: number
  readonly acquisitionsPerSecond: number
  readonly epochs: number
  readonly writes: number
  readonly committed: number
  readonly fenced: number
  readonly acquireFailures: number
  readonly faults: Readonly<Record<FaultKind, number>>
  readonly faultsTotal: number
  readonly violations: Readonly<Record<ViolationKind, number>>
  readonly violationsTotal: number
  /** Read–modify–writes that interleaved with another writer (`lost-update` and `race`). */
  readonly lostUpdates: number
  readonly maxReportLatencyMs: number
  readonly violationExamples: readonly string[]
  readonly errors: readonly string[]
  readonly options: SoakOptions
  readonly machine: {
    readonly cpus: number
    readonly cpuModel: string
    readonly memoryGiB: number
    readonly kernel: string
    readonly node: string
  }
}

export function buildReport(
  tally: Tally,
  options: SoakOptions,
  seed: number,
  acquisitions: number,
  stoppedBecause: string | undefined,
): SoakReport {
  const seconds = tally.elapsedMs / 1000
  return {
    partial: stoppedBecause !== undefined,
    stoppedBecause,
    seed,
    startedAt: tally.startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    durationSeconds: Math.round(seconds),
    targetAcquisitions: options.acquisitions,
    acquisitions,
    holdsChecked: tally.holdsChecked,
    acquisitionsPerSecond: Math.round((tally.holdsChecked / seconds) * 10) / 10,
    epochs: tally.epochs,
    writes: tally.writes,
    committed: tally.committed,
    fenced: tally.fenced,
    acquireFailures: tally.acquireFailures,
    faults: { ...tally.faults },
    faultsTotal: tally.faultsTotal,
    violations: { ...tally.violations },
    violationsTotal: tally.violationsTotal,
    lostUpdates: tally.violations['lost-update'] + tally.violations.race,
    maxReportLatencyMs: Math.round(tally.maxLatencyMs),
    violationExamples: tally.examples,
    errors: tally.errors,
    options,
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
      kernel: release(),
      node: process.version,
    },
  }
}

export function writeReport(path: string, report: SoakReport): void {
  writeFileSync(path, `${JSON.stringify(report, null, 2)}\n`)
}

/** The report as a two-column table. */
export function formatReport(report: SoakReport): string {
  const rows: [string, string][] = [
    ['result', report.partial ? `PARTIAL (${report.stoppedBecause})` : 'complete'],
    ['seed', `FAULTS_SEED=${report.seed}`],
    ['duration', `${report.durationSeconds} s`],
    ['acquisitions', `${report.acquisitions} (target ${report.targetAcquisitions})`],
    ['holds checked', `${report.holdsChecked} in ${report.epochs} epochs`],
    ['rate', `${report.acquisitionsPerSecond} checked acquisitions/s`],
    ['writes', `${report.writes} (${report.committed} committed, ${report.fenced} fenced)`],
    ['acquire failures', String(report.acquireFailures)],
    ...FAULT_KINDS.map((kind): [string, string] => [`fault: ${kind}`, String(report.faults[kind])]),
    ['faults total', String(report.faultsTotal)],
    ...VIOLATION_KINDS.map((kind): [string, string] => [
      `violation: ${kind}`,
      String(report.violations[kind]),
    ]),
    ['violations total', String(report.violationsTotal)],
    ['lost updates', String(report.lostUpdates)],
    ['harness errors', String(report.errors.length)],
    ['machine', `${report.machine.cpus} × ${report.machine.cpuModel}, ${report.machine.memoryGiB} GiB`],
  ]
  const width = Math.max(...rows.map(([key]) => key.length))
  return rows.map(([key, value]) => `${key.padEnd(width)}  ${value}`).join('\n')
}

/** One progress line: acquisitions so far, rate, faults and violations so far. */
export function progressLine(tally: Tally, acquisitions: number, target: number): string {
  const seconds = tally.elapsedMs / 1000
  const minutes = Math.floor(seconds / 60)
  const clock = `${minutes}:${String(Math.floor(seconds % 60)).padStart(2, '0')}`
  const rate = acquisitions / Math.max(seconds, 1)
  const faults = FAULT_KINDS.filter((kind) => tally.faults[kind] > 0)
    .map((kind) => `${kind} ${tally.faults[kind]}`)
    .join(', ')
  return (
    `[${clock}] acquisitions ${acquisitions}/${target} (${rate.toFixed(1)}/s, ${tally.holdsChecked} checked in ` +
    `${tally.epochs} epochs) faults ${tally.faultsTotal}${faults ? ` (${faults})` : ''} violations ${tally.violationsTotal}`
  )
}
