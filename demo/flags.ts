/** The demo's command line, and which cluster it runs against when none is named. */
import { existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'

export const USAGE = `Usage: npm run demo -- [options]

Runs the kube-locks demo scenario as separate processes against a real API server, then prints a summary.

Options:
  --duration <seconds>   how long the scenario runs (default: 45)
  --namespace <name>     namespace of the demo's leases, created if missing (default: kube-locks-demo)
  --kubeconfig <path>    cluster to use (default: KUBECONFIG, ~/.kube/config, in-cluster, else a local
                         control plane started for the demo)
  --json                 print the summary as JSON on stdout; the live view goes to stderr
  -h, --help             show this help
`

export interface Flags {
  readonly durationMs: number
  readonly namespace: string
  readonly kubeconfig: string | undefined
  readonly json: boolean
}

export class UsageError extends Error {}

/** The flags, or `undefined` for `--help`; throws a `UsageError` for a bad value. */
export function parseFlags(argv: string[]): Flags | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      duration: { type: 'string', default: '45' },
      namespace: { type: 'string', default: 'kube-locks-demo' },
      kubeconfig: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) return undefined
  const duration = Number(values.duration)
  if (!Number.isFinite(duration) || duration <= 0) {
    throw new UsageError(`Expected \`--duration\` to be a number of seconds > 0, got \`${values.duration}\``)
  }
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(values.namespace) || values.namespace.length > 63) {
    throw new UsageError(`Expected \`--namespace\` to be a DNS-1123 label, got \`${values.namespace}\``)
  }
  return {
    durationMs: duration * 1000,
    namespace: values.namespace,
    kubeconfig: values.kubeconfig,
    json: values.json,
  }
}

/** The same rule as `npm start`: in-cluster, or a kubeconfig file that exists. */
export function configuredCluster(): { kubeconfig: string | undefined; what: string } | undefined {
  if (process.env.KUBERNETES_SERVICE_HOST)
    return { kubeconfig: undefined, what: 'the in-cluster service account' }
  const paths = process.env.KUBECONFIG?.split(':').filter(Boolean) ?? [join(homedir(), '.kube', 'config')]
  if (!paths.some((path) => existsSync(path))) return undefined
  return { kubeconfig: paths.join(':'), what: paths.join(':') }
}
