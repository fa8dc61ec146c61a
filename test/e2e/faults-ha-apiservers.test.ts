import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { HaControlPlane } from '../../dev/cluster/index.ts'
import { leaseNameFor } from '../../sdk/internal.ts'
import { recordSummary, scaled, type Worker } from '../faults/coordinator.ts'
import { committedAgain, endlessContention, type HaRun, haRun, ROUND_TRIP_MS } from './ha-faults.ts'

// Two API servers over one three-member etcd cluster (HaControlPlane). Workers are pinned to one API
// server each, or go through the front, and contend across them; then one API server is SIGKILLed and
// started again while locks are held and waited on. The checker judges every hold and write.

let plane: HaControlPlane | undefined
let run: HaRun | undefined

beforeAll(async () => {
  plane = await HaControlPlane.start()
}, 180_000)

afterEach(async () => {
  await run?.close()
  run = undefined
  // A test that failed half-way leaves the next one both servers.
  for (const api of plane?.apiServers ?? []) {
    if (!api.process.running) await plane?.startApiServer(api.index)
  }
})

afterAll(async () => {
  await plane?.stop()
})

async function setUp(prefix: string): Promise<{ cp: HaControlPlane; ha: HaRun }> {
  if (!plane) throw new Error('no control plane')
  run = await haRun(plane, prefix)
  return { cp: plane, ha: run }
}

describe('faults: two API servers', () => {
  it(
    'clients on different API servers contend on one lock; a waiter on one wakes on a release through the other',
    async () => {
      const { ha } = await setUp('faults-ha-across')
      const rounds = scaled(3, 30)
      const plan = { ...endlessContention(['one'], 10), rounds }
      // Handover across servers, both ways: the holder writes through one, the waiter watches the other.
      const pairs = [
        [1, 0],
        [0, 1],
      ] as const
      const [workers, ...handoverWorkers] = await Promise.all([
        Promise.all(
          Array.from({ length: 6 }, (_, i) => ha.spawn(`w${i}-api${i % 2}`, i % 2, { contend: plan })),
        ),
        ...pairs.map(([holderOn, waiterOn]) =>
          Promise.all([
            ha.spawn(`holder-api${holderOn}`, holderOn),
            ha.spawn(`waiter-api${waiterOn}`, waiterOn),
          ]),
        ),
      ])
      const handovers: number[] = []
      for (const [i, [holderOn, waiterOn]] of pairs.entries()) {
        const lock = `handover-${holderOn}-${waiterOn}`
        ha.r.resources([lock])
        const [holder, waiter] = handoverWorkers[i] as [Worker, Worker]
        holder.send({ type: 'acquire', lock, options: { expires: 30, timeout: 30, renew: true } })
        await holder.next('acquired')
        waiter.send({ type: 'acquire', lock, options: { expires: 10, timeout: 120 } })
        await waiter.next('acquiring')
        const from = waiter.received.length
        holder.send({ type: 'release', lock })
        const released = await holder.next('released', () => true, 30_000)
        const acquired = await waiter.next('acquired', () => true, 60_000, from)
        handovers.push(Math.round(acquired.at - released.at))
        expect(acquired.at - released.at).toBeLessThanOrEqual(ROUND_TRIP_MS)
        await Promise.all([holder.stop(), waiter.stop()])
      }
      await Promise.all(workers.map((w) => w.next('done', () => true, scaled(150_000, 900_000))))
      recordSummary({ test: 'ha: handover across API servers', handoverMs: handovers })
      const result = ha.r.assertSafe('ha: contention across API servers')
      // Every contender's round committed, plus nothing else (the handover locks were never written).
      expect(result.committed).toBe(6 * rounds)
      expect(ha.r.history().counters.one).toBe(6 * rounds)
    },
    scaled(150_000, 1_000_000),
  )

  it(
    'SIGKILL and restart of an API server while locks are held and waited on',
    async () => {
      const { cp, ha } = await setUp('faults-ha-apikill')
      const locks = ['held-api0', 'held-api1']
      ha.r.resources(locks)
      // A renewing holder on each server, and a waiter for it on the other server.
      const holders = await Promise.all([ha.spawn('holder-api0', 0), ha.spawn('holder-api1', 1)])
      const held = []
      for (const [i, holder] of holders.entries()) {
        holder.send({
          type: 'acquire',
          lock: locks[i] as string,
          options: { expires: 10, timeout: 30, renew: true },
        })
        held.push(await holder.next('acquired'))
      }
      const waiters = await Promise.all([ha.spawn('waiter-api1', 1), ha.spawn('waiter-api0', 0)])
      for (const [i, waiter] of waiters.entries()) {
        waiter.send({ type: 'acquire', lock: locks[i] as string, options: { expires: 10, timeout: 600 } })
        await waiter.next('acquiring')
      }
      // Contention on one lock from both servers and through the front.
      const plan = endlessContention(['busy'], 5)
      const routes = [0, 1, 'front', 'front'] as const
      const contenders = await Promise.all(
        routes.map((route, i) =>
          ha.spawn(`c${i}-${route === 'front' ? 'front' : `api${route}`}`, route, { contend: plan }),
        ),
      )
      await committedAgain(contenders, 60_000)

      const victims = scaled([1], [1, 0, 1])
      const outages: number[] = []
      for (const victim of victims) {
        const survivor = 1 - victim
        const started = performance.now()
        await cp.apiServers[victim]?.process.kill()
        ha.r.fault()
        // While it is down, workers on the other server and through the front still commit.
        await committedAgain(
          contenders.filter((c) => c.config.kubeconfig !== cp.apiServers[victim]?.kubeconfigPath),
          60_000,
          scaled(1, 10),
        )
        await cp.startApiServer(victim)
        outages.push(Math.round(performance.now() - started))
        // Back up, the worker pinned to it commits again.
        await committedAgain(
          contenders.filter((c) => c.config.kubeconfig === cp.apiServers[victim]?.kubeconfigPath),
          120_000,
        )
        // The holder on the surviving server never lost its lock.
        const survivorHolder = holders[survivor] as Worker
        expect(survivorHolder.received.some((m) => m.report.type === 'aborted')).toBe(false)
      }
      // Held locks survived, or were lost with their signal fired (the checker judges which); the
      // lease names the holder unless a waiter took it after the signal.
      const lost = holders.map((h) => h.received.some((m) => m.report.type === 'aborted'))
      for (const [i, holder] of holders.entries()) {
        const lease = await ha.leases.get(ha.ns, leaseNameFor(locks[i] as string))
        if (!lost[i]) {
          expect(lease?.holderIdentity).toBe(held[i]?.report.holder)
          expect((waiters[i] as Worker).received.some((m) => m.report.type === 'acquired')).toBe(false)
        }
        // Waiters recover: after the release (or the loss) the waiter on the other server holds it.
        holder.send({ type: 'release', lock: locks[i] as string })
        const released = await holder.next('released', () => true, 30_000)
        const acquired = await (waiters[i] as Worker).next('acquired', () => true, 60_000)
        if (!lost[i]) expect(acquired.at - released.at).toBeLessThanOrEqual(ROUND_TRIP_MS)
      }
      recordSummary({ test: 'ha: API server kill', outagesMs: outages, holdersLost: lost })
      await Promise.all(contenders.map((c) => c.stop(120_000)))
      await Promise.all([...holders, ...waiters].map((w) => w.stop()))
      const result = ha.r.assertSafe('ha: SIGKILL and restart of an API server')
      expect(result.committed).toBeGreaterThan(2)
    },
    scaled(180_000, 900_000),
  )
})
