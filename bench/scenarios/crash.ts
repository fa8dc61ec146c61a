/** crash: the holder is killed; how long until the next holder, from the kill and from its last write. */
import { CoordinationV1Api } from '@kubernetes/client-node'
import { leaseNameFor, parseMicroTime } from '../../sdk/internal.ts'
import { createNamespace } from '../cluster.ts'
import { type Context, candidate, type ElectionSettings, event, sleep, wallNow, worker } from './common.ts'

export interface CrashSamples {
  /** SIGKILL of the holder → next holder. */
  readonly fromKill: number[]
  /** The holder's last successful write (its acquisition) → next holder. */
  readonly fromLastWrite: number[]
  /** Lease duration / lock TTL in seconds. */
  readonly expires: number
}

/**
 * The holder (renewing, for kube-locks) is SIGKILLed `holdMs` after it acquired, while a waiter waits;
 * the waiter takes over. The holder's last write is read back from the lease (`renewTime`, written from
 * the same machine's clock) or, for redlock, is the acquisition.
 */
export async function crashLocks(
  ctx: Context,
  backend: 'kube-locks' | 'redlock',
  count: number,
  expires: number,
  holdMs: number,
): Promise<CrashSamples> {
  const namespace = `bench-crash-${backend}`
  if (backend === 'kube-locks') await createNamespace(ctx.kubeConfig, namespace)
  const waiter = await worker(ctx, backend, namespace)
  const fromKill: number[] = []
  const fromLastWrite: number[] = []
  for (let i = 0; i < count; i++) {
    const name = `crash-${i}`
    const holder = await worker(ctx, backend, namespace)
    holder.send({ op: 'acquire', id: 'holder', name, expires, timeout: 0, renew: backend === 'kube-locks' })
    const acquired = await holder.next(event('acquired', 'holder'), 60_000)
    waiter.send({ op: 'acquire', id: name, name, expires, timeout: null })
    await waiter.next(event('waiting', name), 60_000)
    await sleep(Math.max(0, acquired.t + holdMs + Math.random() * 1000 - wallNow()))
    const killedAt = holder.kill()
    const lastWrite =
      backend === 'kube-locks' ? await renewTime(ctx, namespace, leaseNameFor(name)) : acquired.t
    const next = await waiter.next(event('acquired', name), (expires + 30) * 1000)
    fromKill.push(next.t - killedAt)
    fromLastWrite.push(next.t - lastWrite)
    waiter.send({ op: 'release', id: name })
    await waiter.next(event('released', name), 60_000)
  }
  await waiter.stop()
  return { fromKill, fromLastWrite, expires }
}

/** The lease's `renewTime` as Unix milliseconds. */
async function renewTime(ctx: Context, namespace: string, name: string): Promise<number> {
  const lease = await ctx.kubeConfig.makeApiClient(CoordinationV1Api).readNamespacedLease({ name, namespace })
  const time = lease.spec?.renewTime as Date | string | undefined
  if (time === undefined) throw new Error(`lease ${namespace}/${name} has no renewTime`)
  return typeof time === 'string' ? parseMicroTime(time) : time.getTime()
}

export async function crashClientGo(
  ctx: Context,
  namespace: string,
  settings: ElectionSettings,
  count: number,
  holdMs: number,
): Promise<CrashSamples> {
  const fromKill: number[] = []
  const fromLastWrite: number[] = []
  for (let i = 0; i < count; i++) {
    const name = `crash-${settings.leaseDuration}s-${i}`
    const leader = candidate(ctx, namespace, name, settings)
    const led = await leader.next(event('leader'), 60_000)
    const next = candidate(ctx, namespace, name, settings)
    await next.next(event('started'), 60_000)
    await sleep(Math.max(0, led.t + holdMs + Math.random() * 1000 - wallNow()))
    const killedAt = leader.kill()
    const lastWrite = await renewTime(ctx, namespace, name)
    const took = await next.next(event('leader'), (settings.leaseDuration * 3 + 30) * 1000)
    fromKill.push(took.t - killedAt)
    fromLastWrite.push(took.t - lastWrite)
    await next.stop(10_000)
  }
  return { fromKill, fromLastWrite, expires: settings.leaseDuration }
}
