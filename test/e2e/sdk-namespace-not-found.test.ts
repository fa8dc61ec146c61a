/**
 * A lock in a namespace that does not exist: the API server answers the create with 404 whose Status
 * names the namespace (`details.kind: namespaces`), and the SDK reports NamespaceNotFoundError rather
 * than "lease … does not exist".
 */
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { createKubernetesLeaseStore, createLocks, NamespaceNotFoundError } from '../../sdk/internal.ts'
import { adminKubeConfig, apiRequest, createNamespace } from './support.ts'

const missing = () => `does-not-exist-${randomBytes(4).toString('hex')}`

describe('a namespace that does not exist', () => {
  it('the API server answers a lease create with 404 naming the namespace', async () => {
    const namespace = missing()
    const response = await apiRequest('POST', `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`, {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'x' },
      spec: {},
    })
    expect(response.status).toBe(404)
    expect(response.body.reason).toBe('NotFound')
    expect(response.body.details).toEqual({ name: namespace, kind: 'namespaces' })
  })

  it('acquire rejects with NamespaceNotFoundError naming the namespace', async () => {
    const namespace = missing()
    await using locks = createLocks({ kubeConfig: adminKubeConfig(), namespace })
    const error = await locks.acquire('x', { timeout: 0 }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(NamespaceNotFoundError)
    expect((error as NamespaceNotFoundError).namespace).toBe(namespace)
    expect((error as Error).message).toContain(`namespace \`${namespace}\` does not exist`)
  })

  it('a missing lease in an existing namespace is still a missing lease', async () => {
    const namespace = await createNamespace('nsnf')
    const store = createKubernetesLeaseStore(adminKubeConfig())
    try {
      expect(await store.get(namespace, 'absent')).toBeUndefined()
      const error = await store
        .delete(namespace, 'absent', { uid: 'u', resourceVersion: '1' })
        .catch((e: unknown) => e)
      expect((error as Error).name).toBe('LeaseNotFoundError')
    } finally {
      await store.close?.()
    }
  })
})
