/** uncontended: acquire + release of a free lock, next to the same requests issued directly. */
import { createNamespace } from '../cluster.ts'
import type { Peer, PeerEvent } from '../processes.ts'
import { type Summary, summarize } from '../stats.ts'
import { type Context, event, worker } from './common.ts'

/** The semaphore whose free slot is taken: more than one slot, so that the count of holders is read. */
export const UNCONTENDED_LIMIT = 3

export interface UncontendedResult {
  /** The default: fair (the lock's line is read beside the lease). */
  readonly kubeLocks: Summary
  /** `fair: false`: the lease alone. */
  readonly kubeLocksUnfair: Summary
  /** A free slot of a semaphore of `limit` holders, in the same process as `kubeLocks`. */
  readonly semaphore: Summary
  /** A shared hold of a name nobody holds, in the same process as `kubeLocks`. */
  readonly shared: Summary
  readonly limit: number
  readonly raw: Summary
  /** The same requests with client-node's default of a new connection pool per request. */
  readonly rawPlain: Summary
  readonly rawRead: Summary
  readonly rawUpdate: Summary
  readonly samples: {
    readonly kubeLocks: number[]
    readonly kubeLocksUnfair: number[]
    readonly semaphore: number[]
    readonly shared: number[]
    readonly raw: number[]
  }
  /**
   * The lease requests of one acquire + release, as the process counted them (`get lock`, `list line`,
   * `create record`, …), the shared watch's own (`list namespace`, `watch namespace`) included.
   */
  readonly requestsPerCycle: {
    readonly fair: Record<string, number>
    readonly unfair: Record<string, number>
    readonly semaphore: Record<string, number>
    readonly shared: Record<string, number>
  }
}

type Kind = 'fair' | 'unfair' | 'semaphore' | 'shared' | 'raw' | 'raw-plain'

/**
 * Acquire + release of one free lock by one process, with the defaults (fair) and with `fair: false`,
 * against the same read + two updates issued directly; and, in the process of the default, a free slot
 * of a semaphore and a shared hold, each of a name of its own. They run in alternating blocks so that
 * a change in machine load hits all alike. The requests of each kind are counted by its process around
 * its own cycles.
 */
export async function uncontended(ctx: Context, count: number): Promise<UncontendedResult> {
  const namespace = 'bench-uncontended'
  await createNamespace(ctx.kubeConfig, namespace)
  const kl = await worker(ctx, 'kube-locks', namespace)
  const raw = await worker(ctx, 'raw', namespace)
  const plain = await worker(ctx, 'raw-plain', namespace)
  const unfair = await worker(ctx, 'kube-locks', namespace)
  const runs: Record<Kind, { readonly peer: Peer; readonly name: string; readonly options: object }> = {
    fair: { peer: kl, name: 'kube-locks', options: {} },
    unfair: { peer: unfair, name: 'kube-locks-unfair', options: { fair: false } },
    semaphore: { peer: kl, name: 'semaphore', options: { limit: UNCONTENDED_LIMIT } },
    shared: { peer: kl, name: 'shared', options: { shared: true } },
    raw: { peer: raw, name: 'raw', options: {} },
    'raw-plain': { peer: plain, name: 'raw-plain', options: {} },
  }
  const kinds = Object.keys(runs) as Kind[]
  const samples = Object.fromEntries(kinds.map((kind) => [kind, [] as number[]])) as Record<Kind, number[]>
  const requests = Object.fromEntries(kinds.map((kind) => [kind, {}])) as Record<Kind, Record<string, number>>
  const reads: number[] = []
  const updates: number[] = []
  const cycle = async (kind: Kind, n: number) => {
    const { peer, name, options } = runs[kind]
    const before = await countsOf(peer)
    const from = peer.events.length
    peer.send({ op: 'cycle', name, count: n, ...options })
    const cycled = (await peer.next(event('cycled'), 600_000, from)) as PeerEvent & {
      samples: number[]
      requests: number[][]
    }
    const after = await countsOf(peer)
    for (const [request, total] of Object.entries(after)) {
      const added = total - (before[request] ?? 0)
      if (added > 0) requests[kind][request] = (requests[kind][request] ?? 0) + added
    }
    return cycled
  }
  const warmUp = 5
  for (const kind of kinds) await cycle(kind, warmUp)
  const blocks = 5
  const perBlock = Math.ceil(count / blocks)
  for (let b = 0; b < blocks; b++) {
    for (const kind of kinds) {
      const cycled = await cycle(kind, perBlock)
      samples[kind].push(...cycled.samples)
      if (kind !== 'raw') continue
      for (const [read, take, free] of cycled.requests) {
        reads.push(read as number)
        updates.push(take as number, free as number)
      }
    }
  }
  const cycles = warmUp + blocks * perBlock
  const perCycle = (kind: Kind) =>
    Object.fromEntries(
      Object.entries(requests[kind]).map(([request, n]) => [request, Math.round((n / cycles) * 100) / 100]),
    )
  await Promise.all([kl.stop(), unfair.stop(), raw.stop(), plain.stop()])
  return {
    kubeLocks: summarize(samples.fair),
    kubeLocksUnfair: summarize(samples.unfair),
    semaphore: summarize(samples.semaphore),
    shared: summarize(samples.shared),
    limit: UNCONTENDED_LIMIT,
    raw: summarize(samples.raw),
    rawPlain: summarize(samples['raw-plain']),
    rawRead: summarize(reads),
    rawUpdate: summarize(updates),
    samples: {
      kubeLocks: samples.fair,
      kubeLocksUnfair: samples.unfair,
      semaphore: samples.semaphore,
      shared: samples.shared,
      raw: samples.raw,
    },
    requestsPerCycle: {
      fair: perCycle('fair'),
      unfair: perCycle('unfair'),
      semaphore: perCycle('semaphore'),
      shared: perCycle('shared'),
    },
  }
}

/** The lease requests a worker sent so far, by verb and object (none for the raw floor). */
async function countsOf(peer: Peer): Promise<Record<string, number>> {
  const from = peer.events.length
  peer.send({ op: 'counts' })
  return (await peer.next(event('counts'), 60_000, from)).counts as Record<string, number>
}
