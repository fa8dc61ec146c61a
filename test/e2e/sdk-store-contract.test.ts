import { afterAll } from 'vitest'
import type { LeaseStore } from '../../sdk/internal.ts'
import { createKubernetesLeaseStore } from '../../sdk/internal.ts'
import { describeLeaseStoreContract } from '../../sdk/testing/lease-store-contract.ts'
import { adminKubeConfig, createNamespace } from './support.ts'

const stores: LeaseStore[] = []

afterAll(async () => {
  await Promise.all(stores.map((store) => store.close?.()))
})

describeLeaseStoreContract('Kubernetes API server', async () => {
  const store = createKubernetesLeaseStore(adminKubeConfig())
  stores.push(store)
  return { store, namespace: await createNamespace('sdk-store') }
})
