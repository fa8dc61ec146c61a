// On the real API server: kube-locks never writes a lease it does not manage, and keeps the fields
// of the leases it does manage that it does not own (ownerReferences, finalizers, foreign labels).
import { CoordinationV1Api, type V1Lease } from '@kubernetes/client-node'
import { describe, expect, it } from 'vitest'
import { createLocks, LeaseNotManagedError } from '../../sdk/internal.ts'
import { adminKubeConfig, createNamespace, waitFor } from './support.ts'

const leases = () => adminKubeConfig().makeApiClient(CoordinationV1Api)

describe('leases of other components', () => {
  it('an unlabelled lease with an old renewTime and no holder is left byte-for-byte unchanged', async () => {
    const namespace = await createNamespace('foreign')
    const api = leases()
    const created = await api.createNamespacedLease({
      namespace,
      body: {
        metadata: { name: 'kube-scheduler', labels: { component: 'scheduler' } },
        spec: { leaseDurationSeconds: 1, renewTime: '2001-01-01T00:00:00.000000Z' as unknown as Date },
      },
    })
    const before = JSON.stringify(created)
    const locks = createLocks({ kubeConfig: adminKubeConfig(), namespace, identity: 'e2e' })
    try {
      await expect(locks.acquire('kube-scheduler', { timeout: 0 })).rejects.toBeInstanceOf(
        LeaseNotManagedError,
      )
      const waiting = locks.acquire('kube-scheduler', { timeout: 5 }).catch((error: unknown) => error)
      expect(await waiting).toBeInstanceOf(LeaseNotManagedError)
    } finally {
      await locks.close()
    }
    const after = await api.readNamespacedLease({ name: 'kube-scheduler', namespace })
    expect(after.metadata?.resourceVersion).toBe(created.metadata?.resourceVersion)
    expect(JSON.stringify(after)).toBe(before)
  })

  it('ownerReferences, finalizers and foreign labels survive acquire, renewal and release', async () => {
    const namespace = await createNamespace('foreign')
    const api = leases()
    const first = createLocks({ kubeConfig: adminKubeConfig(), namespace, identity: 'e2e' })
    const lock = await first.acquire('owned', { expires: 3, renew: true })
    const ownerReferences = [
      { apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: 'e5c4c7a4-1111-4222-8333-444455556666' },
    ]
    try {
      // Another tool adds fields kube-locks does not own. That write changes the lease, so the
      // holder's next renewal loses its compare-and-swap: a foreign write looks like a lost lock.
      const current = await api.readNamespacedLease({ name: lock.leaseName, namespace })
      const body: V1Lease = {
        ...current,
        metadata: {
          ...current.metadata,
          ownerReferences,
          finalizers: ['example.com/keep'],
          labels: { ...current.metadata?.labels, 'gitops/synced': 'true' },
        },
      }
      await api.replaceNamespacedLease({ name: lock.leaseName, namespace, body })
      await waitFor('the holder to see its lease changed', () => lock.signal.aborted, { timeoutMs: 5000 })
      await lock.release()
      // The release re-reads the lease, which still names this acquisition, and frees it.
      const freed = await api.readNamespacedLease({ name: lock.leaseName, namespace })
      expect(freed.spec?.holderIdentity ?? '').toBe('')
      expect(freed.metadata?.ownerReferences).toMatchObject(ownerReferences)
      expect(freed.metadata?.finalizers).toEqual(['example.com/keep'])
      expect(freed.metadata?.labels?.['gitops/synced']).toBe('true')

      // A new holder takes it over, renews and releases: the fields stay.
      const again = await first.acquire('owned', { expires: 3, renew: true })
      const renewedFrom = again.fencingToken
      await waitFor(
        'a renewal',
        async () => {
          const seen = await api.readNamespacedLease({ name: again.leaseName, namespace })
          return seen.metadata?.resourceVersion !== renewedFrom ? seen : undefined
        },
        { timeoutMs: 5000 },
      )
      await again.release()
      const last = await api.readNamespacedLease({ name: again.leaseName, namespace })
      expect(last.spec?.holderIdentity ?? '').toBe('')
      expect(last.metadata?.ownerReferences).toMatchObject(ownerReferences)
      expect(last.metadata?.finalizers).toEqual(['example.com/keep'])
      expect(last.metadata?.labels?.['gitops/synced']).toBe('true')
    } finally {
      await first.close()
      // The finalizer would keep the lease (and the namespace) from ever being deleted.
      const current = await api.readNamespacedLease({ name: lock.leaseName, namespace })
      await api.replaceNamespacedLease({
        name: lock.leaseName,
        namespace,
        body: { ...current, metadata: { ...current.metadata, finalizers: [] } },
      })
    }
  })
})
