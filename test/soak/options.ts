import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'

/** What one soak run does. Every field has its default in `DEFAULTS` and a flag of the same name. */
export interface SoakOptions {
  /** Stop once this many acquisitions have been checked. */
  readonly acquisitions: number
  /** Worker processes contending at once (killed ones are replaced). */
  readonly workers: number
  /** Locks they contend on. */
  readonly locks: number
  /**
   * Acquisitions per checked epoch: each epoch is one fault run of the suite (its own workers and fenced
   * resources), wound down and judged by the checker before the next starts, so that the checker's
   * history stays small. The last epoch is shorter.
   */
  readonly epoch: number
  /** The lease duration the workers ask for, in seconds. */
  readonly expires: number
  /** Least and most time a holder works between its read and its write, in ms. */
  readonly holdMs: readonly [number, number]
  /** Least time between two restarts of the control plane, in seconds. */
  readonly restartEvery: number
  /** Stop with a partial report after this many minutes, whatever the count. */
  readonly maxMinutes: number
  /** Seconds between progress lines. */
  readonly progressEvery: number
  /** Where the JSON report goes. */
  readonly report: string
}

export const DEFAULTS: SoakOptions = Object.freeze({
  acquisitions: 100_000,
  workers: 8,
  locks: 12,
  epoch: 5_000,
  expires: 2,
  holdMs: Object.freeze([1, 5] as const),
  restartEvery: 150,
  maxMinutes: 60,
  progressEvery: 5,
  report: join(tmpdir(), 'kube-locks-soak-report.json'),
})

export const USAGE = `Usage: npm run test:soak -- [options]

Runs the fault suite's workers and checker against a local etcd and kube-apiserver with every fault
of the suite, until enough acquisitions have been checked. FAULTS_SEED replays a run's random choices.

  --acquisitions N   acquisitions to check (default ${DEFAULTS.acquisitions})
  --workers N        worker processes (default ${DEFAULTS.workers})
  --locks N          locks they contend on (default ${DEFAULTS.locks})
  --epoch N          acquisitions per checked epoch (default ${DEFAULTS.epoch})
  --expires S        lease duration in seconds (default ${DEFAULTS.expires})
  --hold-ms MIN,MAX  work between read and write, in ms (default ${DEFAULTS.holdMs.join(',')})
  --restart-every S  least seconds between control-plane restarts (default ${DEFAULTS.restartEvery})
  --max-minutes M    stop with a partial report after M minutes (default ${DEFAULTS.maxMinutes})
  --progress-every S seconds between progress lines (default ${DEFAULTS.progressEvery})
  --report PATH      JSON report (default ${DEFAULTS.report})
`

export class UsageError extends Error {
  override readonly name = 'UsageError'
}

/** Parses the command line over `DEFAULTS`; throws `UsageError` with the offending flag. */
export function parseSoakOptions(argv: readonly string[]): SoakOptions | 'help' {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    options: {
      acquisitions: { type: 'string' },
      workers: { type: 'string' },
      locks: { type: 'string' },
      epoch: { type: 'string' },
      expires: { type: 'string' },
      'hold-ms': { type: 'string' },
      'restart-every': { type: 'string' },
      'max-minutes': { type: 'string' },
      'progress-every': { type: 'string' },
      report: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) return 'help'
  const holdMs = values['hold-ms'] === undefined ? DEFAULTS.holdMs : parseRange(values['hold-ms'])
  return {
    acquisitions: integer('acquisitions', values.acquisitions, DEFAULTS.acquisitions, 1),
    workers: integer('workers', values.workers, DEFAULTS.workers, 2),
    locks: integer('locks', values.locks, DEFAULTS.locks, 1),
    epoch: integer('epoch', values.epoch, DEFAULTS.epoch, 1),
    expires: number('expires', values.expires, DEFAULTS.expires, 1),
    holdMs,
    restartEvery: number('restart-every', values['restart-every'], DEFAULTS.restartEvery, 5),
    maxMinutes: number('max-minutes', values['max-minutes'], DEFAULTS.maxMinutes, 0.1),
    progressEvery: number('progress-every', values['progress-every'], DEFAULTS.progressEvery, 0.5),
    report: values.report ?? DEFAULTS.report,
  }
}

function number(flag: string, text: string | undefined, fallback: number, min: number): number {
  if (text === undefined) return fallback
  const value = Number(text)
  if (text.trim() === '' || !Number.isFinite(value) || value < min) {
    throw new UsageError(`Expected \`--${flag}\` to be a number >= ${min}, got \`${text}\``)
  }
  return value
}

function integer(flag: string, text: string | undefined, fallback: number, min: number): number {
  const value = number(flag, text, fallback, min)
  if (!Number.isInteger(value)) {
    throw new UsageError(`Expected \`--${flag}\` to be an integer >= ${min}, got \`${text}\``)
  }
  return value
}

function parseRange(text: string): readonly [number, number] {
  const parts = text.split(',').map((part) => Number(part))
  const [min, max] = parts
  if (parts.length !== 2 || min === undefined || max === undefined || !(min >= 0) || !(max >= min)) {
    throw new UsageError(`Expected \`--hold-ms\` to be MIN,MAX with 0 <= MIN <= MAX, got \`${text}\``)
  }
  return [min, max]
}
