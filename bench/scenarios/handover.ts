/** handover: release → next holder, for kube-locks, Redis and client-go's leader election. */
import { createNamespace } from '../cluster.ts'
import type { Peer } from '../processes.ts'
import { type Context, candidate, type ElectionSettings, event, sleep, worker } from './common.ts'

/**
 * Release → next holder, between two processes that take turns: the waiter is waiting (its watch
 * established) before the holder releases. Measured from just before the release call in the holder
 * to the acquisition returning in the waiter, on the shared wall clock.
 *
 * With `limit` (kube-locks), the lock is a semaphore of that many holders: a third process holds all
 * slots but one throughout, and the two take turns on the last one. `waitMs`: how long at least the
 * waiter waits before the holder releases (up to 300 ms more, at random).
 */
export async function handoverLocks(
  ctx: Context,
  backend: 'kube-locks' | 'redlock' | 'raw',
  count: number,
  options: {
    readonly fair?: boolean
    readonly namespace?: string
    readonly limit?: number
    readonly waitMs?: number
  } = {},
): Promise<number[]> {
  const namespace = options.namespace ?? `bench-handover-${backend}`
  if (backend !== 'redlock') await createNamespace(ctx.kubeConfig, namespace)
  const peers = [await worker(ctx, backend, namespace), await worker(ctx, backend, namespace)] as const
  const name = 'handover'
  const fair = options.fair === undefined ? {} : { fair: options.fair }
  const { limit } = options
  const acquire = {
    op: 'acquire',
    name,
    expires: 20,
    timeout: null,
    ...fair,
    ...(limit !== undefined && { limit }),
  }
  let others: Peer | undefined
  if (limit !== undefined) {
    others = await worker(ctx, backend, namespace)
    for (let k = 1; k < limit; k++) {
      others.send({ ...acquire, id: `other${k}`, renew: true })
      await others.next(event('acquired', `other${k}`), 60_000)
    }
  }
  peers[0].send({ ...acquire, id: 'h0' })
  await peers[0].next(event('acquired', 'h0'), 60_000)
  const samples: number[] = []
  for (let i = 0; i < count; i++) {
    const holder = peers[i % 2] as Peer
    const waiter = peers[(i + 1) % 2] as Peer
    const next = `h${i + 1}`
    waiter.send({ ...acquire, id: next })
    await waiter.next(event('waiting', next), 60_000)
    await sleep((options.waitMs ?? 400) + Math.random() * 300)
    holder.send({ op: 'release', id: `h${i}` })
    const released = await holder.next(event('releasing', `h${i}`), 60_000)
    const acquired = await waiter.next(event('acquired', next), 60_000)
    samples.push(acquired.t - released.t)
  }
  await Promise.all([...peers, ...(others ? [others] : [])].map((peer) => peer.stop()))
  return samples
}

/** The same for client-go's leader election: the leader gives up (ReleaseOnCancel) → the next candidate leads. */
export async function handoverClientGo(
  ctx: Context,
  namespace: string,
  settings: ElectionSettings,
  count: number,
): Promise<number[]> {
  const name = `handover-${settings.leaseDuration}s`
  let leader = candidate(ctx, namespace, name, settings)
  await leader.next(event('leader'), 60_000)
  const samples: number[] = []
  for (let i = 0; i < count; i++) {
    const next = candidate(ctx, namespace, name, settings)
    await next.next(event('started'), 60_000)
    // Let the candidate find the lease held and settle into its retry rhythm.
    await sleep(settings.retryPeriod * 1000 * (1.5 + Math.random()) + 200)
    leader.send('release')
    const released = await leader.next(event('releasing'), 60_000)
    const led = await next.next(event('leader'), 120_000)
    samples.push(led.t - released.t)
    await leader.exited
    leader = next
  }
  await leader.stop(10_000)
  return samples
}
