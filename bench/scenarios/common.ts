/** What every scenario shares: the run's context, the peers it starts, and waiting for their events. */
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { MemoryLimit } from '../../dev/memory-limit.ts'
import type { loadKubeConfig } from '../cluster.ts'
import { Peer, type PeerEvent } from '../processes.ts'
import type { WorkerConfig } from '../worker/protocol.ts'

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const WORKER = join(ROOT, 'bench', 'worker.ts')

export interface Context {
  readonly kubeconfig: string
  readonly kubeConfig: ReturnType<typeof loadKubeConfig>
  readonly redisPort: number
  readonly redisPid: number | undefined
  readonly goPeer: string
  /** kube-apiserver and etcd, whose CPU time some scenarios count. */
  readonly serverPids: readonly number[]
  readonly log: (line: string) => void
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
/** Unix milliseconds, on the clock every peer on this machine reports its events with. */
export const wallNow = (): number => performance.timeOrigin + performance.now()
let serial = 0

/** `raw`: the floor over kept-alive connections; `raw-plain`: client-node's default, a new pool per request. */
export type WorkerKind = 'kube-locks' | 'raw' | 'raw-plain' | 'redlock'

export async function worker(
  ctx: Context,
  backend: WorkerKind,
  namespace: string,
  options: {
    readonly nodeFlags?: readonly string[]
    readonly identity?: string
    /** Runs the worker inside this memory cgroup, as a pod with a memory limit. */
    readonly memoryLimit?: MemoryLimit
  } = {},
): Promise<Peer> {
  const { kubeconfig } = ctx
  const { identity, nodeFlags = [], memoryLimit } = options
  const config: WorkerConfig =
    backend === 'redlock'
      ? { backend, redisPort: ctx.redisPort }
      : backend === 'kube-locks'
        ? { backend, kubeconfig, namespace, ...(identity !== undefined && { identity }) }
        : { backend: 'raw', kubeconfig, namespace, reuseConnections: backend === 'raw' }
  const args = [...nodeFlags, WORKER, JSON.stringify(config)]
  const [command, argv] = memoryLimit?.wrap(process.execPath, args) ?? [process.execPath, args]
  const peer = new Peer(`${backend}-worker-${identity ?? ++serial}`, command, argv)
  await peer.next((e) => e.event === 'ready', 120_000)
  return peer
}

/** client-go leader election settings, in seconds. */
export interface ElectionSettings {
  readonly label: string
  readonly leaseDuration: number
  readonly renewDeadline: number
  readonly retryPeriod: number
}

export const CLIENT_GO_DEFAULTS: ElectionSettings = {
  label: 'defaults 15/10/2 s',
  leaseDuration: 15,
  renewDeadline: 10,
  retryPeriod: 2,
}
export const CLIENT_GO_TIGHT: ElectionSettings = {
  label: 'tight 2/1/0.1 s',
  leaseDuration: 2,
  renewDeadline: 1,
  retryPeriod: 0.1,
}

export function candidate(
  ctx: Context,
  namespace: string,
  name: string,
  settings: ElectionSettings,
  identity = `candidate-${++serial}`,
): Peer {
  return new Peer(identity, ctx.goPeer, [
    `--kubeconfig=${ctx.kubeconfig}`,
    `--namespace=${namespace}`,
    `--name=${name}`,
    `--identity=${identity}`,
    `--lease-duration=${settings.leaseDuration}s`,
    `--renew-deadline=${settings.renewDeadline}s`,
    `--retry-period=${settings.retryPeriod}s`,
  ])
}

export const event =
  (name: string, id?: string) =>
  (e: PeerEvent): boolean =>
    e.event === name && (id === undefined || e.id === id)
