/** throughput: many processes, each taking and releasing its own lock in a loop. */
import { createNamespace } from '../cluster.ts'
import type { PeerEvent } from '../processes.ts'
import { type Summary, summarize } from '../stats.ts'
import { type Context, event, worker } from './common.ts'

export interface ThroughputResult {
  readonly processes: number
  readonly seconds: number
  readonly kubeLocksPerSecond: number
  readonly rawPerSecond: number
  readonly kubeLocksLatency: Summary
  readonly rawLatency: Summary
}

/** `processes` processes, each acquiring and releasing its own lock in a loop, then the same with raw writes. */
export async function throughput(
  ctx: Context,
  processes: number,
  seconds: number,
): Promise<ThroughputResult> {
  const namespace = `bench-throughput-${processes}`
  await createNamespace(ctx.kubeConfig, namespace)
  const run = async (backend: 'kube-locks' | 'raw') => {
    const peers = await Promise.all(Array.from({ length: processes }, () => worker(ctx, backend, namespace)))
    const cycle = async (n: { count?: number; seconds?: number }) =>
      Promise.all(
        peers.map(async (peer, i) => {
          const from = peer.events.length
          peer.send({ op: 'cycle', name: `${backend}-${i}`, ...n })
          return (await peer.next(event('cycled'), 600_000, from)) as PeerEvent & {
            samples: number[]
            seconds: number
          }
        }),
      )
    await cycle({ count: 3 })
    const results = await cycle({ seconds })
    await Promise.all(peers.map((peer) => peer.stop()))
    const samples = results.flatMap((r) => r.samples)
    const perSecond = results.reduce((sum, r) => sum + r.samples.length / r.seconds, 0)
    return { perSecond, latency: summarize(samples) }
  }
  const kl = await run('kube-locks')
  const raw = await run('raw')
  return {
    processes,
    seconds,
    kubeLocksPerSecond: kl.perSecond,
    rawPerSecond: raw.perSecond,
    kubeLocksLatency: kl.latency,
    rawLatency: raw.latency,
  }
}
