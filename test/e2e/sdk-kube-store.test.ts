import { afterAll, describe, expect, it } from 'vitest'
import type { KubernetesLeaseEvent, KubernetesLeaseStore, LeaseRecord } from '../../sdk/internal.ts'
import {
  createKubernetesLeaseStore,
  formatMicroTime,
  LockApiError,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
} from '../../sdk/internal.ts'
import { adminKubeConfig, createNamespace, waitFor } from './support.ts'

// What the controller and the CLI read through the SDK's store, against the real API server: watches
// across namespaces and of one lease, leases as the server sent them, and Events.

const store: KubernetesLeaseStore = createKubernetesLeaseStore(adminKubeConfig())
afterAll(() => store.close?.())

const draft = (namespace: string, name: string, run: string) => ({
  namespace,
  name,
  holderIdentity: 'holder-1',
  leaseDurationSeconds: 20,
  acquireTime: formatMicroTime(Date.now()),
  renewTime: formatMicroTime(Date.now()),
  leaseTransitions: 0,
  labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, 'kube-store-test': run },
  annotations: {},
})

describe('the Kubernetes store', () => {
  it('watches every namespace with a selector, and one lease by field selector, with the objects as sent', async () => {
    const [a, b] = await Promise.all([createNamespace('kube-store'), createNamespace('kube-store')])
    const run = a
    const selector = `kube-store-test=${run}`
    const start = await store.list(undefined, { labelSelector: selector })
    expect(start.items).toEqual([])
    const stop = new AbortController()
    const everywhere: KubernetesLeaseEvent[] = []
    const one: KubernetesLeaseEvent[] = []
    const watches = [
      store.watch(
        undefined,
        {
          resourceVersion: start.resourceVersion,
          labelSelector: selector,
          objects: true,
          signal: stop.signal,
        },
        (event) => everywhere.push(event),
      ),
      store.watch(
        b,
        { resourceVersion: start.resourceVersion, fieldSelector: 'metadata.name=two', signal: stop.signal },
        (event) => one.push(event),
      ),
    ]
    try {
      await store.create(draft(a, 'one', run))
      await store.create(draft(b, 'two', run))
      await store.create(draft(b, 'three', run))
      const changes = () => everywhere.filter((event) => event.type === 'ADDED')
      await waitFor('the watches to see the leases', () => changes().length === 3 && one.length > 0)
      expect(
        changes().map((event) => event.type !== 'BOOKMARK' && `${event.lease.namespace}/${event.lease.name}`),
      ).toEqual([`${a}/one`, `${b}/two`, `${b}/three`])
      const [first] = changes()
      const object = first?.type === 'ADDED' ? first.object : undefined
      // As sent: MicroTime keeps its six digits, and the server's fields are there.
      expect(object?.spec?.renewTime).toMatch(/\.\d{6}Z$/)
      expect(object?.metadata?.managedFields).toBeDefined()
      const names = one.flatMap((event) => (event.type === 'BOOKMARK' ? [] : [event.lease.name]))
      expect(names).toEqual(['two'])
      expect(one.every((event) => event.type === 'BOOKMARK' || !('object' in event))).toBe(true)
      const page = await store.list(undefined, { labelSelector: selector, limit: 2, objects: true })
      expect(page.items).toHaveLength(2)
      expect(page.objects).toHaveLength(2)
      expect(page.continue).toBeTruthy()
      const rest = await store.list(undefined, { labelSelector: selector, limit: 2, continue: page.continue })
      expect([...page.items, ...rest.items].map((item: LeaseRecord) => item.name).sort()).toEqual([
        'one',
        'three',
        'two',
      ])
    } finally {
      stop.abort()
      await Promise.allSettled(watches)
    }
    expect((await store.getObject(a, 'one'))?.spec?.acquireTime).toMatch(/\.\d{6}Z$/)
    expect(await store.getObject(a, 'none')).toBeUndefined()
  })

  it('creates Events and patches their series; a missing Event is a LockApiError of status 404', async () => {
    const namespace = await createNamespace('kube-store')
    const lease = await store.create(draft(namespace, 'evented', namespace))
    const now = formatMicroTime(Date.now())
    const event = await store.createEvent(namespace, {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { name: 'evented.1', namespace },
      eventTime: now,
      reason: 'LockExpired',
      type: 'Warning',
      action: 'Reclaim',
      note: 'test',
      regarding: {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        namespace,
        name: 'evented',
        uid: lease.uid,
      },
      reportingController: 'kube-locks.io/controller',
      reportingInstance: 'test',
    })
    expect((event.metadata as { name?: string }).name).toBe('evented.1')
    const patched = await store.patchEvent(namespace, 'evented.1', {
      series: { count: 2, lastObservedTime: now },
    })
    expect(patched.series).toMatchObject({ count: 2 })
    const missing = await store
      .patchEvent(namespace, 'gone', { series: null })
      .catch((error: unknown) => error)
    expect(missing).toBeInstanceOf(LockApiError)
    expect(missing).toMatchObject({ status: 404 })
  })
})
