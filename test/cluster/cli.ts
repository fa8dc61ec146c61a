/**
 * `npm run cluster:up [-- --kubeconfig-out <path>]`: starts a local control plane, prints
 * `KUBECONFIG=<path>` once it is ready and runs until SIGINT or SIGTERM, then stops it.
 */
import { copyFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { ControlPlane } from './control-plane.ts'

const { values } = parseArgs({ options: { 'kubeconfig-out': { type: 'string' } } })
const log = (line: string) => process.stderr.write(`${line}\n`)

const plane = await ControlPlane.start({ log })
let kubeconfig = plane.kubeconfigPath
if (values['kubeconfig-out']) {
  await copyFile(plane.kubeconfigPath, values['kubeconfig-out'])
  kubeconfig = values['kubeconfig-out']
}
log(`kube-apiserver ready at ${plane.server}; Ctrl-C stops it`)
process.stdout.write(`KUBECONFIG=${kubeconfig}\n`)

let stopping = false
const stop = async (signal: string) => {
  if (stopping) return
  stopping = true
  log(`${signal}: stopping the control plane`)
  await plane.stop()
  process.exit(0)
}
process.on('SIGINT', () => void stop('SIGINT'))
process.on('SIGTERM', () => void stop('SIGTERM'))
