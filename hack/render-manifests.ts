// Renders manifests/kube-locks.yaml, the default installation for `kubectl apply -f manifests/`,
// from the Helm chart. `npm run manifests` writes it; the install tests fail when the committed
// file differs from what the chart renders.
import { execFile } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ensureBinaries } from '../dev/cluster/index.ts'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
export const CHART_DIR = join(ROOT, 'helm', 'kube-locks')
export const MANIFEST_PATH = join(ROOT, 'manifests', 'kube-locks.yaml')

/** Release name and namespace of the plain-manifest installation. */
export const MANIFEST_RELEASE = 'kube-locks'
export const MANIFEST_NAMESPACE = 'kube-locks'

/**
 * Kubernetes version that `helm template` renders for: the oldest the chart supports. Passed
 * explicitly because without a cluster Helm assumes the version it was built for, which for a
 * Helm built from source is an old default below the chart's `kubeVersion`.
 */
export const TEMPLATE_KUBE_VERSION = '1.27.0'

/** The chart's default configuration as one multi-document YAML file, Namespace first. */
export async function renderManifests(helmPath: string): Promise<string> {
  const rendered = await run(helmPath, [
    'template',
    MANIFEST_RELEASE,
    CHART_DIR,
    '--namespace',
    MANIFEST_NAMESPACE,
    '--kube-version',
    TEMPLATE_KUBE_VERSION,
    // The `helm test` Pod is a hook for `helm test`; `kubectl apply` would create it as a plain Pod.
    '--skip-tests',
  ])
  const chart = await readFile(join(CHART_DIR, 'Chart.yaml'), 'utf8')
  const version = /^version:\s*(\S+)/m.exec(chart)?.[1] ?? 'unknown'
  const header = [
    `# kube-locks chart ${version} with its default values, for \`kubectl apply -f manifests/\`.`,
    '# Generated from helm/kube-locks by `npm run manifests`: change the chart, not this file.',
    '---',
    'apiVersion: v1',
    'kind: Namespace',
    'metadata:',
    `  name: ${MANIFEST_NAMESPACE}`,
    '  labels:',
    `    app.kubernetes.io/part-of: kube-locks`,
    '    pod-security.kubernetes.io/enforce: restricted',
    '    pod-security.kubernetes.io/warn: restricted',
  ].join('\n')
  return `${header}\n${rendered.trimEnd()}\n`
}

function run(command: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args.join(' ')} failed:\n${stderr}`, { cause: error }))
      else resolve(stdout)
    })
  })
}

if (import.meta.main) {
  const { helm } = await ensureBinaries((line) => process.stderr.write(`${line}\n`))
  await writeFile(MANIFEST_PATH, await renderManifests(helm))
  process.stderr.write(`wrote ${MANIFEST_PATH}\n`)
}
