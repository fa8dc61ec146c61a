import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createKubernetesLeaseStore, type LeaseStore, leaseNameFor } from '../../sdk/internal.ts'
import { FaultRun, scaled } from '../faults/coordinator.ts'
import { TcpProxy } from '../faults/tcp-proxy.ts'
import { adminKubeConfig, createNamespace, kubeconfigPath, waitFor } from './support.ts'

// Network faults between one worker and the API server, through a TCP proxy in this
// process. Safety must hold, and the proxied holder's signal must fire before its lease can pass on.

let run: FaultRun | undefined
let proxy: TcpProxy | undefined
let store: LeaseStore | undefined
let dir: string | undefined

afterEach(async () => {
  await run?.close()
  await proxy?.close()
  await store?.close?.()
  if (dir) rmSync(dir, { recursive: true, force: true })
  run = undefined
  proxy = undefined
  store = undefined
  dir = undefined
})

async function setUp(prefix: string) {
  const namespace = await createNamespace(prefix)
  const server = new URL(adminKubeConfig().getCurrentCluster()?.server ?? '')
  proxy = await TcpProxy.start({ host: server.hostname, port: Number(server.port) })
  dir = mkdtempSync(join(tmpdir(), 'kube-locks-faults-net-'))
  const proxied = proxy.kubeconfigFor(kubeconfigPath(), join(dir, 'kubeconfig'))
  run = new FaultRun({ kubeconfig: kubeconfigPath(), namespace, retryInterval: 0.2, requestTimeout: 2 })
  store = createKubernetesLeaseStore(adminKubeConfig())
  return { r: run, p: proxy, proxied, namespace, leases: store }
}

describe('faults: network between a worker and the API server', () => {
  it('blackhole: the holder’s signal fires before a waiter takes the lock', async () => {
    const { r, p, proxied, namespace, leases } = await setUp('faults-blackhole')
    r.resources(['b'])
    const options = { expires: 3, timeout: 60, renew: true }
    const [holder, waiter] = await Promise.all([
      r.spawn('proxied-holder', { kubeconfig: proxied }),
      r.spawn('waiter'),
    ])
    holder.send({ type: 'acquire', lock: 'b', options })
    await holder.next('acquired')
    waiter.send({ type: 'acquire', lock: 'b', options })
    await waiter.next('acquiring')
    p.mode = 'blackhole'
    r.fault()
    const lost = await holder.next('aborted', () => true, 30_000)
    expect(lost.report.error.reason).toMatch(/renewal-failed|expired/)
    const taken = await waiter.next('acquired', () => true, 60_000)
    const holds = r.holds()
    const lostAt = holds.find((h) => h.worker === 'proxied-holder')?.end ?? Number.POSITIVE_INFINITY
    const takenAt = holds.find((h) => h.worker === 'waiter')?.start ?? 0
    expect(lostAt).toBeLessThan(takenAt)
    // The holder's late write is refused once the waiter has written.
    waiter.send({ type: 'read', lock: 'b' })
    await waiter.next('read')
    waiter.send({ type: 'commit', lock: 'b' })
    expect((await waiter.next('write')).report.outcome).toBe('committed')
    holder.send({ type: 'read', lock: 'b' })
    await holder.next('read')
    p.mode = 'pass'
    holder.send({ type: 'release', lock: 'b' })
    await holder.next('released', () => true, 30_000)
    expect((await leases.get(namespace, leaseNameFor('b')))?.holderIdentity).toBe(taken.report.holder)
    await Promise.all([holder.stop(), waiter.stop()])
    r.assertSafe('network: blackhole')
  })

  it('reset after the renewal was sent: the outcome is unknown, the signal fires at once', async () => {
    const { r, p, proxied, namespace, leases } = await setUp('faults-reset')
    r.resources(['r'])
    const options = { expires: 4, timeout: 60, renew: true }
    const [holder, waiter] = await Promise.all([
      r.spawn('proxied-holder', { kubeconfig: proxied }),
      r.spawn('waiter'),
    ])
    holder.send({ type: 'acquire', lock: 'r', options })
    const held = await holder.next('acquired')
    p.mode = 'reset'
    r.fault()
    const lost = await holder.next('aborted', () => true, 30_000)
    expect(lost.report.error.reason).toBe('renewal-failed')
    expect(p.resets).toBeGreaterThan(0)
    p.mode = 'pass'
    // The renewal reached the server: the lease is still the holder's, renewed after the acquisition.
    const lease = await leases.get(namespace, leaseNameFor('r'))
    expect(lease?.holderIdentity).toBe(held.report.holder)
    expect(BigInt(lease?.resourceVersion ?? '0')).toBeGreaterThan(BigInt(held.report.token))
    waiter.send({ type: 'acquire', lock: 'r', options })
    await waiter.next('acquired', () => true, 60_000)
    holder.send({ type: 'release', lock: 'r' })
    await holder.next('released', () => true, 30_000)
    await Promise.all([holder.stop(), waiter.stop()])
    r.assertSafe('network: reset after request')
  })

  it('latency on one worker among contending workers: safety holds', async () => {
    const { r, p, proxied } = await setUp('faults-latency')
    p.latencyMs = 150
    p.mode = 'latency'
    r.fault()
    const rounds = scaled(2, 20)
    const plan = {
      locks: ['slow'],
      acquire: { expires: 3, timeout: 120 },
      pauseMs: [5, 50] as const,
      rounds,
    }
    const workers = await Promise.all([
      r.spawn('proxied', { kubeconfig: proxied, contend: plan }),
      ...Array.from({ length: 3 }, (_, i) => r.spawn(`direct${i}`, { contend: plan })),
    ])
    await Promise.all(workers.map((w) => w.next('done', () => true, scaled(120_000, 600_000))))
    await waitFor('workers to exit', () => workers.every((w) => !w.alive), { timeoutMs: 30_000 })
    const result = r.assertSafe('network: latency')
    expect(result.holds).toBe(4 * rounds)
  })
})
