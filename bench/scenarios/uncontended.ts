/** uncontended: acquire + release of a free lock, next to the same requests issued directly. */
import { createNamespace } from '../cluster.ts'
import type { Peer, PeerEvent } from '../processes.ts'
import { type Summary, summarize } from '../stats.ts'
import { type Context, event, worker } from './common.ts'

export interface UncontendedResult {
  /** The default: fair (the lock's line is read beside the lease). */
  readonly kubeLocks: Summary
  /** `fair: false`: the lease alone. */
  readonly kubeLocksUnfair: Summary
  readonly raw: Summary
  /** The same requests with client-node's default of a new connection pool per request. */
  readonly rawPlain: Summary
  readonly rawRead: Summary
  readonly rawUpdate: Summary
  readonly samples: {
    readonly kubeLocks: number[]
    readonly kubeLocksUnfair: number[]
    readonly raw: number[]
  }
  /** The lease requests of one acquire + release, as the process counted them (`get lock`, `list line`). */
  readonly requestsPerCycle: {
    readonly fair: Record<string, number>
    readonly unfair: Record<string, number>
  }
}

/**
 * Acquire + release of one free lock by one process, with the defaults (fair) and with `fair: false`,
 * against the same read + two updates issued directly. They run in alternating blocks so that a
 * change in machine load hits all alike.
 */
export async function uncontended(ctx: Context, count: number): Promise<UncontendedResult> {
  const namespace = 'bench-uncontended'
  await createNamespace(ctx.kubeConfig, namespace)
  const kl = await worker(ctx, 'kube-locks', namespace)
  const raw = await worker(ctx, 'raw', namespace)
  const plain = await worker(ctx, 'raw-plain', namespace)
  const unfair = await worker(ctx, 'kube-locks', namespace)
  const cycle = async (peer: Peer, name: string, n: number, fair?: boolean) => {
    const from = peer.events.length
    peer.send({ op: 'cycle', name, count: n, ...(fair !== undefined && { fair }) })
    return (await peer.next(event('cycled'), 600_000, from)) as PeerEvent & {
      samples: number[]
      requests: number[][]
    }
  }
  await cycle(kl, 'kube-locks', 5)
  await cycle(unfair, 'kube-locks-unfair', 5, false)
  await cycle(raw, 'raw', 5)
  await cycle(plain, 'raw-plain', 5)
  const blocks = 5
  const kubeLocks: number[] = []
  const unfairSamples: number[] = []
  const rawSamples: number[] = []
  const plainSamples: number[] = []
  const reads: number[] = []
  const updates: number[] = []
  for (let b = 0; b < blocks; b++) {
    kubeLocks.push(...(await cycle(kl, 'kube-locks', Math.ceil(count / blocks))).samples)
    unfairSamples.push(
      ...(await cycle(unfair, 'kube-locks-unfair', Math.ceil(count / blocks), false)).samples,
    )
    const r = await cycle(raw, 'raw', Math.ceil(count / blocks))
    rawSamples.push(...r.samples)
    for (const [read, take, free] of r.requests) {
      reads.push(read as number)
      updates.push(take as number, free as number)
    }
    plainSamples.push(...(await cycle(plain, 'raw-plain', Math.ceil(count / blocks))).samples)
  }
  const perCycle = async (peer: Peer, cycles: number) => {
    const from = peer.events.length
    peer.send({ op: 'counts' })
    const { counts } = (await peer.next(event('counts'), 60_000, from)) as PeerEvent & {
      counts: Record<string, number>
    }
    return Object.fromEntries(
      Object.entries(counts)
        .filter(([kind]) => kind !== 'watch namespace')
        .map(([kind, n]) => [kind, Math.round((n / cycles) * 100) / 100]),
    )
  }
  const cycles = 5 + blocks * Math.ceil(count / blocks)
  const requestsPerCycle = { fair: await perCycle(kl, cycles), unfair: await perCycle(unfair, cycles) }
  await Promise.all([kl.stop(), unfair.stop(), raw.stop(), plain.stop()])
  return {
    kubeLocks: summarize(kubeLocks),
    kubeLocksUnfair: summarize(unfairSamples),
    raw: summarize(rawSamples),
    rawPlain: summarize(plainSamples),
    rawRead: summarize(reads),
    rawUpdate: summarize(updates),
    samples: { kubeLocks, kubeLocksUnfair: unfairSamples, raw: rawSamples },
    requestsPerCycle,
  }
}
