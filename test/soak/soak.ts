import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ControllerProcess, namespacedArgs } from '../../controller/testing/controller-process.ts'
import { ControlPlane } from '../../dev/cluster/index.ts'
import { expectControllerLeading } from '../faults/controller-health.ts'
import { FaultRun, type Received, type Worker, type WorkerDefaults } from '../faults/coordinator.ts'
import type { WorkerConfig } from '../faults/protocol.ts'
import { deriveSeed } from '../faults/random.ts'
import { TcpProxy } from '../faults/tcp-proxy.ts'
import { overlapToleranceMs, TIMEBASE } from '../faults/timebase.ts'
import { FaultSchedule, type FaultTargets } from './faults.ts'
import type { SoakOptions } from './options.ts'
import { progressLine, type Tally } from './report.ts'

const NAMESPACE = 'soak'
const MINUTES_5 = 5 * 60_000

/**
 * The clocks of the worker slots, as in faults-clock: wall clocks ±5 minutes off (they only fill
 * `renewTime`), monotonic clocks 2 % fast or slow (within the margin the SDK keeps at these `expires`).
 */
const CLOCKS: readonly Pick<WorkerConfig, 'wallSkewMs' | 'clockRate'>[] = [
  {},
  { wallSkewMs: MINUTES_5 },
  { wallSkewMs: -MINUTES_5, clockRate: 1.02 },
  { wallSkewMs: MINUTES_5, clockRate: 0.98 },
  {},
  { wallSkewMs: -MINUTES_5 },
  { wallSkewMs: -MINUTES_5, clockRate: 0.98 },
  { wallSkewMs: MINUTES_5, clockRate: 1.02 },
]

/** One in this many worker slots reaches the API server through the proxy. */
const PROXIED_EVERY = 4

/** A fault run of the suite that also counts acquisitions as they are reported. */
class SoakRun extends FaultRun {
  acquired = 0
  failed = 0

  override onReport(worker: Worker, received: Received): void {
    super.onReport(worker, received)
    if (received.report.type === 'acquired') this.acquired++
    else if (received.report.type === 'failed') this.failed++
  }
}

export interface SoakOutcome {
  readonly acquisitions: number
  /** Why it stopped before the count; `undefined` when it reached it. */
  readonly stoppedBecause: string | undefined
}

/**
 * The soak: one control plane (etcd with fsync), one controller and one proxy for the whole run, and a
 * sequence of epochs. Each epoch is a fault run of the suite with its own workers and fenced resources,
 * under random faults until it has its share of acquisitions; then the faults are undone, the workers
 * finish their holds and exit, and the checker judges the epoch's whole history.
 */
export class Soak {
  readonly #options: SoakOptions
  readonly #seed: number
  readonly #tally: Tally
  readonly #log: (line: string) => void
  #plane: ControlPlane | undefined
  #controller: ControllerProcess | undefined
  #proxy: TcpProxy | undefined
  #dir: string | undefined
  #run: SoakRun | undefined
  /** Acquisitions of the finished epochs. */
  #acquired = 0

  constructor(options: SoakOptions, seed: number, tally: Tally, log: (line: string) => void) {
    this.#options = options
    this.#seed = seed
    this.#tally = tally
    this.#log = log
  }

  /** Acquisitions reported so far, the current epoch's included. */
  get acquisitions(): number {
    return this.#acquired + (this.#run?.acquired ?? 0)
  }

  async run(signal: AbortSignal): Promise<SoakOutcome> {
    const options = this.#options
    const deadline = performance.now() + options.maxMinutes * 60_000
    const env = await this.#start()
    const schedule = new FaultSchedule(options.restartEvery)
    const progress = setInterval(
      () => this.#log(progressLine(this.#tally, this.acquisitions, options.acquisitions)),
      options.progressEvery * 1000,
    )
    try {
      for (let epoch = 0; this.#tally.holdsChecked < options.acquisitions; epoch++) {
        if (signal.aborted) return this.#outcome('interrupted')
        if (performance.now() >= deadline) return this.#outcome(`time limit of ${options.maxMinutes} min`)
        const share = Math.min(options.epoch, options.acquisitions - this.#tally.holdsChecked)
        await this.#epoch(epoch, share, env, schedule, signal, deadline)
      }
      return this.#outcome(undefined)
    } finally {
      clearInterval(progress)
    }
  }

  #outcome(stoppedBecause: string | undefined): SoakOutcome {
    return { acquisitions: this.acquisitions, stoppedBecause }
  }

  async #start(): Promise<{ kubeconfig: string; proxied: string }> {
    this.#log('starting etcd (fsync) and kube-apiserver')
    const plane = await ControlPlane.start({ fsync: true })
    this.#plane = plane
    const created = await plane.request('POST', '/api/v1/namespaces', { metadata: { name: NAMESPACE } })
    if (created.status !== 201) throw new Error(`cannot create namespace ${NAMESPACE}: ${created.body}`)
    const server = new URL(plane.server)
    const proxy = await TcpProxy.start({ host: server.hostname, port: Number(server.port) })
    this.#proxy = proxy
    this.#dir = mkdtempSync(join(tmpdir(), 'kube-locks-soak-'))
    const proxied = proxy.kubeconfigFor(plane.kubeconfigPath, join(this.#dir, 'kubeconfig'))
    this.#controller = new ControllerProcess(
      `soak-${NAMESPACE}`,
      namespacedArgs(plane.kubeconfigPath, NAMESPACE, '--grace', '1', '--retention', '2'),
    )
    await expectControllerLeading(this.#controller)
    this.#log(`control plane at ${plane.server}; controller leading; timebase error ${TIMEBASE.errorMs} ms`)
    return { kubeconfig: plane.kubeconfigPath, proxied }
  }

  async #epoch(
    epoch: number,
    share: number,
    env: { kubeconfig: string; proxied: string },
    schedule: FaultSchedule,
    signal: AbortSignal,
    deadline: number,
  ): Promise<void> {
    const options = this.#options
    const plane = this.#plane as ControlPlane
    const controller = this.#controller as ControllerProcess
    const proxy = this.#proxy as TcpProxy
    const tally = this.#tally
    const seed = deriveSeed(this.#seed, `epoch-${epoch}`)
    const defaults: WorkerDefaults = {
      kubeconfig: env.kubeconfig,
      namespace: NAMESPACE,
      retryInterval: 0.2,
      requestTimeout: 5,
    }
    const run = new SoakRun(defaults, seed, () => {})
    this.#run = run
    const locks = Array.from({ length: options.locks }, (_, i) => `soak-${i}`)
    run.resources(locks)
    const plan = {
      locks,
      acquire: { expires: options.expires, timeout: 20 },
      pauseMs: options.holdMs,
      rounds: Number.MAX_SAFE_INTEGER,
    }
    const generation = new Map<number, number>()
    const slotOf = new Map<Worker, number>()
    const live: Worker[] = []
    const spawn = async (slot: number): Promise<void> => {
      const gen = (generation.get(slot) ?? -1) + 1
      generation.set(slot, gen)
      const viaProxy = slot % PROXIED_EVERY === 0
      const clock = CLOCKS[slot % CLOCKS.length] ?? {}
      const id = `e${epoch}-w${slot}.${gen}${viaProxy ? '-proxied' : ''}`
      try {
        const worker = await run.spawn(id, {
          ...clock,
          contend: plan,
          ...(viaProxy ? { kubeconfig: env.proxied } : {}),
        })
        slotOf.set(worker, slot)
        live.push(worker)
        if (clock.wallSkewMs !== undefined || clock.clockRate !== undefined) tally.fault('clock-skew')
      } catch (error) {
        tally.errors.push(`worker ${id} did not start: ${String(error)}`)
      }
    }
    await Promise.all(Array.from({ length: options.workers }, (_, slot) => spawn(slot)))
    // Replacements start in the background: the faults keep coming while they load.
    const starting: Promise<void>[] = []
    const targets: FaultTargets = {
      plane,
      controller,
      proxy,
      live,
      random: run.random,
      signal,
      count: (kind) => {
        tally.fault(kind)
        run.fault()
      },
      replace: async (victim) => {
        live.splice(live.indexOf(victim), 1)
        starting.push(spawn(slotOf.get(victim) ?? 0))
      },
    }
    const done = () => run.acquired >= share || signal.aborted || performance.now() >= deadline
    // A fault that fails (the API server not ready again in time) ends the soak, but the epoch's history
    // is still judged first.
    let failure: unknown
    try {
      while (!done()) {
        if (live.length === 0 && starting.length === 0) throw new Error('no worker is running')
        await schedule.next(targets)
      }
    } catch (error) {
      failure = error
    } finally {
      proxy.mode = 'pass'
    }
    await Promise.all(starting)
    if (signal.aborted || failure !== undefined) {
      // No waiting for holds to finish: a killed holder's hold ends at its exit.
      await Promise.all([...run.workers.values()].map((w) => w.kill()))
    } else {
      await Promise.all(
        live.map((w) =>
          w.stop(90_000).catch((error: unknown) => {
            tally.errors.push(`worker ${w.id} did not finish cleanly: ${String(error).slice(0, 2_000)}`)
          }),
        ),
      )
      await expectControllerLeading(controller).catch((error: unknown) => {
        tally.errors.push(`after epoch ${epoch}: ${String(error).slice(0, 2_000)}`)
      })
    }
    // A worker that never became ready is still there; after this nothing of the epoch can change.
    await Promise.all([...run.workers.values()].map((w) => w.kill()))
    const result = run.check()
    tally.addEpoch(result, seed)
    tally.acquireFailures += run.failed
    tally.maxLatencyMs = Math.max(tally.maxLatencyMs, run.maxLatencyMs)
    if (run.minLatencyMs < -overlapToleranceMs()) {
      tally.timebaseViolation(
        `epoch ${epoch}: a report arrived ${-run.minLatencyMs} ms before it was sent (epoch seed ${seed})`,
      )
    }
    this.#acquired += run.acquired
    this.#run = undefined
    await run.close()
    this.#log(
      `epoch ${epoch}: ${result.holds} holds checked, ${result.committed} writes committed, ` +
        `${result.violations.length} violations`,
    )
    if (failure !== undefined) throw failure
  }

  /** Kills every process it started and removes its files; safe to call at any point, more than once. */
  async close(): Promise<void> {
    const steps: (() => Promise<unknown> | undefined)[] = [
      () => this.#run?.close(),
      () => {
        this.#controller?.child.kill('SIGCONT')
        return this.#controller?.stop('SIGTERM', 10_000)
      },
      () => this.#proxy?.close(),
      () => this.#plane?.stop(),
    ]
    for (const step of steps) {
      try {
        await step()
      } catch (error) {
        this.#log(`cleanup: ${String(error)}`)
      }
    }
    this.#run = undefined
    this.#controller = undefined
    this.#proxy = undefined
    this.#plane = undefined
    if (this.#dir) rmSync(this.#dir, { recursive: true, force: true })
    this.#dir = undefined
  }

  /** Last resort on a hard exit: SIGKILLs the workers and the controller (the servers die with us). */
  killNow(): void {
    for (const worker of this.#run?.workers.values() ?? []) {
      if (!worker.alive) continue
      worker.child.kill('SIGCONT')
      worker.child.kill('SIGKILL')
    }
    if (this.#controller?.alive) {
      this.#controller.child.kill('SIGCONT')
      this.#controller.child.kill('SIGKILL')
    }
  }
}
