/**
 * `npm start`: runs the controller against the configured cluster, or, when none is
 * configured, against a local control plane started for the purpose (built on first use).
 * Ctrl-C stops everything it started: the controller first, which releases its leadership
 * lease, then the control plane.
 *
 * The controller runs in a process group of its own. A Ctrl-C in the terminal signals the
 * whole foreground group; were the controller in it, it would get that SIGINT and then the
 * SIGTERM sent from here, take the second for an operator's "exit now" and skip its graceful
 * shutdown. So the terminal's signal reaches only this process, which passes on exactly one
 * SIGTERM per signal it gets: a second Ctrl-C still makes the controller exit at once.
 */
import { existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type Child, startChild } from '../dev/child-process.ts'
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
let controller: Child | undefined
let signals = 0

async function stop(signal: NodeJS.Signals): Promise<void> {
  signals += 1
  if (signals > 1) {
    // The controller takes a second signal as "exit at once", as it would from a terminal.
    log(`${signal} again: the controller exits at once`)
    controller?.kill('SIGTERM')
    return
  }
  log(`${signal}: stopping (again to exit at once)`)
  if (controller?.alive) {
    controller.kill('SIGTERM')
    await controller.exited
  }
  await plane?.stop()
  process.exit(0)
}
process.on('SIGINT', (signal) => void stop(signal))
process.on('SIGTERM', (signal) => void stop(signal))

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

// Out of the terminal's process group (see the top); where `setpriv` is installed, a SIGTERM from
// the kernel still stops it, gracefully, if this process is killed without the chance to pass one on.
controller = startChild(
  'controller',
  process.execPath,
  [join(ROOT, 'controller/main.ts'), ...args, ...process.argv.slice(2)],
  {
    stdio: ['ignore', 'inherit', 'inherit'],
    detached: true,
    parentDeathSignal: 'SIGTERM',
  },
)
const { code, signal } = await controller.exited
if (signals === 0) {
  log(`the controller exited with ${code ?? signal}`)
  await plane?.stop()
  process.exit(typeof code === 'number' ? code : 1)
}
