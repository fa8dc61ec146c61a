/**
 * `npm start`: runs the controller against the configured cluster, or, when none is
 * configured, against a local control plane started for the purpose (built on first use).
 * Ctrl-C stops everything it started.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ControlPlane } from '../dev/cluster/index.ts'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const CONTROLLER_NAMESPACE = 'kube-locks-system'
const log = (line: string) => process.stderr.write(`${line}\n`)

function configuredCluster(): string | undefined {
  if (process.env.KUBERNETES_SERVICE_HOST) return 'the in-cluster service account'
  const paths = process.env.KUBECONFIG?.split(':').filter(Boolean) ?? [join(homedir(), '.kube', 'config')]
  return paths.some((path) => existsSync(path)) ? paths.join(':') : undefined
}

let plane: ControlPlane | undefined
let controller: ChildProcess | undefined
let stopping = false

async function stop(signal: string): Promise<void> {
  if (stopping) return
  stopping = true
  log(`${signal}: stopping`)
  if (controller && controller.exitCode === null) {
    controller.kill('SIGTERM')
    await once(controller, 'exit')
  }
  await plane?.stop()
  process.exit(0)
}
process.on('SIGINT', () => void stop('SIGINT'))
process.on('SIGTERM', () => void stop('SIGTERM'))

const args: string[] = []
const cluster = configuredCluster()
if (cluster) {
  log(`using the cluster configured by ${cluster}`)
} else {
  log('no cluster configured (KUBECONFIG, ~/.kube/config or in-cluster): starting a local control plane')
  plane = await ControlPlane.start({ log })
  const created = await plane.request('POST', '/api/v1/namespaces', {
    metadata: { name: CONTROLLER_NAMESPACE },
  })
  if (created.status !== 201 && created.status !== 409) {
    throw new Error(`cannot create namespace ${CONTROLLER_NAMESPACE}: ${created.status} ${created.body}`)
  }
  args.push('--kubeconfig', plane.kubeconfigPath, '--leader-election-namespace', CONTROLLER_NAMESPACE)
  const kubectl = plane.binaries.kubectl
  const kc = plane.kubeconfigPath
  process.stdout.write(
    [
      '',
      `Local control plane ready at ${plane.server}.`,
      `  export KUBECONFIG=${kc}`,
      'Try, in another terminal:',
      `  npm run locks -- list -A --kubeconfig ${kc}`,
      `  npm run locks -- run demo --kubeconfig ${kc} -n default -- sleep 5`,
      `  ${kubectl} --kubeconfig ${kc} get leases -A`,
      `  curl -s localhost:8080/metrics | grep kube_locks_`,
      'Ctrl-C stops the controller and the control plane.',
      '',
    ].join('\n'),
  )
}

controller = spawn(process.execPath, [join(ROOT, 'controller/main.ts'), ...args, ...process.argv.slice(2)], {
  stdio: 'inherit',
})
const [code] = await once(controller, 'exit')
if (!stopping) {
  log(`the controller exited with ${code}`)
  await plane?.stop()
  process.exit(typeof code === 'number' ? code : 1)
}
