import { randomBytes } from 'node:crypto'
import { KubeConfig } from '@kubernetes/client-node'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { ControlPlane } from '../../dev/cluster/index.ts'
import {
  createKubernetesLeaseStore,
  formatMicroTime,
  type LeaseStore,
  leaseNameFor,
} from '../../sdk/internal.ts'
import { FaultRun, recordSummary, scaled, type Worker } from '../faults/coordinator.ts'

// Restarts and watch history expiry, on a control plane of this file's own: etcd with fsync
// (acknowledged writes must survive a crash) and compaction every few seconds (watches resuming from an
// old resourceVersion get 410 Gone). ROUND_TRIP_MS is the allowance for one API round trip plus reporting on a loaded machine.

const ROUND_TRIP_MS = 3_000

let plane: ControlPlane | undefined
let store: LeaseStore | undefined
let run: FaultRun | undefined

beforeAll(async () => {
  plane = await ControlPlane.start({ fsync: true, etcdCompaction: '3s' })
  const config = new KubeConfig()
  config.loadFromFile(plane.kubeconfigPath)
  store = createKubernetesLeaseStore(config)
}, 180_000)

afterEach(async () => {
  await run?.close()
  run = undefined
})

afterAll(async () => {
  await store?.close?.()
  await plane?.stop()
})

async function setUp(
  name: string,
): Promise<{ cp: ControlPlane; leases: LeaseStore; r: FaultRun; ns: string }> {
  if (!plane || !store) throw new Error('no control plane')
  const ns = `${name}-${randomBytes(3).toString('hex')}`
  const created = await plane.request('POST', '/api/v1/namespaces', { metadata: { name: ns } })
  expect(created.status).toBe(201)
  run = new FaultRun({
    kubeconfig: plane.kubeconfigPath,
    namespace: ns,
    retryInterval: 0.2,
    requestTimeout: 5,
  })
  return { cp: plane, leases: store, r: run, ns }
}

async function leaseVersion(leases: LeaseStore, ns: string, lock: string): Promise<bigint> {
  const lease = await leases.get(ns, leaseNameFor(lock))
  if (!lease) throw new Error(`lease of ${lock} is gone`)
  return BigInt(lease.resourceVersion)
}

describe('faults: control-plane restarts and watch history expiry', () => {
  it(
    'SIGKILL and restart of kube-apiserver and etcd while locks are held and waited on',
    async () => {
      const { cp, leases, r, ns } = await setUp('faults-restart')
      r.resources(['held'])
      // A long-held lock that renews through the restarts, and waiters that must not get it meanwhile.
      // Its lease lasts longer than the whole test: even if the holder is told it lost the lock (a
      // renewal with an unknown outcome during the etcd outage), no waiter may take it before the
      // release, and the release still frees it (it names this acquisition). So what follows holds
      // whether or not the holder was told.
      const holder = await r.spawn('holder')
      const heldExpires = scaled(120, 600)
      holder.send({
        type: 'acquire',
        lock: 'held',
        options: { expires: heldExpires, timeout: 30, renew: true },
      })
      const held = await holder.next('acquired')
      const waiters = await Promise.all([r.spawn('waiter0'), r.spawn('waiter1')])
      for (const w of waiters) {
        w.send({ type: 'acquire', lock: 'held', options: { expires: 10, timeout: 600 } })
        await w.next('acquiring')
      }
      // Contention across the restarts on another lock.
      const plan = {
        locks: ['busy'],
        acquire: { expires: 5, timeout: 120 },
        pauseMs: [5, 50] as const,
        rounds: 1_000_000,
      }
      const contenders = await Promise.all(
        Array.from({ length: 4 }, (_, i) => r.spawn(`c${i}`, { contend: plan })),
      )
      await contenders[0]?.next('write', () => true, 60_000)

      const cycles = scaled(1, 3)
      for (let cycle = 0; cycle < cycles; cycle++) {
        for (const restart of ['apiserver', 'etcd', 'both'] as const) {
          const before = await leaseVersion(leases, ns, 'held')
          if (restart === 'apiserver') await cp.restartApiserver('kill')
          else if (restart === 'etcd') await cp.restartEtcd('kill')
          else {
            await Promise.all([cp.apiserver.kill(), cp.etcd.kill()])
            await cp.startEtcd()
            await cp.startApiserver()
          }
          r.fault()
          // With fsync, every acknowledged write of the held lock survives the crash.
          expect(await leaseVersion(leases, ns, 'held')).toBeGreaterThanOrEqual(before)
          // Contention resumes: a new write commits after the restart.
          const mark = contenders.map((c) => c.received.length)
          await Promise.race(
            contenders.map((c, i) => c.next('write', (w) => w.outcome === 'committed', 120_000, mark[i])),
          )
        }
      }
      // The held lock survived and still names its holder, told or not (see above); no waiter got it.
      const lease = await leases.get(ns, leaseNameFor('held'))
      expect(lease).toBeDefined()
      const holderLost = holder.received.some((m) => m.report.type === 'aborted')
      expect(lease?.holderIdentity).toBe(held.report.holder)
      for (const w of waiters) expect(w.received.some((m) => m.report.type === 'acquired')).toBe(false)
      // Waiters recover: after the release one of them holds the lock within a round trip.
      const from = waiters.map((w) => w.received.length)
      holder.send({ type: 'release', lock: 'held' })
      const released = await holder.next('released', () => true, 30_000)
      const first = await Promise.race(
        waiters.map((w, i) => w.next('acquired', () => true, 60_000, from[i]).then((a) => ({ w, a }))),
      )
      expect(first.a.at - released.at).toBeLessThanOrEqual(ROUND_TRIP_MS)
      recordSummary({
        test: 'restarts: held lock',
        holderLost,
        handoverMs: Math.round(first.a.at - released.at),
      })
      await Promise.all(contenders.map((c) => c.stop(120_000)))
      await Promise.all(waiters.map((w: Worker) => w.kill()))
      r.assertSafe('restarts: kube-apiserver and etcd')
    },
    scaled(300_000, 900_000),
  )

  it(
    'watch history expiry: a waiter whose watch resumes past compaction (410 Gone) still wakes',
    async () => {
      const { cp, leases, r, ns } = await setUp('faults-compaction')
      r.resources(['c'])
      const [holder, waiter] = await Promise.all([r.spawn('holder'), r.spawn('waiter')])
      holder.send({ type: 'acquire', lock: 'c', options: { expires: 60, timeout: 30, renew: true } })
      await holder.next('acquired')
      waiter.send({ type: 'acquire', lock: 'c', options: { expires: 10, timeout: 600 } })
      await waiter.next('acquiring')
      // Move the store's revision on, past several compactions, with writes in another namespace (the
      // waiter's watch sees none of them), then cut every watch: they must resume from a compacted
      // revision.
      const other = `${ns}-churn`
      expect((await cp.request('POST', '/api/v1/namespaces', { metadata: { name: other } })).status).toBe(201)
      const time = formatMicroTime(Date.now())
      let record = await leases.create({
        namespace: other,
        name: 'churn',
        holderIdentity: 'churn',
        leaseDurationSeconds: 60,
        acquireTime: time,
        renewTime: time,
        leaseTransitions: 0,
        labels: {},
        annotations: {},
      })
      const first = record.resourceVersion
      const until = performance.now() + 5_000
      while (performance.now() < until) {
        record = await leases.update({ ...record, leaseTransitions: (record.leaseTransitions ?? 0) + 1 })
      }
      await cp.restartApiserver('kill')
      r.fault()
      const compacted = await cp.request(
        'GET',
        `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases?watch=1&resourceVersion=${first}&timeoutSeconds=1`,
      )
      expect(compacted.body).toMatch(/too old resource version|Expired|410/)
      const from = waiter.received.length
      holder.send({ type: 'release', lock: 'c' })
      const released = await holder.next('released', () => true, 30_000)
      const acquired = await waiter.next('acquired', () => true, 60_000, from)
      expect(acquired.at - released.at).toBeLessThanOrEqual(ROUND_TRIP_MS)
      await Promise.all([holder.stop(), waiter.stop()])
      r.assertSafe('compaction: waiter wakes after 410 Gone')
    },
    scaled(180_000, 300_000),
  )
})
