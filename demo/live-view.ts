/** The live view: the demo's locks and their holders, the counters, and what the controller did. */
import { cell, renderTable } from '../cli/rows.ts'
import {
  describeMode,
  holderRecordLock,
  type LeaseRecord,
  LOCK_NAME_ANNOTATION,
  modeOf,
  SERVICE_ANNOTATION,
} from '../sdk/internal.ts'
import { ELECTION_LOCK, holderName } from './processes.ts'
import { monotonicMs } from './protocol.ts'
import type { Tagged } from './timeline.ts'

export interface LiveState {
  readonly namespace: string
  readonly startedAt: number
  readonly durationMs: number
  readonly reports: readonly Tagged[]
  readonly leases: readonly LeaseRecord[] | undefined
  readonly leaseError: string | undefined
  readonly controllerLines: readonly string[]
}

function heldFor(lease: LeaseRecord, wallNow: number): { text: string; overdue: boolean } {
  const since = lease.renewTime ?? lease.acquireTime
  if (since === undefined) return { text: '', overdue: false }
  const seconds = (wallNow - Date.parse(since)) / 1000
  const overdue = lease.leaseDurationSeconds !== undefined && seconds > lease.leaseDurationSeconds
  return { text: `${Math.max(0, seconds).toFixed(1)} s`, overdue }
}

function counters(reports: readonly Tagged[]): string {
  let acquisitions = 0
  let timeouts = 0
  let expirations = 0
  for (const { report } of reports) {
    if (report.type === 'acquired') acquisitions++
    else if (report.type === 'timeout') timeouts++
    else if (report.type === 'ended' && report.how === 'expired') expirations++
  }
  return `acquisitions ${acquisitions} · timeouts ${timeouts} · expirations ${expirations}`
}

function lockOf(lease: LeaseRecord): string {
  return lease.annotations[LOCK_NAME_ANNOTATION] ?? lease.name
}

/** Lines of text, no terminal control: the table (`wide`) or one line for a log. */
export function liveLines(state: LiveState, wide: boolean): string[] {
  const elapsed = Math.min(state.durationMs, monotonicMs() - state.startedAt) / 1000
  const head = `kube-locks demo · namespace ${state.namespace} · ${elapsed.toFixed(0)} s of ${state.durationMs / 1000} s · ${counters(state.reports)}`
  // A semaphore's or shared lock's holders have records of their own: the lock's lease, free while
  // they hold, is shown only when none of them does, and a record only while it names its holder.
  const withHolders = new Set(
    (state.leases ?? []).flatMap((lease) => (lease.holderIdentity ? (holderRecordLock(lease) ?? []) : [])),
  )
  const locks = (state.leases ?? [])
    .filter((lease) => lease.annotations[LOCK_NAME_ANNOTATION] !== ELECTION_LOCK)
    .filter((lease) =>
      holderRecordLock(lease) === undefined
        ? lease.holderIdentity || !withHolders.has(lease.name)
        : lease.holderIdentity,
    )
    .sort((a, b) => lockOf(a).localeCompare(lockOf(b)))
  if (!wide) {
    const held = locks
      .filter((lease) => lease.holderIdentity)
      .map((lease) => `${cell(lockOf(lease))}=${holderName(lease)}`)
    return [`${head} · held: ${held.length === 0 ? 'none' : held.join(' ')}`]
  }
  const now = Date.now()
  const rows = locks.map((lease) => {
    const lock = cell(lockOf(lease))
    if (!lease.holderIdentity) return [lock, '-', '', 'free']
    const { text, overdue } = heldFor(lease, now)
    const service = lease.annotations[SERVICE_ANNOTATION] ?? ''
    const mode = holderRecordLock(lease) === undefined ? undefined : modeOf(lease.annotations)
    return [
      lock,
      `${cell(holderName(lease))} (${cell(service)})`,
      text,
      overdue
        ? 'past expires: the controller frees it'
        : mode === undefined
          ? 'held'
          : `held, ${describeMode(mode)}`,
    ]
  })
  const table = tableLines(['LOCK', 'HOLDER (SERVICE)', 'SINCE WRITE', 'STATE'], rows)
  return [
    head,
    '',
    ...table,
    ...(state.leaseError ? [`(cannot list leases: ${state.leaseError})`] : []),
    '',
    'controller:',
    ...(state.controllerLines.length === 0
      ? ['  (nothing yet)']
      : state.controllerLines.map((line) => `  ${line}`)),
  ]
}

/** The CLI's table, as lines. */
export function tableLines(headers: readonly string[], rows: readonly (readonly string[])[]): string[] {
  return renderTable(headers, rows)
    .text.split('\n')
    .slice(0, -1)
    .map((line) => line.trimEnd())
}

/** Redraws in place on a terminal; prints a plain line every few seconds otherwise. */
export class LiveView {
  readonly #out: NodeJS.WriteStream
  readonly #tty: boolean
  #lines = 0
  #lastPlain = -Infinity

  constructor(out: NodeJS.WriteStream) {
    this.#out = out
    this.#tty = out.isTTY === true
  }

  get intervalMs(): number {
    return this.#tty ? 500 : 1_000
  }

  draw(state: LiveState): void {
    if (this.#tty) {
      // Lines cut to the terminal's width (unknown in some pseudo-terminals: 0), so that none wraps
      // and the count of lines to redraw is exact.
      const width = Math.max(20, (this.#out.columns || 120) - 1)
      const lines = liveLines(state, true).map((line) =>
        line.length > width ? `${line.slice(0, width - 1)}…` : line,
      )
      const up = this.#lines > 0 ? `\x1b[${this.#lines}F` : ''
      this.#out.write(`${up}\x1b[J${lines.join('\n')}\n`)
      this.#lines = lines.length
    } else if (monotonicMs() - this.#lastPlain >= 5_000) {
      this.#lastPlain = monotonicMs()
      this.#out.write(`${liveLines(state, false).join('\n')}\n`)
    }
  }
}
