/**
 * `npm run cluster:up [-- --ha] [-- --kubeconfig-out <path>]`: starts a local control plane, prints
 * `KUBECONFIG=<path>` once it is ready and runs until SIGINT or SIGTERM, then stops it. `--ha` starts
 * three etcd members and two API servers behind a round-robin TCP front (see HaControlPlane).
 */
import { copyFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { ControlPlane } from './control-plane.ts'
import { HaControlPlane } from './ha-control-plane.ts'

const { values } = parseArgs({
  options: { 'kubeconfig-out': { type: 'string' }, ha: { type: 'boolean', default: false } },
})
const log = (line: string) => process.stderr.write(`${line}\n`)

const plane = values.ha ? await HaControlPlane.start({ log }) : await ControlPlane.start({ log })
let kubeconfig = plane.kubeconfigPath
if (values['kubeconfig-out']) {
  await copyFile(plane.kubeconfigPath, values['kubeconfig-out'])
  kubeconfig = values['kubeconfig-out']
}
if (plane instanceof HaControlPlane) {
  for (const member of plane.etcd) log(`etcd ${member.name} at ${member.clientUrl}`)
  for (const api of plane.apiServers)
    log(`kube-apiserver ${api.index} at ${api.server} (${api.kubeconfigPath})`)
  log(`front for both API servers at ${plane.server}; Ctrl-C stops everything`)
} else {
  log(`kube-apiserver ready at ${plane.server}; Ctrl-C stops it`)
}
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
