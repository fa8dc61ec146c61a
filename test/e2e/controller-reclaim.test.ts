import { EventsV1Api, type EventsV1Event } from '@kubernetes/client-node'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  ControllerProcess,
  killControllers,
  namespacedArgs,
} from '../../controller/testing/controller-process.ts'
import { managedLease } from '../../controller/testing/leases.ts'
import {
  createKubernetesLeaseStore,
  createLocks,
  formatMicroTime,
  type LeaseRecord,
  type LeaseStore,
  leaseNameFor,
} from '../../sdk/internal.ts'
import { adminKubeConfig, createNamespace, kubeconfigPath, waitFor } from './support.ts'

let store: LeaseStore

beforeEach(() => {
  store = createKubernetesLeaseStore(adminKubeConfig())
})

afterEach(async () => {
  await killControllers()
  await store.close?.()
})

function controllerIn(name: string, namespace: string, ...flags: string[]): ControllerProcess {
  return new ControllerProcess(name, namespacedArgs(kubeconfigPath(), namespace, ...flags))
}

/** Events this controller instance recorded on the lease (others may run against the same cluster). */
async function eventsOn(
  lease: LeaseRecord,
  reportingInstance: string,
  reason?: string,
): Promise<EventsV1Event[]> {
  const api = adminKubeConfig().makeApiClient(EventsV1Api)
  const list = await api.listNamespacedEvent({
    namespace: lease.namespace,
    fieldSelector: `regarding.name=${lease.name}`,
  })
  return list.items.filter(
    (event) =>
      event.regarding?.uid === lease.uid &&
      event.reportingInstance === reportingInstance &&
      (reason === undefined || event.reason === reason),
  )
}

async function freed(namespace: string, name: string): Promise<LeaseRecord | undefined> {
  const lease = await store.get(namespace, name)
  return lease !== undefined && lease.holderIdentity === undefined ? lease : undefined
}

describe('controller reclaim', () => {
  it('frees an expired lock after duration + grace on its own clock, whatever renewTime says', async () => {
    const ns = await createNamespace('ctl-expiry')
    // renewTime long past would look expired at once to a wall-clock rule; renewTime in the future would
    // look alive for decades. Both must be freed exactly when the controller's own clock says so.
    const past = await store.create(
      managedLease(ns, 'past', { duration: 3, renewTime: formatMicroTime(Date.UTC(2000, 0, 1)) }),
    )
    const future = await store.create(
      managedLease(ns, 'future', { duration: 3, renewTime: formatMicroTime(Date.UTC(2100, 0, 1)) }),
    )
    const spawned = performance.now()
    const controller = controllerIn('expiry', ns, '--grace', '1', '--retention', '600')
    await controller.waitForLog('listed leases')
    const listed = performance.now()
    const freedAt = await Promise.all(
      ['past', 'future'].map((name) =>
        waitFor(
          `${name} to be freed`,
          async () => ((await freed(ns, name)) ? performance.now() : undefined),
          {
            timeoutMs: 20_000,
            intervalMs: 20,
          },
        ),
      ),
    )
    for (const at of freedAt) {
      // Not before it could have seen the lease unchanged for 3 s + 1 s grace...
      expect(at - spawned).toBeGreaterThanOrEqual(4_000)
      // ...and promptly after (slack for a shared 2-core machine).
      expect(at - listed).toBeLessThan(4_000 + 3_000)
    }
    const after = await store.get(ns, 'past')
    expect(after?.uid).toBe(past.uid)
    expect(after?.annotations).toEqual({ 'kube-locks.io/name': 'past' })
    expect(after?.labels).toEqual(past.labels)
    expect((await store.get(ns, 'future'))?.uid).toBe(future.uid)

    const expiredEvents = await waitFor('LockExpired and LockReclaimed Events', async () => {
      const all = await eventsOn(past, 'expiry')
      const reasons = all.map((event) => event.reason).sort()
      return reasons.includes('LockExpired') && reasons.includes('LockReclaimed') ? all : undefined
    })
    const expired = expiredEvents.find((event) => event.reason === 'LockExpired')
    expect(expired).toMatchObject({ type: 'Warning', reportingController: 'kube-locks.io/controller' })
    expect(expired?.note).toContain('dead-pod_1_abcdef')
    expect(await controller.metric('kube_locks_expired_total')).toBe(2)
    expect(await controller.metric('kube_locks_reclaimed_total')).toBe(2)
    const log = controller.logged('lock reclaimed: marked free').find((line) => line.lease === 'past')
    expect(log).toMatchObject({ lock: 'past', namespace: ns, holder: 'dead-pod_1_abcdef' })
    expect(typeof log?.resourceVersion).toBe('string')
  })

  it('lets a waiter that started late take an expired lock within a round trip of the reclaim', async () => {
    const ns = await createNamespace('ctl-waiter')
    const leaseName = leaseNameFor('payments')
    await store.create({
      ...managedLease(ns, leaseName, { duration: 6 }),
      annotations: { 'kube-locks.io/name': 'payments' },
    })
    const controller = controllerIn('waiter', ns, '--grace', '0.5', '--retention', '600')
    await controller.waitForLog('listed leases')
    const listed = performance.now()
    // Started ~3 s into the lease's 6 s: by the client rule alone it would wait 6 s + its grace.
    await waitFor('3 s to pass', () => performance.now() - listed >= 3_000 || undefined, { timeoutMs: 5_000 })
    const locks = createLocks({ kubeConfig: adminKubeConfig(), namespace: ns, identity: 'late-waiter' })
    try {
      const started = performance.now()
      const lock = await locks.acquire('payments', { timeout: 15, expires: 5 })
      const waited = performance.now() - started
      await lock.release()
      // The waiter may hear of the reclaim through its watch before the controller's log line
      // arrives through the pipe.
      await controller.waitForLog('lock reclaimed: marked free', () => true, 5_000)
      expect(controller.logged('lock reclaimed: marked free')).toHaveLength(1)
      expect(waited).toBeLessThan(6_000)
    } finally {
      await locks.close()
    }
  })

  it('deletes a lease that stayed free for the retention period, with an Event', async () => {
    const ns = await createNamespace('ctl-gc')
    const lease = await store.create(managedLease(ns, 'reports', { holder: undefined }))
    const controller = controllerIn('gc', ns, '--retention', '2')
    await controller.waitForLog('listed leases')
    const listed = performance.now()
    const goneAt = await waitFor(
      'the free lease to be deleted',
      async () => ((await store.get(ns, 'reports')) === undefined ? performance.now() : undefined),
      { timeoutMs: 15_000, intervalMs: 20 },
    )
    expect(goneAt - listed).toBeGreaterThanOrEqual(1_500)
    const [event] = await waitFor('a LockGarbageCollected Event', async () => {
      const found = await eventsOn(lease, 'gc', 'LockGarbageCollected')
      return found.length > 0 ? found : undefined
    })
    expect(event).toMatchObject({ type: 'Normal', action: 'Delete' })
    expect(await controller.metric('kube_locks_deleted_total')).toBe(1)
  })

  it('aggregates a hot lock into one Event per reason with a growing series count', async () => {
    const ns = await createNamespace('ctl-hot')
    let lease = await store.create(managedLease(ns, 'hot', { duration: 1 }))
    const controller = controllerIn('hot', ns, '--grace', '0.2', '--retention', '600')
    const rounds = 4
    for (let round = 1; round <= rounds; round++) {
      lease = await waitFor(`round ${round}: the lease to be freed`, () => freed(ns, 'hot'), {
        timeoutMs: 15_000,
      })
      if (round < rounds) {
        lease = await store.update({ ...lease, holderIdentity: `crashy_${round}`, leaseDurationSeconds: 1 })
      }
    }
    expect(await controller.metric('kube_locks_expired_total')).toBe(rounds)
    const expired = await waitFor(
      'the LockExpired series to count every expiry',
      async () => {
        const found = await eventsOn(lease, 'hot', 'LockExpired')
        return found.length === 1 && found[0]?.series?.count === rounds ? found : undefined
      },
      { timeoutMs: 25_000, intervalMs: 500 },
    )
    expect(expired).toHaveLength(1)
    expect(await eventsOn(lease, 'hot', 'LockReclaimed')).toHaveLength(1)
  }, 90_000)
})
