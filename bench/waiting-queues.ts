/**
 * The systems the waiting scenario drains, each behind one interface: kube-locks (a lock, fair or not,
 * or a semaphore) and redlock in `bench/worker.ts` processes, and client-go's leader election.
 */
import { CoordinationV1Api } from '@kubernetes/client-node'
import {
  compareTickets,
  holderSelector,
  type LeaseObject,
  leaseNameFor,
  leaseToRecord,
  queueSelector,
} from '../sdk/internal.ts'
import { createNamespace, leaseRequests, redisCommands, type Tally } from './cluster.ts'
import type { Peer, PeerEvent } from './processes.ts'
import { type Context, candidate, type ElectionSettings, event, sleep, wallNow, worker } from './scenarios.ts'
import type { DrainResult } from './waiting.ts'

/** How long each waiter keeps the lock before releasing it. */
export const HOLD_MS = 20
export const LOCK = 'queue'
/** A redlock or client-go waiter's first attempt follows its report within this. */
const FIRST_ATTEMPT_MS = 50
const DRAIN_TIMEOUT_MS = 900_000

/** One system under test with a holder (a semaphore: one per slot) and `waiters` processes waiting. */
export interface Queue {
  readonly label: string
  readonly unit: DrainResult['unit']
  readonly waiters: number
  /** A semaphore's slots; 1 for a lock. */
  readonly limit: number
  /** Counts what the system sends to its store so far. */
  meter(): Promise<Tally>
  /** The store's processes: kube-apiserver and etcd, or redis-server. */
  readonly serverPids: readonly number[]
  /** The holder's and the waiters' processes still running. */
  pids(): number[]
  /** Starts the holder and the waiters' processes (not yet waiting); resolves once the holder holds. */
  prepare(): Promise<void>
  /** Waiter `i` begins waiting; resolves once it waits. */
  join(i: number): Promise<void>
  /** Whether the store's view of the queue is in start order, where there is one. */
  lineInStartOrder?(): Promise<boolean>
  /** Requests by verb and object, as the processes counted them, where they do. */
  objectCounts?(): Promise<Tally>
  release(): void
  /** Resolves once every waiter acquired and released (in the current round). */
  drained(): Promise<void>
  /** Wall-clock time of each waiter's acquisition in the current round, by start order. */
  acquisitions(): number[]
  /** Wall-clock times at which the holder and each waiter began to release, in the current round. */
  releases(): number[]
  /**
   * Starts a second round with the same processes: the holder takes the lock again; the waiters then
   * join again with {@link join}. Where the system supports it.
   */
  again?(): Promise<void>
  stop(): Promise<void>
}

export interface WorkerQueueOptions {
  readonly backend: 'kube-locks' | 'redlock'
  /** kube-locks: wait in line or race; `undefined` for redlock. */
  readonly fair?: boolean | undefined
  readonly namespace: string
  readonly waiters: number
  /** Processes the waiters are spread over; one each by default. */
  readonly processes?: number | undefined
  /**
   * kube-locks: a semaphore of this many slots, each taken by a holder of its own before the waiters
   * join. Its slots then change hands one at a time (see {@link rotate}).
   */
  readonly limit?: number | undefined
}

/**
 * kube-locks (fair or not, a lock or a semaphore) or redlock, the waiters in `bench/worker.ts`
 * processes: one each, or spread over `processes` of them (waiter i in process i mod `processes`).
 * A lock's waiters each keep it `HOLD_MS`; a semaphore's keep their slots until {@link rotate} frees
 * them.
 */
export function workerQueue(ctx: Context, options: WorkerQueueOptions): Queue {
  const { backend, fair, namespace, waiters, processes = waiters, limit } = options
  const holders: Peer[] = []
  const peers: Peer[] = []
  const all = () => [...holders, ...peers]
  const id = (i: number) => `w${i}`
  /** One holder per slot: `holder`, or `holder0`, `holder1`, … for a semaphore. */
  const holderIds = limit === undefined ? ['holder'] : Array.from({ length: limit }, (_, k) => `holder${k}`)
  const peerOf = (i: number) => peers[i % processes] as Peer
  const kubernetes = backend === 'kube-locks'
  const spread = processes < waiters ? `, ${processes} processes` : ''
  const mode = limit === undefined ? {} : { limit }
  /** Where the current round began: its wall-clock time, and each process's count of events then. */
  let round = { since: Number.NEGATIVE_INFINITY, from: new Map<Peer, number>() }
  /** A semaphore's handing over of its slots in the current round, once the holders release. */
  let rotation: Promise<void> | undefined
  /** Each holder takes its slot again; resolves once all hold. */
  const hold = async () => {
    // redlock's holder does not renew: its TTL outlasts the phase.
    const expires = kubernetes ? 20 : 3600
    await Promise.all(
      holders.map((holder, k) => {
        const holderId = holderIds[k] as string
        holder.send({
          op: 'acquire',
          id: holderId,
          name: LOCK,
          expires,
          timeout: 0,
          renew: kubernetes,
          ...mode,
        })
        return holder.next(event('acquired', holderId), 60_000, round.from.get(holder))
      }),
    )
  }
  return {
    label: kubernetes
      ? limit === undefined
        ? `kube-locks ${fair ? 'fair' : 'fair: false'}${spread}`
        : `kube-locks semaphore (limit ${limit})${spread}`
      : 'redlock defaults',
    unit: kubernetes ? 'lease requests' : 'Redis commands',
    waiters,
    limit: limit ?? 1,
    meter: () => (kubernetes ? leaseRequests(ctx.kubeConfig) : redisCommands(ctx.redisPort)),
    serverPids: kubernetes ? ctx.serverPids : ctx.redisPid === undefined ? [] : [ctx.redisPid],
    pids: () => pidsOf(all()),
    async prepare() {
      if (kubernetes) await createNamespace(ctx.kubeConfig, namespace)
      holders.push(
        ...(await Promise.all(holderIds.map((identity) => worker(ctx, backend, namespace, { identity })))),
      )
      await hold()
      ctx.log(`    starting ${processes} processes…`)
      for (let i = 0; i < processes; i += 10) {
        const batch = Array.from({ length: Math.min(10, processes - i) }, (_, j) =>
          worker(ctx, backend, namespace, { identity: id(i + j) }),
        )
        peers.push(...(await Promise.all(batch)))
      }
    },
    async join(i) {
      const peer = peerOf(i)
      const from = peer.events.length
      peer.send({
        op: 'acquire',
        id: id(i),
        name: LOCK,
        expires: 20,
        timeout: null,
        ...(limit === undefined && { holdMs: HOLD_MS }),
        ...(fair !== undefined && { fair }),
        ...mode,
      })
      if (kubernetes) {
        await peer.next(event('queued', id(i)), 60_000, from)
      } else {
        await peer.next(event('waiting', id(i)), 60_000, from)
        await sleep(FIRST_ATTEMPT_MS)
      }
    },
    ...(kubernetes && {
      objectCounts: async () => {
        const counts = await Promise.all(
          all().map(async (peer) => {
            const from = peer.events.length
            peer.send({ op: 'counts' })
            return (await peer.next(event('counts'), 60_000, from)).counts as Tally
          }),
        )
        const sum: Record<string, number> = {}
        for (const tally of counts) {
          for (const [kind, n] of Object.entries(tally)) sum[kind] = (sum[kind] ?? 0) + n
        }
        return sum
      },
    }),
    // A waiter's ticket (a semaphore: its holder record) names its process (identity `w<process>_…`),
    // which tells waiters apart only with one waiter per process.
    ...(kubernetes &&
      fair &&
      processes === waiters && {
        lineInStartOrder: async () => {
          const leaseName = leaseNameFor(LOCK)
          const labelSelector = limit === undefined ? queueSelector(leaseName) : holderSelector(leaseName)
          const list = await ctx.kubeConfig
            .makeApiClient(CoordinationV1Api)
            .listNamespacedLease({ namespace, labelSelector })
          const line = list.items
            .map((lease) => leaseToRecord(lease as LeaseObject))
            // A semaphore's records are those of its holders, then of its waiters.
            .filter((record) => !record.holderIdentity?.startsWith('holder'))
            .sort(compareTickets)
            .map((ticket) => Number(/^w(\d+)_/.exec(ticket.holderIdentity ?? '')?.[1] ?? Number.NaN))
          return line.length === waiters && line.every((i, k) => i === k)
        },
      }),
    release: () => {
      if (limit === undefined) {
        holders[0]?.send({ op: 'release', id: 'holder' })
        return
      }
      const inSlots = holders.map((peer, k) => ({ peer, id: holderIds[k] as string }))
      rotation = rotate(inSlots, peers, waiters, round.from)
      // Awaited in drained(); a failure before then must not go unhandled.
      rotation.catch(() => {})
    },
    async drained() {
      await rotation
      await Promise.all(
        Array.from({ length: waiters }, (_, i) => {
          const peer = peerOf(i)
          return peer.next(event('released', id(i)), DRAIN_TIMEOUT_MS, round.from.get(peer))
        }),
      )
    },
    acquisitions: () =>
      Array.from({ length: waiters }, (_, i) =>
        eventTime(peerOf(i), (e) => event('acquired', id(i))(e) && e.t >= round.since),
      ),
    releases: () =>
      all().flatMap((peer) =>
        peer.events.filter((e) => e.event === 'releasing' && e.t >= round.since).map((e) => e.t),
      ),
    async again() {
      if (holders.length === 0) throw new Error('the queue was not prepared')
      round = { since: wallNow(), from: new Map(all().map((peer) => [peer, peer.events.length])) }
      await hold()
    },
    async stop() {
      await Promise.all(all().map((peer) => peer.stop()))
    },
  }
}

/** A hold of a slot: the process, and the id of its acquisition. */
interface Slot {
  readonly peer: Peer
  readonly id: string
}

/**
 * Hands a semaphore's slots, all held (`inSlots`, longest held first), to `waiters` waiters one at a
 * time: the longest holder releases, the next acquisition (whoever's it is) is awaited, and `HOLD_MS`
 * later the next longest holder releases; at the end the last holders release. So each handover has
 * the other slots held, as the single-waiter reference has, and is measured alone rather than beside
 * others on the same cores; and the one acquisition after each release tells whether the waiter first
 * in line got the slot.
 */
async function rotate(
  inSlots: Slot[],
  peers: readonly Peer[],
  waiters: number,
  from: ReadonlyMap<Peer, number>,
): Promise<void> {
  const served = new Set<string>()
  for (let n = 0; n < waiters; n++) {
    const longest = inSlots.shift()
    if (longest === undefined) throw new Error('a semaphore of no slots cannot be handed over')
    longest.peer.send({ op: 'release', id: longest.id })
    const next = await firstAcquisition(peers, served, from)
    served.add(next.id)
    inSlots.push(next)
    await sleep(HOLD_MS)
  }
  for (const slot of inSlots) slot.peer.send({ op: 'release', id: slot.id })
}

/** The first acquisition by a waiter (id `w…`) of any of `peers` not yet `served`, from `from` on. */
async function firstAcquisition(
  peers: readonly Peer[],
  served: ReadonlySet<string>,
  from: ReadonlyMap<Peer, number>,
): Promise<Slot> {
  const match = (e: PeerEvent) =>
    e.event === 'acquired' && e.id !== undefined && e.id.startsWith('w') && !served.has(e.id)
  const found = new AbortController()
  try {
    return await Promise.any(
      peers.map(async (peer) => {
        const acquired = await peer.next(match, DRAIN_TIMEOUT_MS, from.get(peer), found.signal)
        return { peer, id: acquired.id as string }
      }),
    )
  } catch (error) {
    // Every process failed or timed out: the first one's reason says why.
    throw error instanceof AggregateError ? error.errors[0] : error
  } finally {
    found.abort()
  }
}

/**
 * client-go's leader election: each waiter a candidate process of the Go peer, which leads once, gives
 * up after `HOLD_MS` (ReleaseOnCancel) and exits.
 */
export function clientGoQueue(
  ctx: Context,
  settings: ElectionSettings,
  namespace: string,
  waiters: number,
): Queue {
  let leader: Peer | undefined
  const candidates: Peer[] = []
  const served: Promise<void>[] = []
  const all = () => [...(leader ? [leader] : []), ...candidates]
  return {
    label: `client-go LE ${settings.label}`,
    unit: 'lease requests',
    waiters,
    limit: 1,
    meter: () => leaseRequests(ctx.kubeConfig),
    serverPids: ctx.serverPids,
    pids: () => pidsOf(all()),
    async prepare() {
      await createNamespace(ctx.kubeConfig, namespace)
      leader = candidate(ctx, namespace, LOCK, settings, 'holder')
      await leader.next(event('leader'), 60_000)
    },
    async join(i) {
      const next = candidate(ctx, namespace, LOCK, settings, `w${i}`)
      candidates.push(next)
      const task = (async () => {
        await next.next(event('leader'), DRAIN_TIMEOUT_MS)
        await sleep(HOLD_MS)
        next.send('release')
        await next.exited
      })()
      // Awaited in drained(); a failure before then must not go unhandled.
      task.catch(() => {})
      served.push(task)
      await next.next(event('started'), 60_000)
      await sleep(FIRST_ATTEMPT_MS)
    },
    release: () => leader?.send('release'),
    async drained() {
      await Promise.all(served)
    },
    acquisitions: () => candidates.map((c) => eventTime(c, event('leader'))),
    releases: () =>
      all().flatMap((peer) => peer.events.filter((e) => e.event === 'releasing').map((e) => e.t)),
    async stop() {
      await Promise.all(all().map((peer) => peer.stop(10_000)))
    },
  }
}

export function pidsOf(peers: readonly Peer[]): number[] {
  return peers.filter((peer) => peer.alive && peer.pid !== undefined).map((peer) => peer.pid as number)
}

function eventTime(peer: Peer, match: (e: PeerEvent) => boolean): number {
  const found = peer.events.find(match)
  if (found === undefined) throw new Error(`${peer.name}: no such event`)
  return found.t
}
