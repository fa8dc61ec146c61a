import type { ChildProcess } from 'node:child_process'
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { onTestFailed } from 'vitest'
import { Child, type Exit } from '../../dev/child-process.ts'
import { leaseNameFor } from '../../sdk/internal.ts'
import { type CheckResult, checkHistory, describeViolations } from './checker.ts'
import { initResource, readResource } from './fenced-resource.ts'
import type { History, Hold, Write } from './history.ts'
import { type HoldRecord, judgeHold } from './holds.ts'
import { type CreateRecord, judgeOrder, type OrderResult } from './order.ts'
import type { Command, Report, WorkerConfig } from './protocol.ts'
import { createRandom, deriveSeed, faultsSeed } from './random.ts'
import { overlapToleranceMs, TIMEBASE, toLocal } from './timebase.ts'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const WORKER = 'test/e2e/fixtures/faults-worker.ts'

/** The full run (`npm run test:faults`) scales counts and durations up. */
export const FULL = process.env.FAULTS_FULL === '1'

/** `reduced` in the default run, `full` under `FAULTS_FULL=1`. */
export function scaled<T>(reduced: T, full: T): T {
  return FULL ? full : reduced
}

export interface Received {
  readonly report: Report
  /** Coordinator `performance.now()` at receipt. */
  readonly at: number
  /** Receipt minus the worker's send time, both on the host's monotonic clock. */
  readonly latencyMs: number
}

export type WorkerDefaults = Omit<WorkerConfig, 'id' | 'resourceRoot' | 'seed'>

/**
 * One fault run: worker processes, the fenced resource they write to, and the history of what they
 * reported, stamped on this process's monotonic clock.
 */
export class FaultRun {
  readonly resourceRoot: string
  readonly workers = new Map<string, Worker>()
  readonly #holds: HoldRecord[] = []
  /**
   * Send time of the last write that may have applied, per holder and lock lease (it precedes the
   * `acquired` report). Only writes of a hold's own lock lease count, or for a shared or semaphore hold
   * of its holder records (keyed by the lease they hold): a fair waiter also writes its ticket, a lease
   * of its own naming the same holder.
   */
  readonly #anchors = new Map<string, number>()
  /** The creates each holder identity sent (its tickets, and the lock's lease if it created it). */
  readonly #creates = new Map<string, CreateRecord[]>()
  readonly #writes: Write[] = []
  readonly #locks = new Set<string>()
  /** Writes begun (read reported) and not yet reported written, per worker and lock. */
  readonly #pendingWrites = new Map<string, string>()
  readonly #unresolved = new Map<string, number>()
  faults = 0
  /** Largest and smallest receipt − send time of a report (the smallest must not be negative). */
  maxLatencyMs = 0
  minLatencyMs = Number.POSITIVE_INFINITY

  readonly defaults: WorkerDefaults
  /** Seed of every random choice of the run (`FAULTS_SEED` replays it); printed when the test fails. */
  readonly seed: number
  /** The coordinator's own random choices (which fault next, how long). */
  readonly random: () => number

  /**
   * @param onFailed registers what to print when the run fails; vitest's `onTestFailed` by default, so a
   * program outside a test (the soak runner) passes its own.
   */
  constructor(
    defaults: WorkerDefaults,
    seed = faultsSeed(),
    onFailed: (listener: () => void) => void = onTestFailed,
  ) {
    this.defaults = defaults
    this.seed = seed
    this.random = createRandom(deriveSeed(seed, 'coordinator'))
    this.resourceRoot = mkdtempSync(join(tmpdir(), 'kube-locks-faults-'))
    onFailed(() => {
      console.error(`fault run seed: FAULTS_SEED=${seed} replays its random choices`)
    })
  }

  /** Creates the resource of each lock (before any worker writes to it). */
  resources(locks: readonly string[]): void {
    for (const lock of locks) {
      initResource(this.resourceRoot, lock)
      this.#locks.add(lock)
    }
  }

  /** Starts a worker; waits until it is ready to take commands. */
  async spawn(id: string, overrides: Partial<WorkerDefaults> = {}): Promise<Worker> {
    const config: WorkerConfig = {
      ...this.defaults,
      ...overrides,
      id,
      resourceRoot: this.resourceRoot,
      seed: deriveSeed(this.seed, id),
    }
    for (const lock of config.contend?.locks ?? []) this.resources([lock])
    const worker = new Worker(this, config)
    this.workers.set(id, worker)
    await worker.next('ready', () => true, 180_000)
    return worker
  }

  /** Counts a fault injected by the test (kills, pauses, network faults, restarts). */
  fault(count = 1): void {
    this.faults += count
  }

  onReport(worker: Worker, received: Received): void {
    const { report } = received
    if (worker.stoppedSince === undefined) this.maxLatencyMs = Math.max(this.maxLatencyMs, received.latencyMs)
    this.minLatencyMs = Math.min(this.minLatencyMs, received.latencyMs)
    const key = (lock: string) => `${worker.id}\u0000${lock}`
    switch (report.type) {
      case 'store-write': {
        const { holder, name } = report
        if (holder === undefined || report.outcome === 'refused') break
        const sent = toLocal(report.writeSent)
        if (report.op === 'create') {
          const creates = this.#creates.get(holder) ?? []
          creates.push({
            holder,
            name,
            sentAt: sent,
            outcome: report.outcome,
            resourceVersion: report.resourceVersion,
          })
          this.#creates.set(holder, creates)
        }
        const lease = report.holds ?? name
        const anchor = anchorKey(holder, lease)
        this.#anchors.set(anchor, Math.max(this.#anchors.get(anchor) ?? sent, sent))
        for (const hold of this.#holds) {
          if (hold.holder === holder && hold.worker === worker.id && leaseNameFor(hold.lock) === lease) {
            hold.anchor = this.#anchors.get(anchor)
          }
        }
        break
      }
      case 'acquired':
        this.#holds.push({
          lock: report.lock,
          mode: report.mode,
          worker: worker.id,
          holder: report.holder,
          token: report.token,
          start: toLocal(report.sent),
          validForMs: report.validForMs,
          anchor: this.#anchors.get(anchorKey(report.holder, leaseNameFor(report.lock))),
          probe: undefined,
          signalAt: undefined,
          signalReason: undefined,
          exitedAt: undefined,
        })
        break
      case 'probe': {
        const hold = this.#find(worker.id, report.lock, report.token)
        if (hold) hold.probe = { due: toLocal(report.due), at: toLocal(report.sent) }
        break
      }
      case 'aborted': {
        const hold = this.#find(worker.id, report.lock, report.token)
        if (hold && hold.signalAt === undefined) {
          hold.signalAt = toLocal(report.sent)
          hold.signalReason = report.error.reason ?? report.error.name
        }
        break
      }
      case 'read':
        this.#pendingWrites.set(key(report.lock), report.token)
        break
      case 'write':
        this.#pendingWrites.delete(key(report.lock))
        this.#writes.push({
          lock: report.lock,
          worker: worker.id,
          token: report.token,
          readVersion: report.readVersion,
          readCounter: report.readCounter,
          outcome: report.outcome,
          late: report.late,
          checkedAt: toLocal(report.checkedAt),
        })
        break
      case 'skipped':
        this.#pendingWrites.delete(key(report.lock))
        break
    }
  }

  onExit(worker: Worker, at: number): void {
    for (const hold of this.#holds) {
      if (hold.worker === worker.id && hold.signalAt === undefined && hold.exitedAt === undefined) {
        hold.exitedAt = at
      }
    }
    for (const key of [...this.#pendingWrites.keys()]) {
      const [id, lock] = key.split('\u0000') as [string, string]
      if (id !== worker.id) continue
      this.#pendingWrites.delete(key)
      this.#unresolved.set(lock, (this.#unresolved.get(lock) ?? 0) + 1)
    }
  }

  #find(worker: string, lock: string, token: string): HoldRecord | undefined {
    return this.#holds.find((h) => h.worker === worker && h.lock === lock && h.token === token)
  }

  /** The holds reported so far (open ones have no end). */
  holds(): readonly Hold[] {
    return this.#holds.map((hold) => this.#effective(hold))
  }

  writes(): readonly Write[] {
    return this.#writes
  }

  #effective(hold: HoldRecord): Hold {
    return judgeHold(hold, this.workers.get(hold.worker)?.pauses ?? [], performance.now())
  }

  history(): History {
    const counters: Record<string, number> = {}
    for (const lock of this.#locks) counters[lock] = readResource(this.resourceRoot, lock).counter
    return {
      holds: this.holds(),
      writes: this.#writes,
      counters,
      unresolvedWrites: Object.fromEntries(this.#unresolved),
    }
  }

  /** How the acquisitions so far were served against the order of their tickets (fair locks). */
  order(): OrderResult {
    return judgeOrder(this.#holds, (holder) => this.#creates.get(holder) ?? [])
  }

  /** Judges the history so far, with the overlap tolerance derived from the measured timebase error. */
  check(): CheckResult {
    return checkHistory(this.history(), { toleranceMs: overlapToleranceMs(), now: performance.now() })
  }

  /** Checks the history and fails with every violation; records the counts for the summary. */
  assertSafe(name: string): CheckResult & { readonly order: OrderResult } {
    const result = this.check()
    const order = this.order()
    recordSummary({
      test: name,
      acquisitions: result.holds,
      queued: order.queued,
      inversions: order.inversions,
      overtaken: order.overtaken,
      unplaced: order.unplaced,
      writes: result.writes,
      committed: result.committed,
      fenced: result.fenced,
      faults: this.faults,
      violations: result.violations.length,
      maxLatencyMs: Math.round(this.maxLatencyMs),
      minLatencyMs: Math.round(this.minLatencyMs * 1000) / 1000,
      timebaseErrorMs: TIMEBASE.errorMs,
      seed: this.seed,
    })
    // The history puts worker times on this process's clock through the shared monotonic clock; a
    // report received before it was sent would show that conversion is off by more than measured.
    if (this.minLatencyMs < -overlapToleranceMs()) {
      throw new Error(
        `a report arrived ${-this.minLatencyMs} ms before it was sent: the timebases disagree by more than the measured ${TIMEBASE.errorMs} ms (FAULTS_SEED=${this.seed})`,
      )
    }
    if (result.violations.length > 0) {
      throw new Error(
        `${result.violations.length} safety violations (FAULTS_SEED=${this.seed}):\n${describeViolations(result.violations)}`,
      )
    }
    return { ...result, order }
  }

  /**
   * Fails unless every acquisition that waited in line was served in the order of its ticket: for runs
   * without faults, where no waiter loses its place.
   */
  assertInOrder(): OrderResult {
    const order = this.order()
    if (order.inversions > 0 || order.unplaced > 0) {
      throw new Error(
        `${order.inversions} order inversions among ${order.queued} waits in line, ${order.unplaced} of unknown place (FAULTS_SEED=${this.seed}):\n${order.examples.join('\n')}`,
      )
    }
    return order
  }

  /** Kills every worker (continuing paused ones first) and removes the resource files. */
  async close(): Promise<void> {
    await Promise.all([...this.workers.values()].map((worker) => worker.kill()))
    rmSync(this.resourceRoot, { recursive: true, force: true })
  }
}

/** A worker process and the reports it sent. */
export class Worker {
  readonly id: string
  readonly config: WorkerConfig
  readonly child: ChildProcess
  readonly received: Received[] = []
  readonly exited: Promise<Exit>
  stoppedSince: number | undefined
  /** SIGSTOP and SIGCONT times on the coordinator's clock; the last one open while stopped. */
  readonly pauses: [number, number | undefined][] = []
  readonly #process: Child
  #pings = 0
  #waiters = new Set<() => void>()

  constructor(run: FaultRun, config: WorkerConfig) {
    this.id = config.id
    this.config = config
    this.#process = new Child(config.id, process.execPath, [WORKER, JSON.stringify(config)], {
      cwd: ROOT,
      // A compile cache shared by all workers: loading the SDK's dependencies dominates start-up.
      env: { ...process.env, NODE_COMPILE_CACHE: join(tmpdir(), 'kube-locks-faults-compile-cache') },
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
      onExit: () => {
        run.onExit(this, performance.now())
        this.#wake()
      },
    })
    this.child = this.#process.process
    this.child.on('message', (message) => {
      const at = performance.now()
      const report = message as Report
      const received: Received = { report, at, latencyMs: at - toLocal(report.sent) }
      this.received.push(received)
      run.onReport(this, received)
      this.#wake()
    })
    this.exited = this.#process.exited
  }

  /** What the worker wrote on stderr. */
  get stderr(): string {
    return this.#process.stderr
  }

  get alive(): boolean {
    return this.#process.alive
  }

  send(command: Command): void {
    if (!this.alive || !this.child.connected) throw new Error(`${this.id} is not running`)
    this.child.send(command)
  }

  /**
   * The first report of `type` matching `where`, received at or after index `from`; waits for it until
   * `timeoutMs`, failing early when the worker exits.
   */
  async next<T extends Report['type']>(
    type: T,
    where: (report: Extract<Report, { type: T }>) => boolean = () => true,
    timeoutMs = 30_000,
    from = 0,
  ): Promise<Received & { report: Extract<Report, { type: T }> }> {
    const deadline = performance.now() + timeoutMs
    for (;;) {
      const found = this.received
        .slice(from)
        .find((r) => r.report.type === type && where(r.report as Extract<Report, { type: T }>))
      if (found) return found as Received & { report: Extract<Report, { type: T }> }
      if (!this.alive) throw new Error(`${this.id} exited before reporting ${type}\n${this.stderr}`)
      const left = deadline - performance.now()
      if (left <= 0) {
        throw new Error(
          `timed out after ${timeoutMs} ms waiting for ${this.id} to report ${type}; it reported:\n` +
            this.received.map((r) => JSON.stringify(r.report)).join('\n') +
            `\n${this.stderr}`,
        )
      }
      await new Promise<void>((resolveWait) => {
        const timer = setTimeout(done, left)
        function done() {
          clearTimeout(timer)
          resolveWait()
        }
        this.#waiters.add(done)
      })
    }
  }

  #wake(): void {
    const waiters = [...this.#waiters]
    this.#waiters.clear()
    for (const wake of waiters) wake()
  }

  pause(): void {
    // Stamped before the signal: the process stops no earlier than this.
    this.stoppedSince = performance.now()
    this.pauses.push([this.stoppedSince, undefined])
    this.child.kill('SIGSTOP')
  }

  resume(): void {
    this.child.kill('SIGCONT')
    const last = this.pauses.at(-1)
    if (last && last[1] === undefined) last[1] = performance.now()
    this.stoppedSince = undefined
  }

  /** SIGKILL (after SIGCONT, so a paused process dies at once); resolves when it has exited. */
  async kill(): Promise<void> {
    if (!this.alive) return
    this.child.kill('SIGCONT')
    this.child.kill('SIGKILL')
    await this.exited
  }

  /**
   * Resolves once every timer of the worker that was due when this was called has run, and every
   * create or update its store sent until then has settled (been answered or given up on), and reported.
   */
  async settle(timeoutMs = 30_000): Promise<void> {
    const deadline = performance.now() + timeoutMs
    for (;;) {
      const id = ++this.#pings
      const from = this.received.length
      this.send({ type: 'ping', id })
      const pong = await this.next(
        'pong',
        (p) => p.id === id,
        Math.max(1, deadline - performance.now()),
        from,
      )
      if (pong.report.inFlight === 0) return
      if (performance.now() >= deadline) {
        throw new Error(`${this.id} still had ${pong.report.inFlight} writes in flight after ${timeoutMs} ms`)
      }
      await new Promise((resolveWait) => setTimeout(resolveWait, 20))
    }
  }

  /** Asks the worker to finish and waits for it to exit. */
  async stop(timeoutMs = 60_000): Promise<void> {
    if (!this.alive) return
    if (this.child.connected) this.child.send({ type: 'stop' } satisfies Command)
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs)
    try {
      const exit = await this.exited
      if (exit.code !== 0)
        throw new Error(`${this.id} exited with ${exit.code ?? exit.signal}\n${this.stderr}`)
    } finally {
      clearTimeout(timer)
    }
  }
}

function anchorKey(holder: string, leaseName: string): string {
  return `${holder}\u0000${leaseName}`
}

/**
 * Appends one line per checked run to `FAULTS_SUMMARY` (default: a file in the temp directory), so a
 * whole suite's counts can be totalled.
 */
export function recordSummary(entry: Record<string, unknown>): void {
  const file = process.env.FAULTS_SUMMARY ?? join(tmpdir(), 'kube-locks-faults-summary.jsonl')
  appendFileSync(file, `${JSON.stringify({ at: new Date().toISOString(), full: FULL, ...entry })}\n`)
}
