import { randomBytes } from 'node:crypto'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ControllerProcess, killControllers } from '../../controller/testing/controller-process.ts'
import { foreignLease, managedLease } from '../../controller/testing/leases.ts'
import { createKubernetesLeaseStore, type LeaseRecord, type LeaseStore } from '../../sdk/internal.ts'
import { adminKubeConfig, createNamespace, kubeconfigPath, waitFor } from './support.ts'

let store: LeaseStore
const cleanup: Array<() => Promise<unknown>> = []

beforeEach(() => {
  store = createKubernetesLeaseStore(adminKubeConfig())
})

afterEach(async () => {
  await killControllers()
  for (const step of cleanup.splice(0)) await step().catch(() => {})
  await store.close?.()
})

/** A node heartbeat lease as the kubelet writes it, in the real kube-node-lease namespace. */
async function nodeHeartbeat(): Promise<LeaseRecord> {
  const lease = await store.create(foreignLease('kube-node-lease', `node-${randomBytes(4).toString('hex')}`))
  cleanup.push(() => store.delete(lease.namespace, lease.name, lease))
  return lease
}

async function unchanged(lease: LeaseRecord): Promise<void> {
  const now = await store.get(lease.namespace, lease.name)
  expect(now, `${lease.namespace}/${lease.name} must still exist`).toBeDefined()
  expect(now?.resourceVersion, `${lease.namespace}/${lease.name} must be untouched`).toBe(
    lease.resourceVersion,
  )
  expect(now?.holderIdentity).toBe(lease.holderIdentity)
}

function touchedNames(controller: ControllerProcess): unknown[] {
  return controller.logs.map((line) => line.lease).filter((name) => name !== undefined)
}

describe('controller scope', () => {
  it('with --namespaces, acts only on kube-locks leases in those namespaces', async () => {
    const ns = await createNamespace('ctl-scope')
    const outside = await createNamespace('ctl-outside')
    const heartbeat = await nodeHeartbeat()
    const scheduler = await store.create(foreignLease(ns, 'kube-scheduler'))
    const helm = await store.create(
      foreignLease(ns, 'helm-owned', { 'app.kubernetes.io/managed-by': 'Helm' }),
    )
    await store.create(managedLease(ns, 'orders', { duration: 1 }))
    const outOfScope = await store.create(managedLease(outside, 'orders', { duration: 1 }))

    const controller = new ControllerProcess('scope-explicit', [
      '--kubeconfig',
      kubeconfigPath(),
      '--namespaces',
      `${ns},kube-node-lease`,
      '--grace',
      '0.5',
      '--retention',
      '1',
      '--listen',
      '127.0.0.1:0',
      '--leader-election-namespace',
      ns,
    ])
    // Freed after 1.5 s, then deleted 1 s later: the controller acted in this namespace.
    await waitFor(
      'the expired kube-locks lease to be freed and then garbage-collected',
      async () => ((await store.get(ns, 'orders')) === undefined ? true : undefined),
      { timeoutMs: 30_000 },
    )
    await controller.waitForLog(
      'lease garbage-collected',
      (line) => line.lease === 'orders' && line.namespace === ns,
    )

    await unchanged(heartbeat)
    await unchanged(scheduler)
    await unchanged(helm)
    await unchanged(outOfScope)
    // Its view holds only kube-locks leases in scope: its own leader-election lock.
    expect(await controller.metric('kube_locks_leases', { state: 'held' })).toBe(1)
    expect(await controller.metric('kube_locks_leases', { state: 'free' })).toBe(0)
    expect(touchedNames(controller)).not.toContain(heartbeat.name)
    expect(touchedNames(controller)).not.toContain('kube-scheduler')
    expect(touchedNames(controller)).not.toContain('helm-owned')
    expect(controller.logs.filter((line) => line.namespace === outside)).toEqual([])
  })

  it('with no namespaces, acts in every namespace but never on node heartbeats or leader-election leases', async () => {
    const a = await createNamespace('ctl-all-a')
    const b = await createNamespace('ctl-all-b')
    const heartbeat = await nodeHeartbeat()
    const scheduler = await store.create(foreignLease(a, 'kube-controller-manager'))
    await store.create(managedLease(a, 'orders', { duration: 1 }))
    await store.create(managedLease(b, 'invoices', { duration: 1 }))

    const controller = new ControllerProcess('scope-all', [
      '--kubeconfig',
      kubeconfigPath(),
      '--grace',
      '0.5',
      '--listen',
      '127.0.0.1:0',
      '--leader-election-namespace',
      a,
    ])
    await controller.waitForLog('listed leases', (line) => line.namespace === '*')
    for (const [namespace, name] of [
      [a, 'orders'],
      [b, 'invoices'],
    ] as const) {
      await waitFor(
        `${namespace}/${name} to be marked free`,
        async () => {
          const lease = await store.get(namespace, name)
          return lease !== undefined && lease.holderIdentity === undefined ? lease : undefined
        },
        { timeoutMs: 20_000 },
      )
    }
    await unchanged(heartbeat)
    await unchanged(scheduler)
    expect(touchedNames(controller)).not.toContain(heartbeat.name)
    expect(touchedNames(controller)).not.toContain('kube-controller-manager')
  })
})
