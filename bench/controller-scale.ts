/**
 * `npm run bench:controller [-- --leases 10000] [--kubeconfig <path>]`
 *
 * How the controller copes with many managed leases: it creates the leases in a fresh namespace (held by
 * holders that never renew), runs `kube-locks-controller` as its own process and measures
 *   1. the initial list, and the reclaim pass: from the moment every lease is due (listed + duration +
 *      grace) until all are marked free;
 *   2. with a new controller and retention 0, the GC pass: from its list until every lease is deleted;
 * and the controller's resident memory (peak, from /proc) in both. Without --kubeconfig it starts a
 * local control plane (etcd + kube-apiserver) for the run. It runs `dist/controller/main.js` when built
 * (`npm run build`), else the TypeScript sources; `--max-old-space-size <MiB>` caps the V8 heap;
 * `--memory-limit <MiB>` runs the controller in a memory cgroup of that size, as a container with a
 * memory limit runs (Node then sizes its heap from the limit), where the machine allows one. Prints a table; writes JSON to bench/results/.
 */
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { cpus, loadavg, totalmem } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node'
import { ControllerProcess, namespacedArgs } from '../controller/testing/controller-process.ts'
import { managedLease } from '../controller/testing/leases.ts'
import { ControlPlane } from '../dev/cluster/index.ts'
import { createMemoryLimit, type MemoryLimit } from '../dev/memory-limit.ts'
import { createKubernetesLeaseStore } from '../sdk/internal.ts'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const { values } = parseArgs({
  options: {
    leases: { type: 'string', default: '10000' },
    kubeconfig: { type: 'string' },
    concurrency: { type: 'string', default: '64' },
    entry: { type: 'string' },
    'max-old-space-size': { type: 'string' },
    'memory-limit': { type: 'string' },
  },
})
const count = Number(values.leases)
const concurrency = Number(values.concurrency)
if (!Number.isInteger(count) || count < 1)
  throw new Error(`Expected --leases to be a positive integer, got ${values.leases}`)
const log = (line: string) => process.stderr.write(`${line}\n`)
// Measure what runs in the image (compiled JavaScript) when it has been built: loading TypeScript
// sources costs the process memory of its own.
const built = join(ROOT, 'dist', 'controller', 'main.js')
const entry = values.entry ?? (existsSync(built) ? built : 'controller/main.ts')
const nodeOptions = values['max-old-space-size']
  ? [`--max-old-space-size=${values['max-old-space-size']}`]
  : []
const memoryLimitMiB = values['memory-limit'] === undefined ? undefined : Number(values['memory-limit'])
if (memoryLimitMiB !== undefined && !(memoryLimitMiB > 0))
  throw new Error(`Expected --memory-limit to be a positive number of MiB, got ${values['memory-limit']}`)
const memoryLimit = memoryLimitMiB === undefined ? undefined : cgroupOf(memoryLimitMiB)
log(
  `controller entry: ${entry} ${nodeOptions.join(' ')}${memoryLimitMiB === undefined ? '' : ` in a ${memoryLimitMiB} MiB memory cgroup`}`,
)

let plane: ControlPlane | undefined
let kubeconfigPath = values.kubeconfig
if (kubeconfigPath === undefined) {
  log('starting a local control plane…')
  plane = await ControlPlane.start({ log })
  kubeconfigPath = plane.kubeconfigPath
}
const kubeConfig = new KubeConfig()
kubeConfig.loadFromFile(kubeconfigPath)
const store = createKubernetesLeaseStore(kubeConfig)
const namespace = `bench-${randomBytes(4).toString('hex')}`
const controllers: ControllerProcess[] = []

try {
  await kubeConfig.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: namespace } } })
  const DURATION = 5
  log(`creating ${count} leases in ${namespace}…`)
  const created = await timed(() =>
    inParallel(count, concurrency, (i) =>
      store.create(managedLease(namespace, `lock-${i}`, { duration: DURATION })),
    ),
  )
  log(`created in ${seconds(created.ms)} s`)

  // 1. Reclaim: every lease held, never renewed.
  const reclaimer = start('bench-reclaim', ['--grace', '0', '--retention', '86400'])
  const rss1 = sampleRss(reclaimer)
  const spawned = performance.now()
  await reclaimer.waitForLog('listed leases', undefined, 300_000)
  const listedAt = performance.now()
  const dueAt = listedAt + DURATION * 1000
  await until(async () => (await reclaimer.metric('kube_locks_reclaimed_total')) >= count, 600_000)
  const reclaimedAt = performance.now()
  const eventsDropped = await reclaimer.metric('kube_locks_events_dropped_total')
  const errors1 = await reclaimer.metric('kube_locks_reconcile_errors_total')
  const idleRss = await settleRss(reclaimer)
  const idleHeap = await reclaimer.metric('nodejs_heap_size_used_bytes')
  const stop1 = await reclaimer.stop('SIGTERM')
  rss1.stop()

  // 2. GC: every lease free, retention 0.
  const collector = start('bench-gc', ['--grace', '0', '--retention', '0'])
  const rss2 = sampleRss(collector)
  await collector.waitForLog('listed leases', undefined, 300_000)
  const gcStart = performance.now()
  await until(async () => (await collector.metric('kube_locks_deleted_total')) >= count, 600_000)
  const gcDone = performance.now()
  const errors2 = await collector.metric('kube_locks_reconcile_errors_total')
  const stop2 = await collector.stop('SIGTERM')
  rss2.stop()

  const result = {
    date: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      loadAverage: loadavg().map((load) => Math.round(load * 10) / 10),
    },
    leases: count,
    entry: `${entry} ${nodeOptions.join(' ')}`.trim(),
    memoryLimitMiB,
    createSeconds: seconds(created.ms),
    initialListSeconds: seconds(listedAt - spawned),
    reclaimPassSeconds: seconds(reclaimedAt - dueAt),
    reclaimPerSecond: Math.round(count / ((reclaimedAt - dueAt) / 1000)),
    gcPassSeconds: seconds(gcDone - gcStart),
    gcPerSecond: Math.round(count / ((gcDone - gcStart) / 1000)),
    peakRssMiB: mib(Math.max(rss1.peak, rss2.peak)),
    steadyRssMiB: mib(idleRss),
    steadyHeapUsedMiB: mib(idleHeap),
    shutdownSeconds: Math.max(seconds(stop1.ms), seconds(stop2.ms)),
    reconcileErrors: errors1 + errors2,
    eventsDroppedByRateLimit: eventsDropped,
  }
  const rows: Array<[string, string]> = [
    ['leases', String(count)],
    ['create (benchmark client)', `${result.createSeconds} s`],
    ['initial list', `${result.initialListSeconds} s`],
    ['reclaim pass (all due → all free)', `${result.reclaimPassSeconds} s (${result.reclaimPerSecond}/s)`],
    ['GC pass (listed → all deleted)', `${result.gcPassSeconds} s (${result.gcPerSecond}/s)`],
    ['controller RSS, peak', `${result.peakRssMiB} MiB`],
    ['controller RSS, idle after reclaim', `${result.steadyRssMiB} MiB`],
    ['controller heap in use, idle', `${result.steadyHeapUsedMiB} MiB`],
    ['SIGTERM → exit', `${result.shutdownSeconds} s`],
    ['reconcile errors', String(result.reconcileErrors)],
    ['Events dropped by the rate limit', String(result.eventsDroppedByRateLimit)],
  ]
  const width = Math.max(...rows.map(([name]) => name.length))
  process.stdout.write(
    `\nkube-locks-controller scale (${result.machine.cpus} CPUs, node ${process.version})\n`,
  )
  for (const [name, value] of rows) process.stdout.write(`  ${name.padEnd(width)}  ${value}\n`)
  const dir = join(ROOT, 'bench', 'results')
  await mkdir(dir, { recursive: true })
  const file = join(dir, `controller-scale-${result.date.replace(/[:.]/g, '-')}.json`)
  await writeFile(file, `${JSON.stringify(result, null, 2)}\n`)
  process.stdout.write(`\nwritten to ${file}\n`)
} finally {
  await Promise.allSettled(controllers.map((controller) => controller.stop('SIGKILL', 5_000)))
  memoryLimit?.remove()
  await kubeConfig
    .makeApiClient(CoreV1Api)
    .deleteNamespace({ name: namespace })
    .catch(() => {})
  await store.close?.()
  await plane?.stop()
}

function cgroupOf(limitMiB: number): MemoryLimit {
  const limit = createMemoryLimit(`kube-locks-controller-scale-${process.pid}`, limitMiB * 2 ** 20)
  if (typeof limit === 'string') throw new Error(`--memory-limit: ${limit}`)
  return limit
}

function start(name: string, flags: readonly string[]): ControllerProcess {
  const controller = new ControllerProcess(
    name,
    namespacedArgs(kubeconfigPath as string, namespace, ...flags),
    {},
    { entry, nodeOptions, ...(memoryLimit && { wrap: memoryLimit.wrap }) },
  )
  controllers.push(controller)
  return controller
}

async function inParallel<T>(total: number, width: number, task: (i: number) => Promise<T>): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(width, total) }, async () => {
      while (next < total) await task(next++)
    }),
  )
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now()
  const value = await fn()
  return { value, ms: performance.now() - started }
}

async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (!(await check())) {
    if (performance.now() > deadline)
      throw new Error(`benchmark step did not finish within ${timeoutMs / 1000} s`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

function rssOf(controller: ControllerProcess): number {
  try {
    const status = readFileSync(`/proc/${controller.child.pid}/status`, 'utf8')
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024
  } catch {
    return 0
  }
}

function sampleRss(controller: ControllerProcess): { readonly peak: number; stop(): void } {
  const state = { peak: 0 }
  const timer = setInterval(() => {
    state.peak = Math.max(state.peak, rssOf(controller))
  }, 200)
  return {
    get peak() {
      return state.peak
    },
    stop: () => clearInterval(timer),
  }
}

/** RSS once the controller has been idle for a few seconds (garbage from the pass collected or not). */
async function settleRss(controller: ControllerProcess): Promise<number> {
  await new Promise((r) => setTimeout(r, 3_000))
  return rssOf(controller)
}

function seconds(ms: number): number {
  return Math.round(ms / 10) / 100
}

function mib(bytes: number): number {
  return Math.round(bytes / 2 ** 20)
}
