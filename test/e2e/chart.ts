// Rendering the Helm chart with `helm template`, for the tests that check what it produces.
import { loadAllYaml } from '@kubernetes/client-node'
import { expect } from 'vitest'
import { CHART_DIR, TEMPLATE_KUBE_VERSION } from '../../hack/render-manifests.ts'
import { helm } from './support.ts'

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are checked field by field
export type Manifest = any

function render(args: readonly string[], kubeVersion: string, tests = false) {
  return helm([
    'template',
    'locks',
    CHART_DIR,
    '--namespace',
    'locks-system',
    '--kube-version',
    kubeVersion,
    ...(tests ? [] : ['--skip-tests']),
    ...args,
  ])
}

async function parse(result: Awaited<ReturnType<typeof render>>): Promise<Manifest[]> {
  if (result.code !== 0) throw new Error(`helm template failed:\n${result.stderr}`)
  return loadAllYaml(result.stdout).filter((doc) => doc)
}

/**
 * The chart rendered with `args`, as the Kubernetes version given would get it: the objects that
 * `helm install` creates, without the `helm test` hooks (see {@link templateTests}).
 */
export async function template(
  args: readonly string[] = [],
  kubeVersion = TEMPLATE_KUBE_VERSION,
): Promise<Manifest[]> {
  return parse(await render(args, kubeVersion))
}

/** Only the `helm test` hooks of the chart rendered with `args`. */
export async function templateTests(
  args: readonly string[] = [],
  kubeVersion = TEMPLATE_KUBE_VERSION,
): Promise<Manifest[]> {
  const docs = await parse(await render(args, kubeVersion, true))
  return docs.filter((doc) => doc.metadata?.annotations?.['helm.sh/hook'] === 'test')
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
