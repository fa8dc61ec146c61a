// How the SDK finds its cluster and builds the Kubernetes store. The wire code (HTTP, the store, the
// translation of errors) lives in sdk/kube/; @kubernetes/client-node is loaded only to read kubeconfig
// files, never in a pod that uses its service account.

import { LockApiError } from './errors.ts'
import type { KubeConfig } from './kube/connection.ts'
import {
  hasKubeConfigFile,
  type InClusterOptions,
  inClusterConnection,
  isInCluster,
  kubeConfigConnection,
  kubeConfigNamespace,
  loadKubeConfig,
} from './kube/connection.ts'
import type { Connection } from './kube/http.ts'
import type { KubernetesLeaseStore, KubernetesStoreOptions } from './kube/store.ts'
import { createStoreOverConnection } from './kube/store.ts'

export { MAX_RETRY_AFTER_MS, parseRetryAfter } from './kube/errors.ts'
export type { KubeConfig }
export { kubeConfigNamespace }
export type KubernetesLeaseStoreOptions = KubernetesStoreOptions
export type { EventObject, KubernetesLeaseStore } from './kube/store.ts'

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

/** Where `createLocks()` connects when given no `kubeConfig`, by kubectl's rules. */
export interface DefaultCluster {
  readonly store: KubernetesLeaseStore
  /** The namespace the configuration names (kubeconfig context, service account), if any. */
  readonly namespace: string | undefined
}

/**
 * kubectl's rules without a kubeconfig at hand: a kubeconfig file (`KUBECONFIG`, `~/.kube/config`)
 * wins; else, in a pod, the service account, with no Kubernetes client library loaded at all.
 */
export function connectByDefault(
  options: KubernetesLeaseStoreOptions = {},
  environment: InClusterOptions = {},
): DefaultCluster {
  if (!hasKubeConfigFile(environment.env) && isInCluster(environment)) {
    const connection: Connection = inClusterConnection(environment)
    return {
      store: createStoreOverConnection(() => connection, connection.server, options),
      namespace: connection.namespace,
    }
  }
  const kubeConfig = loadDefaultKubeConfig()
  return {
    store: createKubernetesLeaseStore(kubeConfig, options),
    namespace: kubeConfigNamespace(kubeConfig),
  }
}
