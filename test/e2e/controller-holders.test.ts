import { EventsV1Api, type EventsV1Event } from '@kubernetes/client-node'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  ControllerProcess,
  killControllers,
  namespacedArgs,
} from '../../controller/testing/controller-process.ts'
import {
  createKubernetesLeaseStore,
  HOLDS_ANNOTATION,
  holderSelector,
  isHolderRecordOf,
  type LeaseRecord,
  type LeaseStore,
  leaseNameFor,
} from '../../sdk/internal.ts'
import { toLocal } from '../faults/timebase.ts'
import { killSdkWorkers, startSdkWorker } from './fixtures/sdk-worker-process.ts'
import { adminKubeConfig, createNamespace, kubeconfigPath, waitFor } from './support.ts'

// The controller and the holder records of a semaphore, on the real API server: the record of a
// holder that was killed is freed once the controller has seen it unchanged for its duration plus the
// grace (with Events), which lets a waiter that started late take the slot at once, and deleted once
// it stayed free for the retention; the record of a live holder beside it is never written.

const GRACE_S = 1
const RETENTION_S = 2
/** One API round trip plus reporting on a loaded machine. */
const ROUND_TRIP_MS = 3_000
const INSTANCE = 'holders'

let store: LeaseStore

beforeEach(() => {
  store = createKubernetesLeaseStore(adminKubeConfig())
})

afterEach(async () => {
  await killControllers()
  await killSdkWorkers()
  await store.close?.()
})

/** Events this controller instance recorded on the lease (others may run against the same cluster). */
async function eventsOn(lease: LeaseRecord): Promise<EventsV1Event[]> {
  const api = adminKubeConfig().makeApiClient(EventsV1Api)
  const list = await api.listNamespacedEvent({
    namespace: lease.namespace,
    fieldSelector: `regarding.name=${lease.name}`,
  })
  return list.items.filter(
    (event) => event.regarding?.uid === lease.uid && event.reportingInstance === INSTANCE,
  )
}

describe('controller and holder records', () => {
  it('frees the expired record of a killed semaphore holder, lets a late waiter in, deletes the record after the retention; a live record is never touched', async () => {
    const ns = await createNamespace('ctl-holders')
    const lock = 'partner-api'
    const leaseName = leaseNameFor(lock)
    const expires = 6
    // The live holder renews every second; the victim never will again.
    const live = startSdkWorker(ns, { lock, hold: true, acquire: { limit: 2, expires: 3, renew: true } })
    const victim = startSdkWorker(ns, { lock, hold: true, acquire: { limit: 2, expires } })
    // Loaded now, let in later: it must first see the victim's record well after the controller did.
    const waiter = startSdkWorker(ns, { lock, hold: true, gate: true, acquire: { limit: 2, timeout: 30 } })
    const [liveHeld, victimHeld] = await Promise.all([live.next('acquired'), victim.next('acquired')])
    await waiter.next('ready', 60_000)
    victim.child.kill('SIGKILL')
    await victim.exit
    const records = (await store.list(ns, { labelSelector: holderSelector(leaseName) })).items
    const dead = records.find((r) => r.name === victimHeld.leaseName)
    const alive = records.find((r) => r.name === liveHeld.leaseName)
    expect(dead?.holderIdentity).toBe(victimHeld.holder)
    expect(alive?.holderIdentity).toBe(liveHeld.holder)
    expect(records.every((r) => isHolderRecordOf(r, leaseName))).toBe(true)

    const spawned = performance.now()
    const controller = new ControllerProcess(
      INSTANCE,
      namespacedArgs(kubeconfigPath(), ns, '--grace', String(GRACE_S), '--retention', String(RETENTION_S)),
    )
    const listedLine = await controller.waitForLog('listed leases')
    const listed = performance.now()
    expect(listedLine.leases).toBeGreaterThanOrEqual(3)
    // By the client rule alone, the waiter would count the victim out only `expires + grace` after it
    // first saw the record: 3 s after the controller did, later than the controller frees it.
    await waitFor('3 s to pass', () => performance.now() - listed >= 3_000 || undefined, { timeoutMs: 5_000 })
    const asked = performance.now()
    waiter.send('go')

    const freedAt = await waitFor(
      'the dead holder’s record to be freed',
      async () =>
        (await store.get(ns, dead?.name ?? ''))?.holderIdentity === undefined ? performance.now() : undefined,
      { timeoutMs: (expires + GRACE_S) * 1000 + 10_000, intervalMs: 20 },
    )
    // Not before the controller could have seen it unchanged for its duration plus the grace.
    expect(freedAt - spawned).toBeGreaterThanOrEqual((expires + GRACE_S) * 1000)
    expect(freedAt - listed).toBeLessThanOrEqual((expires + GRACE_S) * 1000 + ROUND_TRIP_MS)
    const reclaimed = await controller.waitForLog(
      'lock reclaimed: marked free',
      (line) => line.lease === dead?.name,
    )
    expect(reclaimed).toMatchObject({ lock, namespace: ns, holder: victimHeld.holder })
    const freed = await store.get(ns, dead?.name ?? '')
    // Still the lock's record, held by nobody: it no longer counts as a holder.
    expect(freed?.annotations[HOLDS_ANNOTATION]).toBe(leaseName)
    expect(freed?.uid).toBe(dead?.uid)

    const taken = await waiter.next('acquired', 30_000)
    const takenAt = toLocal(taken.mono)
    expect(takenAt - freedAt).toBeLessThanOrEqual(ROUND_TRIP_MS)
    expect(takenAt - asked).toBeLessThan((expires + GRACE_S) * 1000)

    const goneAt = await waitFor(
      'the freed record to be deleted',
      async () => ((await store.get(ns, dead?.name ?? '')) === undefined ? performance.now() : undefined),
      { timeoutMs: RETENTION_S * 1000 + 10_000, intervalMs: 20 },
    )
    // The retention counts from when the controller saw the record free, after the write that freed it.
    expect(goneAt - freedAt).toBeGreaterThanOrEqual(RETENTION_S * 1000 - 500)
    const events = await waitFor('LockExpired, LockReclaimed and LockGarbageCollected Events', async () => {
      const found = dead === undefined ? [] : await eventsOn(dead)
      const reasons = new Set(found.map((event) => event.reason))
      return ['LockExpired', 'LockReclaimed', 'LockGarbageCollected'].every((r) => reasons.has(r))
        ? found
        : undefined
    })
    const expired = events.find((event) => event.reason === 'LockExpired')
    expect(expired).toMatchObject({ type: 'Warning', reportingController: 'kube-locks.io/controller' })
    expect(expired?.note).toContain(victimHeld.holder)
    expect(events.find((event) => event.reason === 'LockGarbageCollected')).toMatchObject({
      type: 'Normal',
      action: 'Delete',
    })
    expect(await controller.metric('kube_locks_expired_total')).toBe(1)
    expect(await controller.metric('kube_locks_reclaimed_total')).toBe(1)

    // The live record: renewed by its holder all along and never written by the controller — a write
    // would have made the holder's next renewal fail and its signal fire.
    expect(live.events.filter((e) => e.event === 'aborted')).toEqual([])
    const now = await store.get(ns, alive?.name ?? '')
    expect(now?.uid).toBe(alive?.uid)
    expect(now?.holderIdentity).toBe(liveHeld.holder)
    expect(alive === undefined ? ['no record'] : await eventsOn(alive)).toEqual([])
    const acts = ['lock expired', 'lock reclaimed: marked free', 'lease garbage-collected']
    const onLive = controller.logs.filter((line) => acts.includes(line.msg) && line.lease === alive?.name)
    expect(onLive).toEqual([])
    for (const worker of [live, waiter]) worker.send('close')
    await Promise.all([live.exitsWithin(20_000), waiter.exitsWithin(20_000)])
  }, 90_000)
})
