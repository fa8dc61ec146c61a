/**
 * watch delivery: how soon a watch sees one Lease update, opened with client-go (the Go peer), with the
 * SDK's store (its own HTTP layer on undici) and with @kubernetes/client-node — the three watching the
 * same namespace at once, each in a process of its own, while this process updates one lease.
 */
import { createKubernetesLeaseStore, formatMicroTime, type LeaseRecord } from '../../sdk/internal.ts'
import { createNamespace } from '../cluster.ts'
import { Peer, type PeerEvent } from '../processes.ts'
import { type Context, event, sleep, wallNow, worker } from './common.ts'

export interface WatchDeliveryResult {
  /** Milliseconds from sending each update to its answer. */
  readonly update: number[]
  /** Milliseconds from sending each update to each watcher seeing it. */
  readonly clientGo: number[]
  readonly kubeLocks: number[]
  readonly clientNode: number[]
}

const NAME = 'watched'

/** `count` updates, 100–150 ms apart, after one that every watcher has seen (all three watches open). */
export async function watchDelivery(ctx: Context, count: number): Promise<WatchDeliveryResult> {
  const namespace = 'bench-watch-delivery'
  await createNamespace(ctx.kubeConfig, namespace)
  const store = createKubernetesLeaseStore(ctx.kubeConfig)
  const goWatcher = watcherPeer(ctx, namespace)
  const sdkWatcher = await worker(ctx, 'kube-locks', namespace)
  const nodeWatcher = await worker(ctx, 'raw', namespace)
  const watchers = [goWatcher, sdkWatcher, nodeWatcher] as const
  try {
    sdkWatcher.send({ op: 'watch' })
    nodeWatcher.send({ op: 'watch' })
    await Promise.all(watchers.map((peer) => peer.next(event('watching'), 60_000)))
    let lease = await store.create({
      namespace,
      name: NAME,
      holderIdentity: undefined,
      leaseDurationSeconds: 20,
      acquireTime: undefined,
      renewTime: undefined,
      leaseTransitions: undefined,
      labels: {},
      annotations: {},
    })
    await Promise.all(watchers.map((peer) => peer.next(seen(lease.resourceVersion), 30_000)))
    const update: number[] = []
    const writes: Array<{ readonly sent: number; readonly rv: string }> = []
    for (let i = 0; i < count; i++) {
      await sleep(100 + Math.random() * 50)
      const sent = wallNow()
      lease = await store.update(renewed(lease))
      update.push(wallNow() - sent)
      writes.push({ sent, rv: lease.resourceVersion })
    }
    const last = lease.resourceVersion
    await Promise.all(watchers.map((peer) => peer.next(seen(last), 30_000)))
    const delivery = (peer: Peer) => writes.map(({ sent, rv }) => (find(peer, rv) as PeerEvent).t - sent)
    return {
      update,
      clientGo: delivery(goWatcher),
      kubeLocks: delivery(sdkWatcher),
      clientNode: delivery(nodeWatcher),
    }
  } finally {
    await Promise.all(watchers.map((peer) => peer.stop()))
    await store.close?.()
  }
}

function watcherPeer(ctx: Context, namespace: string): Peer {
  return new Peer('client-go-watcher', ctx.goPeer, [
    `--kubeconfig=${ctx.kubeconfig}`,
    `--namespace=${namespace}`,
    '--watch',
  ])
}

const renewed = (lease: LeaseRecord): LeaseRecord => ({ ...lease, renewTime: formatMicroTime(wallNow()) })

const seen =
  (rv: string) =>
  (e: PeerEvent): boolean =>
    e.event === 'watched' && e.name === NAME && e.rv === rv

const find = (peer: Peer, rv: string): PeerEvent | undefined => peer.events.find(seen(rv))
