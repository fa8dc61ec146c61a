import { writeFile } from 'node:fs/promises'
import { ApiException, CoreV1Api, KubeConfig } from '@kubernetes/client-node'

/**
 * Writes a kubeconfig that authenticates as service account `namespace/name` (created if
 * missing) with a bound token, as a pod running under that account would. Works against any
 * cluster the admin kubeconfig reaches, not only the local control plane.
 */
export async function writeServiceAccountKubeconfig(
  adminKubeconfigPath: string,
  namespace: string,
  name: string,
  outPath: string,
  expirationSeconds = 3600,
): Promise<string> {
  const admin = new KubeConfig()
  admin.loadFromFile(adminKubeconfigPath)
  const core = admin.makeApiClient(CoreV1Api)
  try {
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } })
  } catch (error) {
    if (!(error instanceof ApiException && error.code === 409)) throw error
  }
  const request = await core.createNamespacedServiceAccountToken({
    name,
    namespace,
    body: { spec: { audiences: [], expirationSeconds } },
  })
  const token = request.status?.token
  if (!token) throw new Error(`the API server returned no token for service account ${namespace}/${name}`)
  const cluster = admin.getCurrentCluster()
  if (!cluster) throw new Error(`${adminKubeconfigPath} has no current cluster`)
  const config = new KubeConfig()
  const user = `system:serviceaccount:${namespace}:${name}`
  config.loadFromOptions({
    clusters: [cluster],
    users: [{ name: user, token }],
    contexts: [{ name: 'service-account', cluster: cluster.name, user, namespace }],
    currentContext: 'service-account',
  })
  await writeFile(outPath, config.exportConfig(), { mode: 0o600 })
  return outPath
}
