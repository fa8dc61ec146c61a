import { afterEach, describe, expect, it } from 'vitest'
import {
  ControllerProcess,
  killControllers,
  namespacedArgs,
} from '../../controller/testing/controller-process.ts'
import { createKubernetesLeaseStore, type LeaseStore, leaseNameFor } from '../../sdk/internal.ts'
import { expectControllerLeading } from '../faults/controller-health.ts'
import { FaultRun } from '../faults/coordinator.ts'
import { toLocal } from '../faults/timebase.ts'
import { adminKubeConfig, createNamespace, kubeconfigPath, waitFor } from './support.ts'

// A holder that crashes, and a holder that is paused past its lease and then
// continues. ROUND_TRIP_MS is the allowance for one API round trip plus reporting on a loaded machine.

const ROUND_TRIP_MS = 3_000
const GRACE_S = 1

let run: FaultRun | undefined
let store: LeaseStore | undefined

afterEach(async () => {
  await run?.close()
  run = undefined
  await killControllers()
  await store?.close?.()
  store = undefined
})

async function setUp(prefix: string): Promise<{ r: FaultRun; namespace: string; leases: LeaseStore }> {
  const namespace = await createNamespace(prefix)
  run = new FaultRun({
    kubeconfig: kubeconfigPath(),
    namespace,
    retryInterval: 0.2,
    requestTimeout: 5,
    expiryGrace: GRACE_S,
  })
  store = createKubernetesLeaseStore(adminKubeConfig())
  return { r: run, namespace, leases: store }
}

function controllerIn(namespace: string, ...flags: string[]): ControllerProcess {
  return new ControllerProcess(
    `faults-controller-${namespace}`,
    namespacedArgs(kubeconfigPath(), namespace, '--grace', String(GRACE_S), ...flags),
  )
}

describe('faults: crashed and paused holders', () => {
  it('SIGKILL of the holder: a waiter holds within expires + one round trip', async () => {
    const { r } = await setUp('faults-kill')
    r.resources(['k'])
    const expires = 4
    const [holder, waiter] = await Promise.all([r.spawn('holder'), r.spawn('waiter')])
    holder.send({ type: 'acquire', lock: 'k', options: { expires, timeout: 30 } })
    const held = await holder.next('acquired')
    waiter.send({ type: 'acquire', lock: 'k', options: { expires, timeout: 60 } })
    await waiter.next('acquiring')
    await holder.kill()
    r.fault()
    const taken = await waiter.next('acquired', () => true, 60_000)
    const start = r.holds().find((h) => h.worker === 'holder')?.start ?? 0
    const handover = r.holds().find((h) => h.worker === 'waiter')?.start ?? 0
    // The waiter must watch the lease unchanged for expires + grace on its own clock, which it began
    // after the holder's write; so no earlier than that, and no later than a round trip after.
    expect(handover - start).toBeGreaterThanOrEqual(expires * 1000)
    expect(handover - start).toBeLessThanOrEqual((expires + GRACE_S) * 1000 + ROUND_TRIP_MS)
    expect(BigInt(taken.report.token)).toBeGreaterThan(BigInt(held.report.token))
    waiter.send({ type: 'read', lock: 'k' })
    await waiter.next('read')
    waiter.send({ type: 'commit', lock: 'k' })
    expect((await waiter.next('write')).report.outcome).toBe('committed')
    await waiter.stop()
    r.assertSafe('kill: waiter takes over after expiry')
  })

  it('SIGKILL of the holder with the controller: a waiter started later holds a round trip after the reclaim', async () => {
    const { r, namespace } = await setUp('faults-reclaim')
    r.resources(['k'])
    const expires = 4
    const holder = await r.spawn('holder')
    holder.send({ type: 'acquire', lock: 'k', options: { expires, timeout: 30 } })
    await holder.next('acquired')
    await holder.kill()
    r.fault()
    const controller = controllerIn(namespace, '--retention', '600')
    await expectControllerLeading(controller)
    const waiter = await r.spawn('late-waiter')
    waiter.send({ type: 'acquire', lock: 'k', options: { expires, timeout: 60 } })
    const asked = (await waiter.next('acquiring')).at
    const reclaimed = await controller.waitForLog(
      'lock reclaimed: marked free',
      (line) => line.lease === leaseNameFor('k') || line.lock === 'k',
      60_000,
    )
    const reclaimedAt = performance.now()
    const acquired = await waiter.next('acquired', () => true, 60_000)
    expect(reclaimed).toBeDefined()
    // By the client rule alone the late waiter would watch a full duration + grace from its first read.
    expect(acquired.at - Math.max(asked, reclaimedAt)).toBeLessThanOrEqual(ROUND_TRIP_MS)
    await expectControllerLeading(controller)
    await waiter.stop()
    r.assertSafe('kill: controller reclaims for a late waiter')
  })

  it('SIGSTOP past the lease, then SIGCONT: signal fired, late renew, write and release change nothing', async () => {
    const { r, namespace, leases } = await setUp('faults-stop')
    r.resources(['p'])
    const options = { expires: 3, timeout: 60, renew: true }
    const [holder, waiter] = await Promise.all([r.spawn('holder'), r.spawn('waiter')])
    holder.send({ type: 'acquire', lock: 'p', options })
    const held = await holder.next('acquired')
    holder.send({ type: 'read', lock: 'p' })
    await holder.next('read')
    holder.pause()
    r.fault()
    waiter.send({ type: 'acquire', lock: 'p', options })
    const taken = await waiter.next('acquired', () => true, 60_000)
    waiter.send({ type: 'read', lock: 'p' })
    await waiter.next('read')
    waiter.send({ type: 'commit', lock: 'p' })
    expect((await waiter.next('write')).report.outcome).toBe('committed')
    // The waiter renews, so the resourceVersion moves on; the holder identity changes only by acquisition.
    const before = await leases.get(namespace, leaseNameFor('p'))
    expect(before?.holderIdentity).toBe(taken.report.holder)

    const from = holder.received.length
    holder.resume()
    const aborted = await holder.next('aborted', () => true, 30_000, from)
    expect(aborted.report.error.code).toBe('LOCK_LOST')
    holder.send({ type: 'commit', lock: 'p' })
    const late = await holder.next('write', () => true, 30_000, from)
    expect(late.report).toMatchObject({ outcome: 'fenced', late: true })
    holder.send({ type: 'release', lock: 'p' })
    await holder.next('released', () => true, 30_000, from)
    const after = await leases.get(namespace, leaseNameFor('p'))
    expect(after?.holderIdentity).toBe(taken.report.holder)
    expect(after?.uid).toBe(before?.uid)
    expect(BigInt(taken.report.token)).toBeGreaterThan(BigInt(held.report.token))
    await Promise.all([holder.stop(), waiter.stop()])
    r.assertSafe('stop: paused holder is fenced')
  })

  it('SIGSTOP past the deadline with no one waiting, then SIGCONT: no late renewal reaches the lease', async () => {
    const { r, namespace, leases } = await setUp('faults-stop-late')
    const holder = await r.spawn('holder')
    holder.send({ type: 'acquire', lock: 'late', options: { expires: 3, timeout: 30, renew: true } })
    const acquired = await holder.next('acquired')
    holder.pause()
    r.fault()
    const stoppedAt = holder.stoppedSince ?? performance.now()
    // Every write it sent went out before the stop, so its deadline is at most `validFor` after it.
    // Wait until then (on this clock, a bounded wait, not a guess), but not so long that anyone could
    // take the lease over: a late renewal would still apply.
    const deadline = stoppedAt + acquired.report.validForMs
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline - performance.now()) + 50))
    const from = holder.received.length
    holder.resume()
    const aborted = await holder.next('aborted', () => true, 30_000, from)
    expect(aborted.report.error.code).toBe('LOCK_LOST')
    // Every timer that was overdue at SIGCONT has run, and every write sent until then has settled.
    await holder.settle()
    const writes = holder.received
      .map((m) => m.report)
      .filter((m) => m.type === 'store-write' && m.holder === acquired.report.holder)
    const late = writes.filter((w) => w.type === 'store-write' && toLocal(w.writeSent) >= stoppedAt)
    expect(late, 'writes sent after SIGCONT').toEqual([])
    // The lease is as the holder's last applied write left it. Read before the holder releases (a
    // release may free it either way).
    const applied = writes.filter((w) => w.type === 'store-write' && w.outcome === 'applied').at(-1)
    const after = await leases.get(namespace, leaseNameFor('late'))
    expect(
      after?.resourceVersion,
      `late renewal applied: holder ${after?.holderIdentity}, renewTime ${after?.renewTime}; the holder was told: ${aborted.report.error.message}`,
    ).toBe(applied?.type === 'store-write' ? applied.resourceVersion : undefined)
    await holder.stop()
    r.assertSafe('stop: no late renewal')
  })

  it('SIGSTOP while the controller frees and deletes the lease: the holder never re-creates it', async () => {
    const { r, namespace, leases } = await setUp('faults-stop-gc')
    r.resources(['q'])
    const holder = await r.spawn('holder')
    holder.send({ type: 'acquire', lock: 'q', options: { expires: 3, timeout: 30, renew: true } })
    await holder.next('acquired')
    const lease = await leases.get(namespace, leaseNameFor('q'))
    expect(lease).toBeDefined()
    holder.pause()
    r.fault()
    const controller = controllerIn(namespace, '--retention', '1')
    await expectControllerLeading(controller)
    await waitFor(
      'the controller to delete the paused holder’s lease',
      async () => (await leases.get(namespace, leaseNameFor('q'))) === undefined,
      { timeoutMs: 60_000, intervalMs: 100 },
    )
    await expectControllerLeading(controller)
    await controller.stop()
    const from = holder.received.length
    holder.resume()
    const aborted = await holder.next('aborted', () => true, 30_000, from)
    expect(aborted.report.error.code).toBe('LOCK_LOST')
    holder.send({ type: 'release', lock: 'q' })
    await holder.next('released', () => true, 30_000, from)
    // Its renewal timer was overdue when it continued: whatever it sent, the lease stays deleted.
    await holder.stop()
    expect(await leases.get(namespace, leaseNameFor('q'))).toBeUndefined()
    r.assertSafe('stop: deleted lease is not re-created')
  })
})
