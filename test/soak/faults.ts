import type { ControllerProcess } from '../../controller/testing/controller-process.ts'
import type { ControlPlane } from '../../dev/cluster/index.ts'
import type { Worker } from '../faults/coordinator.ts'
import type { TcpProxy } from '../faults/tcp-proxy.ts'
import type { FaultKind } from './report.ts'
import { sleep } from './wait.ts'

/** What a fault may act on, for the length of one epoch. */
export interface FaultTargets {
  readonly plane: ControlPlane
  readonly controller: ControllerProcess
  /** In front of the API server for the proxied workers. */
  readonly proxy: TcpProxy
  /** Workers that are running and may be killed or paused. */
  readonly live: readonly Worker[]
  /** Takes a killed worker out of the epoch and starts its replacement in the background. */
  replace(victim: Worker): Promise<void>
  /** The epoch's seeded random numbers, in [0, 1). */
  readonly random: () => number
  count(kind: FaultKind): void
  readonly signal: AbortSignal
}

/**
 * The fault schedule: what comes next and for how long. Phases are short (a pause of at most 2.5 s, a
 * network fault of at most 2 s), so that the run spends most of its time acquiring; restarts of the
 * control plane come no more often than `restartEverySeconds`, alternating between the API server and
 * etcd.
 */
export class FaultSchedule {
  readonly #restartEveryMs: number
  #nextRestartAt: number
  #restarts = 0

  constructor(restartEverySeconds: number) {
    this.#restartEveryMs = restartEverySeconds * 1000
    this.#nextRestartAt = performance.now() + this.#restartEveryMs
  }

  /** Waits a moment, then injects one fault and undoes it (a pause continues, the proxy passes again). */
  async next(targets: FaultTargets): Promise<void> {
    const { random, signal } = targets
    await sleep(200 + random() * 600, signal)
    if (signal.aborted) return
    if (performance.now() >= this.#nextRestartAt) {
      await this.#restart(targets)
      this.#nextRestartAt = performance.now() + this.#restartEveryMs * (1 + 0.5 * random())
      return
    }
    // Kills are the dearest fault (a replacement takes about a CPU-second to load), so the rarest.
    const dice = random()
    if (dice < 0.12) await killWorker(targets)
    else if (dice < 0.37) await pauseWorker(targets)
    else if (dice < 0.72) await network(targets)
    else await pauseController(targets)
  }

  async #restart({ plane, count }: FaultTargets): Promise<void> {
    // SIGKILL, as a crash would; etcd runs with fsync so that acknowledged writes survive it.
    if (this.#restarts++ % 2 === 0) {
      await plane.restartApiserver('kill')
      count('apiserver-restart')
    } else {
      await plane.restartEtcd('kill')
      count('etcd-restart')
    }
  }
}

function pick<T>(items: readonly T[], random: () => number): T | undefined {
  return items[Math.floor(random() * items.length)]
}

async function killWorker(targets: FaultTargets): Promise<void> {
  const victim = pick(
    targets.live.filter((w) => w.alive),
    targets.random,
  )
  if (!victim) return
  await victim.kill()
  targets.count('worker-kill')
  await targets.replace(victim)
}

async function pauseWorker({ live, random, count, signal }: FaultTargets): Promise<void> {
  const victim = pick(
    live.filter((w) => w.alive),
    random,
  )
  if (!victim) return
  victim.pause()
  count('worker-pause')
  try {
    // Often past the lease (`expires` 2 s), so that it is taken over while the holder is stopped.
    await sleep(200 + random() * 2_300, signal)
  } finally {
    victim.resume()
  }
}

async function network({ proxy, random, count, signal }: FaultTargets): Promise<void> {
  const dice = random()
  if (dice < 0.4) {
    proxy.latencyMs = 50 + random() * 150
    proxy.mode = 'latency'
    count('proxy-latency')
  } else if (dice < 0.7) {
    proxy.mode = 'blackhole'
    count('proxy-blackhole')
  } else {
    // The proxied workers' writes apply and their answers are lost: unknown outcomes.
    proxy.mode = 'reset'
    count('proxy-reset')
  }
  try {
    await sleep(300 + random() * 1_700, signal)
  } finally {
    proxy.mode = 'pass'
  }
}

async function pauseController({ controller, random, count, signal }: FaultTargets): Promise<void> {
  if (!controller.alive) return
  // It wakes with a stale view in which leases look expired: its writes must fail their preconditions.
  controller.child.kill('SIGSTOP')
  count('controller-pause')
  try {
    await sleep(1_000 + random() * 2_000, signal)
  } finally {
    controller.child.kill('SIGCONT')
  }
}
