import { loadavg } from 'node:os'
import { RECORD_FRESH_MS } from '../sdk/internal.ts'
import { createNamespace, tallyDelta } from './cluster.ts'
import { cpuMs, type Peer } from './processes.ts'
import { type Context, type ElectionSettings, event, handoverLocks, sleep, worker } from './scenarios.ts'
import { type Summary, summarize } from './stats.ts'
import {
  clientGoQueue,
  HOLD_MS,
  LOCK,
  pidsOf,
  type Queue,
  type WorkerQueueOptions,
  workerQueue,
} from './waiting-queues.ts'

/**
 * Many processes waiting on one lock: what the waiting costs the API server (or Redis), then, when
 * the holder releases, how the queue drains — handover latency along it, requests per handover, and
 * whether the waiters were served in the order they began waiting. The same for kube-locks with fair
 * waiting (the default) and with `fair: false`, for a kube-locks semaphore (its slots all held, the
 * waiters in line for them), for redlock and for client-go's leader election.
 *
 * The waiters begin waiting one after another, each once the previous one waits: a kube-locks waiter
 * once its process watches and — fair — its ticket exists, or — `fair: false` — it has read the lease
 * held, or — a semaphore — its holder record exists (the worker's store reports each); a redlock worker
 * or a client-go candidate, which make their first attempt as they start, once it reported so and a
 * moment passed.
 */

export interface WaitingProfile {
  readonly waiters: number
  /** Seconds with the holder alone, then with everyone waiting, over which requests are counted. */
  readonly idleSeconds: number
  readonly busySeconds: number
  /** Handovers between two processes taking turns: the reference for the queue. */
  readonly singleHandovers: number
  /** client-go leader election settings whose queue of `waiters` candidates is drained too. */
  readonly clientGo: readonly ElectionSettings[]
  /**
   * Fair kube-locks once more with the same waiters spread over this many processes, so that a change
   * of the line reaches that many processes instead of one per waiter.
   */
  readonly sharedProcesses: number
  /** Watching processes and seconds per window of the watch event cost. */
  readonly watchCost: { readonly watchers: number; readonly seconds: number }
}

export interface DrainResult {
  readonly label: string
  /** A semaphore's number of slots, all held when the waiters join; 1 for a lock. */
  readonly limit: number
  /** What is counted: lease requests to the API server, or commands to redis-server. */
  readonly unit: 'lease requests' | 'Redis commands'
  readonly waiters: number
  /** Load average (1 min) when the phase began and ended. */
  readonly loadAverage: readonly [number, number]
  /** Seconds from the first waiter's start to the last one waiting. */
  readonly startSeconds: number
  readonly idlePerSecond: number
  readonly waitingPerSecond: number
  /** (waiting − idle) per second per waiting process. */
  readonly addedPerWaiterPerSecond: number
  readonly idleByKind: Record<string, number>
  readonly waitingByKind: Record<string, number>
  /** Release → next holder along the queue, each holder keeping the lock `holdMs`. */
  readonly handover: Summary
  readonly handoverSamples: number[]
  readonly requestsPerHandover: number
  readonly drainByKind: Record<string, number>
  /** kube-locks: the drain's requests as the processes counted them, by verb and object (`update lock`). */
  readonly drainByObject?: Record<string, number> | undefined
  readonly drainSeconds: number
  /** CPU time (ms) of the holder's and the waiters' processes per second per waiter, while they wait. */
  readonly waitingCpuMsPerWaiterSecond: number
  /** CPU time (ms) of the store's processes (kube-apiserver + etcd, or redis-server) per second while they wait. */
  readonly waitingServerCpuMsPerSecond: number
  /** CPU time (ms) per handover while the queue drains: of all the lock's processes, and of the store. */
  readonly drainCpuMsPerHandover: number
  readonly drainServerCpuMsPerHandover: number
  /** Waiter indices (start order) in the order they acquired. */
  readonly order: number[]
  /** Acquisitions that came before that of a waiter who began waiting earlier. */
  readonly outOfOrder: number
  /** Pairs of waiters served in the opposite order to the one they began waiting in. */
  readonly inversions: number
  /**
   * Fair kube-locks: whether the line (a semaphore: its waiters' holder records), listed just before
   * the release, was in start order.
   */
  readonly lineInStartOrder?: boolean | undefined
  /** The same waiters drained once more in the same processes, which have now run every path once. */
  readonly warm?: WarmDrain | undefined
}

export interface WaitingResult {
  readonly waiters: number
  readonly idleSeconds: number
  readonly busySeconds: number
  readonly holdMs: number
  /**
   * One waiter at a time (two processes taking turns, as in `handover`), in the same run: the reference.
   * `semaphore`: the two take turns on the last free slot of a semaphore of `semaphoreLimit`.
   */
  readonly single: { readonly fair: number[]; readonly unfair: number[]; readonly semaphore: number[] }
  readonly fair: DrainResult
  /** Fair, the waiters spread over `sharedProcesses` processes. */
  readonly fairShared: DrainResult
  readonly sharedProcesses: number
  /** A semaphore of `semaphoreLimit`: as many holders, the waiters in line for their slots. */
  readonly semaphore: DrainResult
  readonly semaphoreLimit: number
  readonly unfair: DrainResult
  readonly redlock: DrainResult
  readonly clientGo: DrainResult[]
  readonly watchCost: WatchCostResult
}

export interface WarmDrain {
  readonly handover: Summary
  readonly handoverSamples: number[]
  readonly outOfOrder: number
  readonly inversions: number
}

/** CPU time that one watch event costs each process watching the namespace, in one system. */
export interface WatchCost {
  /** Changes of a lease during the measured window, each one watch event. */
  readonly events: number
  /** CPU time (ms) of the watching processes over the window with nothing changing, then with changes. */
  readonly quietCpuMs: number
  readonly busyCpuMs: number
  /** (busy − quiet) / events / watchers, in microseconds. */
  readonly perEventUs: number
}

export interface WatchCostResult {
  readonly watchers: number
  readonly seconds: number
  /** kube-locks waiters, each in line for a held lock in its own process. */
  readonly kubeLocks: WatchCost
  /** Bare watches over node:https that only parse each event: the least a Node client pays. */
  readonly bare: WatchCost
}

/** The semaphore's slots: more than one, so that its waiters count the holders ahead of them. */
const SEMAPHORE_LIMIT = 2
/** After the last waiter joined: its process's first requests are over by then. */
const SETTLE_MS = 3_000

export async function waiting(ctx: Context, profile: WaitingProfile): Promise<WaitingResult> {
  const { waiters, singleHandovers } = profile
  ctx.log(
    `  one waiter at a time, fair, fair: false and a semaphore's last slot, ${singleHandovers} handovers each…`,
  )
  // In alternating blocks, so that a change in machine load hits all alike.
  const single = { fair: [] as number[], unfair: [] as number[], semaphore: [] as number[] }
  const references = [
    ['fair', { fair: true }],
    ['unfair', { fair: false }],
    // Past the time a waiting record stays fresh, as in a queue: the waiter renews it before its check.
    ['semaphore', { limit: SEMAPHORE_LIMIT, waitMs: RECORD_FRESH_MS + 200 }],
  ] as const
  const blocks = 2
  for (let b = 0; b < blocks; b++) {
    const count = Math.ceil(singleHandovers / blocks)
    for (const [kind, options] of references) {
      const namespace = `bench-waiting-single-${kind}-${b}`
      single[kind].push(...(await handoverLocks(ctx, 'kube-locks', count, { ...options, namespace })))
    }
  }
  ctx.log(`  ${waiters} waiting, kube-locks fair (the default)…`)
  const queue = (options: Omit<WorkerQueueOptions, 'waiters'>) => workerQueue(ctx, { ...options, waiters })
  const fairDrain = await drain(
    ctx,
    queue({ backend: 'kube-locks', fair: true, namespace: 'bench-waiting-fair' }),
    profile,
    true,
  )
  const { sharedProcesses } = profile
  ctx.log(`  ${waiters} waiting in ${sharedProcesses} processes, kube-locks fair…`)
  const fairShared = await drain(
    ctx,
    queue({
      backend: 'kube-locks',
      fair: true,
      namespace: 'bench-waiting-fair-shared',
      processes: sharedProcesses,
    }),
    profile,
  )
  ctx.log(`  ${waiters} waiting, kube-locks semaphore (limit ${SEMAPHORE_LIMIT}), every slot held…`)
  const semaphore = await drain(
    ctx,
    queue({
      backend: 'kube-locks',
      fair: true,
      namespace: 'bench-waiting-semaphore',
      limit: SEMAPHORE_LIMIT,
    }),
    profile,
  )
  ctx.log(`  ${waiters} waiting, kube-locks fair: false…`)
  const unfairDrain = await drain(
    ctx,
    queue({ backend: 'kube-locks', fair: false, namespace: 'bench-waiting-unfair' }),
    profile,
  )
  ctx.log(`  ${waiters} waiting, redlock…`)
  const redlock = await drain(ctx, queue({ backend: 'redlock', namespace: 'bench-waiting-redlock' }), profile)
  const clientGo: DrainResult[] = []
  for (const settings of profile.clientGo) {
    ctx.log(`  ${waiters} waiting, client-go leader election ${settings.label}…`)
    const namespace = `bench-waiting-client-go-${settings.leaseDuration}s`
    clientGo.push(await drain(ctx, clientGoQueue(ctx, settings, namespace, waiters), profile))
  }
  const { watchers, seconds } = profile.watchCost
  ctx.log(`  what one watch event costs each of ${watchers} watching processes, kube-locks and a bare watch…`)
  const watchCost = {
    watchers,
    seconds,
    kubeLocks: await measureWatchCost(ctx, 'kube-locks', watchers, seconds),
    bare: await measureWatchCost(ctx, 'bare', watchers, seconds),
  }
  return {
    waiters,
    idleSeconds: profile.idleSeconds,
    busySeconds: profile.busySeconds,
    holdMs: HOLD_MS,
    single,
    fair: fairDrain,
    fairShared,
    sharedProcesses,
    semaphore,
    semaphoreLimit: SEMAPHORE_LIMIT,
    unfair: unfairDrain,
    redlock,
    clientGo,
    watchCost,
  }
}

/** Lease changes per second while the watch cost is measured: a steady rate, well below saturation. */
const WATCH_COST_PAUSE_MS = 50

/**
 * The CPU time one watch event costs each watching process: `watchers` processes watch the namespace —
 * kube-locks waiters in line for a held lock, or bare watches — first over a window in which nothing
 * changes but the waiters' own renewals, then over one as long in which another process takes and
 * frees a lock at a steady rate. The difference, per change and per watcher, is the cost of an event.
 */
async function measureWatchCost(
  ctx: Context,
  kind: 'kube-locks' | 'bare',
  watchers: number,
  seconds: number,
): Promise<WatchCost> {
  const namespace = `bench-waiting-watch-cost-${kind}`
  await createNamespace(ctx.kubeConfig, namespace)
  const writer = await worker(ctx, 'kube-locks', namespace, { identity: 'writer' })
  const peers: Peer[] = []
  try {
    if (kind === 'kube-locks') {
      writer.send({ op: 'acquire', id: 'holder', name: LOCK, expires: 20, timeout: 0, renew: true })
      await writer.next(event('acquired', 'holder'), 60_000)
    }
    for (let i = 0; i < watchers; i += 10) {
      const batch = Array.from({ length: Math.min(10, watchers - i) }, (_, j) =>
        kind === 'kube-locks'
          ? worker(ctx, 'kube-locks', namespace, { identity: `w${i + j}` })
          : worker(ctx, 'raw', namespace),
      )
      peers.push(...(await Promise.all(batch)))
    }
    for (const [i, peer] of peers.entries()) {
      if (kind === 'kube-locks') {
        peer.send({ op: 'acquire', id: `w${i}`, name: LOCK, expires: 20, timeout: null })
        await peer.next(event('queued', `w${i}`), 60_000)
      } else {
        peer.send({ op: 'watch-bare' })
        await peer.next(event('watching'), 60_000)
      }
    }
    await sleep(SETTLE_MS)
    const pids = pidsOf(peers)
    const quietStart = await cpuMs(pids, false)
    await sleep(seconds * 1000)
    const busyStart = await cpuMs(pids, false)
    writer.send({ op: 'cycle', name: 'changes', seconds, pauseMs: WATCH_COST_PAUSE_MS })
    const cycled = await writer.next(event('cycled'), (seconds + 60) * 1000)
    const busyEnd = await cpuMs(pids, false)
    if (pidsOf(peers).length !== watchers) throw new Error('a watching process ended while measured')
    // The first cycle creates the lease; every cycle takes and frees it: two events each.
    const events = 2 * (cycled.samples as number[]).length
    const quietCpuMs = busyStart - quietStart
    const busyCpuMs = busyEnd - busyStart
    return {
      events,
      quietCpuMs,
      busyCpuMs,
      perEventUs: ((busyCpuMs - quietCpuMs) / events / watchers) * 1000,
    }
  } finally {
    await Promise.all([writer, ...peers].map((peer) => peer.stop()))
  }
}

async function drain(
  ctx: Context,
  queue: Queue,
  profile: WaitingProfile,
  warm = false,
): Promise<DrainResult> {
  const loadStart = loadavg()[0] as number
  await queue.prepare()
  const window = async (seconds: number) => {
    const before = await queue.meter()
    await sleep(seconds * 1000)
    return tallyDelta(before, await queue.meter())
  }
  ctx.log(
    `    counting requests with the holder${queue.limit > 1 ? 's' : ''} alone for ${profile.idleSeconds} s…`,
  )
  const idle = await window(profile.idleSeconds)
  ctx.log(`    ${queue.waiters} begin waiting, one after another…`)
  const joinStart = performance.now()
  for (let i = 0; i < queue.waiters; i++) await queue.join(i)
  const startSeconds = (performance.now() - joinStart) / 1000
  await sleep(SETTLE_MS)
  ctx.log(`    counting requests with ${queue.waiters} waiting for ${profile.busySeconds} s…`)
  const cpu = async () => ({
    own: await cpuMs(queue.pids()),
    server: await cpuMs(queue.serverPids, false),
  })
  const cpuBusy = await cpu()
  const busy = await window(profile.busySeconds)
  const cpuBusyEnd = await cpu()
  const lineInStartOrder = await queue.lineInStartOrder?.()
  const objectsBefore = await queue.objectCounts?.()
  ctx.log('    releasing: the queue drains…')
  const before = await queue.meter()
  const cpuDrain = await cpu()
  const started = performance.now()
  queue.release()
  await queue.drained()
  const drainSeconds = (performance.now() - started) / 1000
  const cpuDrainEnd = await cpu()
  const drained = tallyDelta(before, await queue.meter())
  const objectsAfter = await queue.objectCounts?.()
  const { acquisitions, handoverSamples } = handovers(queue)
  const order = orderOf(acquisitions)
  const warmDrain = warm ? await drainAgain(ctx, queue) : undefined
  await queue.stop()
  const idlePerSecond = idle.total / profile.idleSeconds
  const waitingPerSecond = busy.total / profile.busySeconds
  return {
    label: queue.label,
    limit: queue.limit,
    unit: queue.unit,
    waiters: queue.waiters,
    loadAverage: [round(loadStart), round(loadavg()[0] as number)],
    startSeconds,
    idlePerSecond,
    waitingPerSecond,
    addedPerWaiterPerSecond: (waitingPerSecond - idlePerSecond) / queue.waiters,
    idleByKind: idle.byKind,
    waitingByKind: busy.byKind,
    handover: summarize(handoverSamples),
    handoverSamples,
    requestsPerHandover: drained.total / queue.waiters,
    drainByKind: drained.byKind,
    drainByObject: objectsBefore && objectsAfter ? tallyDelta(objectsBefore, objectsAfter).byKind : undefined,
    drainSeconds,
    waitingCpuMsPerWaiterSecond: (cpuBusyEnd.own - cpuBusy.own) / profile.busySeconds / queue.waiters,
    waitingServerCpuMsPerSecond: (cpuBusyEnd.server - cpuBusy.server) / profile.busySeconds,
    drainCpuMsPerHandover: (cpuDrainEnd.own - cpuDrain.own) / queue.waiters,
    drainServerCpuMsPerHandover: (cpuDrainEnd.server - cpuDrain.server) / queue.waiters,
    order,
    ...inversions(order),
    lineInStartOrder,
    warm: warmDrain,
  }
}

/** The same waiters, in the same processes, wait and drain once more: handovers of warm processes. */
async function drainAgain(ctx: Context, queue: Queue): Promise<WarmDrain | undefined> {
  if (queue.again === undefined) return undefined
  ctx.log('    the same waiters once more, in the same processes…')
  await queue.again()
  for (let i = 0; i < queue.waiters; i++) await queue.join(i)
  await sleep(SETTLE_MS)
  queue.release()
  await queue.drained()
  const { acquisitions, handoverSamples } = handovers(queue)
  return { handover: summarize(handoverSamples), handoverSamples, ...inversions(orderOf(acquisitions)) }
}

/**
 * The drained round's acquisitions (by start order) and its handovers: the n-th acquisition in time
 * less the n-th release begun, the holder's first (a semaphore's holders': as many as it has slots).
 */
function handovers(queue: Queue): { acquisitions: number[]; handoverSamples: number[] } {
  const acquisitions = queue.acquisitions()
  const releases = queue.releases().sort((a, b) => a - b)
  const handoverSamples = [...acquisitions].sort((a, b) => a - b).map((t, i) => t - (releases[i] as number))
  return { acquisitions, handoverSamples }
}

const round = (x: number) => Math.round(x * 100) / 100

/** The waiters' indices (start order) sorted by the time of their acquisition. */
function orderOf(acquisitions: readonly number[]): number[] {
  return acquisitions
    .map((t, i) => [t, i] as const)
    .sort((a, b) => a[0] - b[0])
    .map(([, i]) => i)
}

/** Acquisitions ahead of an earlier waiter still waiting, and pairs served out of start order. */
export function inversions(order: readonly number[]): { outOfOrder: number; inversions: number } {
  const served = new Set<number>()
  let earliestWaiting = 0
  let outOfOrder = 0
  let pairs = 0
  for (const [k, i] of order.entries()) {
    if (i !== earliestWaiting) outOfOrder++
    for (let j = 0; j < k; j++) if ((order[j] as number) > i) pairs++
    served.add(i)
    while (served.has(earliestWaiting)) earliestWaiting++
  }
  return { outOfOrder, inversions: pairs }
}
