// Rendering the Helm chart with `helm template`, for the tests that check what it produces.
import { loadAllYaml } from '@kubernetes/client-node'
import { expect } from 'vitest'
import { CHART_DIR, TEMPLATE_KUBE_VERSION } from '../../hack/render-manifests.ts'
import { helm } from './support.ts'

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are checked field by field
export type Manifest = any

function render(args: readonly string[], kubeVersion: string) {
  return helm([
    'template',
    'locks',
    CHART_DIR,
    '--namespace',
    'locks-system',
    '--kube-version',
    kubeVersion,
    ...args,
  ])
}

/** The chart rendered with `args`, as the Kubernetes version given would get it. */
export async function template(
  args: readonly string[] = [],
  kubeVersion = TEMPLATE_KUBE_VERSION,
): Promise<Manifest[]> {
  const result = await render(args, kubeVersion)
  if (result.code !== 0) throw new Error(`helm template failed:\n${result.stderr}`)
  return loadAllYaml(result.stdout).filter((doc) => doc)
}

/** What `helm template` says when it refuses `args`; fails the test if it renders them. */
export async function templateError(
  args: readonly string[],
  kubeVersion = TEMPLATE_KUBE_VERSION,
): Promise<string> {
  const result = await render(args, kubeVersion)
  expect(result.code, `helm template ${args.join(' ')} should have failed`).not.toBe(0)
  return result.stderr
}
