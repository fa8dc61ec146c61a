// How the SDK finds its cluster and builds the Kubernetes store. The wire code (HTTP, the store, the
// translation of errors, kubeconfig loading) lives in sdk/kube/; @kubernetes/client-node is loaded only
// to read kubeconfig files, never in a pod that uses its service account.

import { LockApiError } from './errors.ts'
import type { Cluster, ClusterOptions, KubeConfig } from './kube/connection.ts'
import { kubeConfigConnection, kubeConfigNamespace, loadCluster, loadKubeConfig } from './kube/connection.ts'
import type { KubernetesLeaseStore, KubernetesStoreOptions } from './kube/store.ts'
import { createStoreOverConnection } from './kube/store.ts'

export type { Cluster, ClusterOptions, KubeConfigProblem } from './kube/connection.ts'
export { KubeConfigError, loadCluster } from './kube/connection.ts'
export { connectionFailure, MAX_RETRY_AFTER_MS, parseRetryAfter } from './kube/errors.ts'
export { dumpYaml } from './kube/yaml.ts'
export type { KubeConfig }
export { kubeConfigNamespace }
export type KubernetesLeaseStoreOptions = KubernetesStoreOptions
export type {
  EventObject,
  KubernetesLeaseEvent,
  KubernetesLeaseStore,
  KubernetesWatchOptions,
} from './kube/store.ts'

/** Loads configuration like kubectl: `KUBECONFIG`, else `~/.kube/config`, else the in-cluster service account. */
export function loadDefaultKubeConfig(): KubeConfig {
  return loadKubeConfig()
}

/** A store over the API server of `kubeConfig`'s current context. */
export function createKubernetesLeaseStore(
  kubeConfig: KubeConfig,
  options: KubernetesLeaseStoreOptions = {},
): KubernetesLeaseStore {
  const server = kubeConfig.getCurrentCluster()?.server
  if (!server) {
    throw new LockApiError(
      0,
      undefined,
      'the kubeconfig has no current cluster: set a context with a cluster `server`',
    )
  }
  return createStoreOverConnection(() => kubeConfigConnection(kubeConfig), server, options)
}

/** A store over the API server of a {@link Cluster} that {@link loadCluster} found. */
export function createClusterLeaseStore(
  cluster: Cluster,
  options: KubernetesLeaseStoreOptions = {},
): KubernetesLeaseStore {
  return createStoreOverConnection(cluster.connect, cluster.server, options)
}

/** Where `createLocks()` connects when given no `kubeConfig`, by kubectl's rules. */
export interface DefaultCluster {
  readonly store: KubernetesLeaseStore
  /** The namespace the configuration names (kubeconfig context, service account), if any. */
  readonly namespace: string | undefined
}

/**
 * kubectl's rules without a kubeconfig at hand ({@link loadCluster}): a kubeconfig file (`KUBECONFIG`,
 * `~/.kube/config`) wins; else, in a pod, the service account, with no Kubernetes client library loaded.
 */
export function connectByDefault(
  options: KubernetesLeaseStoreOptions = {},
  environment: ClusterOptions = {},
): DefaultCluster {
  const cluster = loadCluster(environment)
  return { store: createClusterLeaseStore(cluster, options), namespace: cluster.namespace }
}
