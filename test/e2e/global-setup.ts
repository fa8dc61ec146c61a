import { randomBytes } from 'node:crypto'
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node'
import type { TestProject } from 'vitest/node'
import { ControlPlane, ensureBinaries, VERSIONS } from '../../dev/cluster/index.ts'

declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin kubeconfig of the cluster under test. */
    kubeconfigPath: string
    /** True when the suite runs against the local control plane (not E2E_KUBECONFIG). */
    localControlPlane: boolean
    kubectlPath: string
    helmPath: string
    /** Labels the namespaces this run creates, so that teardown finds them on an existing cluster. */
    runId: string
  }
}

export const E2E_RUN_LABEL = 'kube-locks.io/e2e-run'

const log = (line: string) => process.stderr.write(`[control plane] ${line}\n`)

/**
 * One control plane for the whole run; every test works in a namespace of its own.
 * `E2E_KUBECONFIG=<path>` runs the same suite against an existing cluster instead.
 * `KUBE_LOCKS_K8S_VERSION=1.33` selects another supported release (dev/cluster/versions.ts).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const binaries = await ensureBinaries(log, VERSIONS)
  if (!process.env.E2E_KUBECONFIG) log(`Kubernetes ${VERSIONS.kubernetes}, etcd ${VERSIONS.etcd}`)
  project.provide('kubectlPath', binaries.kubectl)
  project.provide('helmPath', binaries.helm)
  const runId = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`
  project.provide('runId', runId)
  const existing = process.env.E2E_KUBECONFIG
  if (existing) {
    project.provide('kubeconfigPath', existing)
    project.provide('localControlPlane', false)
    return () => deleteNamespaces(existing, runId)
  }
  const started = Date.now()
  const plane = await ControlPlane.start({ binaries, log })
  log(`ready at ${plane.server} in ${((Date.now() - started) / 1000).toFixed(1)}s`)
  project.provide('kubeconfigPath', plane.kubeconfigPath)
  project.provide('localControlPlane', true)
  return () => plane.stop()
}

async function deleteNamespaces(kubeconfig: string, runId: string): Promise<void> {
  const config = new KubeConfig()
  config.loadFromFile(kubeconfig)
  const core = config.makeApiClient(CoreV1Api)
  const { items } = await core.listNamespace({ labelSelector: `${E2E_RUN_LABEL}=${runId}` })
  await Promise.all(items.map((ns) => core.deleteNamespace({ name: ns.metadata?.name ?? '' })))
  log(`deleted the ${items.length} namespaces this run created`)
}
