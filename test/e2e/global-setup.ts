import type { TestProject } from 'vitest/node'
import { ControlPlane, ensureBinaries } from '../cluster/index.ts'

declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin kubeconfig of the cluster under test. */
    kubeconfigPath: string
    /** True when the suite runs against the local control plane (not E2E_KUBECONFIG). */
    localControlPlane: boolean
    kubectlPath: string
    helmPath: string
  }
}

const log = (line: string) => process.stderr.write(`[control plane] ${line}\n`)

/**
 * One control plane for the whole run; every test works in a namespace of its own.
 * `E2E_KUBECONFIG=<path>` runs the same suite against an existing cluster instead.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const binaries = await ensureBinaries(log)
  project.provide('kubectlPath', binaries.kubectl)
  project.provide('helmPath', binaries.helm)
  const existing = process.env.E2E_KUBECONFIG
  if (existing) {
    project.provide('kubeconfigPath', existing)
    project.provide('localControlPlane', false)
    return async () => {}
  }
  const started = Date.now()
  const plane = await ControlPlane.start({ binaries, log })
  log(`ready at ${plane.server} in ${((Date.now() - started) / 1000).toFixed(1)}s`)
  project.provide('kubeconfigPath', plane.kubeconfigPath)
  project.provide('localControlPlane', true)
  return () => plane.stop()
}
