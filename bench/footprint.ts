/**
 * What kube-locks costs the process that imports it, next to what the Redis alternative costs: resident
 * memory and start-up, each in fresh processes, the kinds interleaved so that load changes hit all alike.
 *
 *   - bare Node: a process that does nothing but stay alive until its memory was read;
 *   - kube-locks: imports the built package entry (dist/sdk/index.js) and takes and releases one lock
 *     connected as a pod is — KUBERNETES_SERVICE_HOST/_PORT and a service account's token, CA and
 *     namespace in files, no kubeconfig;
 *   - ioredis + redlock on the bench's redis-server, the same steps;
 *   - `locks --help` from the built CLI next to `kubectl --help` and `node -e 0`, start to exit.
 *
 * Start-up is the wall-clock time from just before the spawn to the child's event (its own clock, the
 * same machine's); memory is `VmRSS` of `/proc/<pid>/status`, read while the child waits with the lock
 * held.
 */
import { execFile } from 'node:child_process'
import { existsSync, statSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node'
import { createNamespace } from './cluster.ts'
import { Peer } from './processes.ts'
import type { Row } from './report.ts'
import { type Context, ROOT } from './scenarios.ts'
import { formatMs, formatRatio, type Summary, summarize } from './stats.ts'

const exec = promisify(execFile)
const SDK_ENTRY = join(ROOT, 'dist', 'sdk', 'index.js')
export const CLI_ENTRY = join(ROOT, 'dist', 'cli', 'main.js')
const NAMESPACE = 'bench-footprint'
const SERVICE_ACCOUNT = 'locker'

/** Figures of one kind of process; each sample is one fresh process. */
export interface ProcessFootprint {
  readonly rssMiB: Summary
  /** Spawn to ready (bare Node) or to the lock acquired. */
  readonly startMs: Summary
  /** The `import()` of the library alone, as the child timed it; absent for bare Node. */
  readonly importMs?: Summary
  readonly samples: { readonly rssMiB: number[]; readonly startMs: number[]; readonly importMs?: number[] }
}

export interface FootprintResult {
  readonly repetitions: number
  /** How the kube-locks process reached the API server. */
  readonly connection: string
  readonly bareNode: ProcessFootprint
  readonly kubeLocks: ProcessFootprint
  readonly redlock: ProcessFootprint
  /** Spawn to exit. */
  readonly cliHelpMs: Summary
  readonly kubectlHelpMs: Summary
  readonly nodeExitMs: Summary
  readonly samples: {
    readonly cliHelpMs: number[]
    readonly kubectlHelpMs: number[]
    readonly nodeExitMs: number[]
  }
}

const wallNow = (): number => performance.timeOrigin + performance.now()

// The children are plain JavaScript: a TypeScript file would make Node load its type stripper, which
// is no part of what a user's process costs. Each writes JSON events and exits when stdin closes.
const EMIT = `const emit = (event, fields = {}) => process.stdout.write(JSON.stringify({ event, t: performance.timeOrigin + performance.now(), ...fields }) + '\\n')
const stdinClosed = new Promise((resolve) => { process.stdin.on('end', resolve); process.stdin.resume() })`

const BARE = `${EMIT}
emit('ready')
await stdinClosed`

function kubeLocksChild(serviceAccountDir: string, lockName: string): string {
  return `${EMIT}
const started = performance.now()
const { createLocks } = await import(${JSON.stringify(pathToFileURL(SDK_ENTRY).href)})
const { createClusterLeaseStore, loadCluster } = await import(${JSON.stringify(pathToFileURL(join(ROOT, 'dist', 'sdk', 'internal.js')).href)})
const importMs = performance.now() - started
const cluster = loadCluster({ root: ${JSON.stringify(serviceAccountDir)} })
const store = createClusterLeaseStore(cluster)
const locks = createLocks({ store, namespace: cluster.namespace })
const lock = await locks.acquire(${JSON.stringify(lockName)}, { timeout: 30 })
emit('acquired', { importMs })
await stdinClosed
await lock.release()
await locks.close()
await store.close?.()
emit('released')`
}

function redlockChild(port: number, lockName: string): string {
  return `${EMIT}
const started = performance.now()
const { Redis } = await import(${JSON.stringify(import.meta.resolve('ioredis'))})
const { default: Redlock } = await import(${JSON.stringify(import.meta.resolve('redlock'))})
const importMs = performance.now() - started
const client = new Redis({ host: '127.0.0.1', port: ${port} })
const redlock = new Redlock([client])
const lock = await redlock.acquire([${JSON.stringify(`bench:${lockName}`)}], 30_000)
emit('acquired', { importMs })
await stdinClosed
await lock.release()
await client.quit()
emit('released')`
}

async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kB = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]
  if (kB === undefined) throw new Error(`no VmRSS in /proc/${pid}/status`)
  return Math.round((Number(kB) / 1024) * 10) / 10
}

interface Sample {
  readonly rssMiB: number
  readonly startMs: number
  readonly importMs: number | undefined
}

/** Runs one child to its ready or acquired event, reads its memory, lets it finish. */
async function sampleProcess(
  name: string,
  code: string,
  ready: string,
  env?: NodeJS.ProcessEnv,
): Promise<Sample> {
  const spawnedAt = wallNow()
  const peer = new Peer(name, process.execPath, ['--input-type=module', '-e', code], env)
  try {
    const event = await peer.next((e) => e.event === ready, 60_000)
    const rss = await rssMiB(peer.pid as number)
    peer.child.stdin?.end()
    if (ready === 'acquired') await peer.next((e) => e.event === 'released', 30_000)
    await peer.exited
    return {
      rssMiB: rss,
      startMs: event.t - spawnedAt,
      importMs: typeof event.importMs === 'number' ? event.importMs : undefined,
    }
  } finally {
    await peer.stop(1_000)
  }
}

/** Spawn to exit of a command whose output is discarded; it must exit 0. */
async function timeToExit(name: string, command: string, args: readonly string[]): Promise<number> {
  const peer = new Peer(name, command, args)
  const started = performance.now()
  const code = await peer.exited
  const ms = performance.now() - started
  if (code !== 0) throw new Error(`${name} exited with ${String(code)}`)
  return ms
}

/**
 * A pod's service account directory, as the kubelet projects it: a token of a service account allowed
 * to use leases in the namespace, the cluster's CA and the namespace's name. As test/e2e does.
 */
async function serviceAccountDir(ctx: Context): Promise<{ dir: string; env: Record<string, string> }> {
  await createNamespace(ctx.kubeConfig, NAMESPACE)
  const core = ctx.kubeConfig.makeApiClient(CoreV1Api)
  const rbac = ctx.kubeConfig.makeApiClient(RbacAuthorizationV1Api)
  await core.createNamespacedServiceAccount({
    namespace: NAMESPACE,
    body: { metadata: { name: SERVICE_ACCOUNT } },
  })
  await rbac.createNamespacedRole({
    namespace: NAMESPACE,
    body: {
      metadata: { name: SERVICE_ACCOUNT },
      rules: [
        {
          apiGroups: ['coordination.k8s.io'],
          resources: ['leases'],
          verbs: ['get', 'list', 'watch', 'create', 'update', 'delete'],
        },
      ],
    },
  })
  await rbac.createNamespacedRoleBinding({
    namespace: NAMESPACE,
    body: {
      metadata: { name: SERVICE_ACCOUNT },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: SERVICE_ACCOUNT },
      subjects: [{ kind: 'ServiceAccount', name: SERVICE_ACCOUNT, namespace: NAMESPACE }],
    },
  })
  const request = await core.createNamespacedServiceAccountToken({
    name: SERVICE_ACCOUNT,
    namespace: NAMESPACE,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  })
  const token = request.status?.token
  if (!token) throw new Error(`the API server returned no token for ${NAMESPACE}/${SERVICE_ACCOUNT}`)
  const cluster = ctx.kubeConfig.getCurrentCluster()
  if (!cluster) throw new Error('the bench kubeconfig has no current cluster')
  const ca = cluster.caData
    ? Buffer.from(cluster.caData, 'base64')
    : cluster.caFile
      ? await readFile(cluster.caFile)
      : undefined
  if (ca === undefined) throw new Error('the bench kubeconfig names no CA')
  const dir = await mkdtemp(join(tmpdir(), 'kube-locks-bench-sa-'))
  await writeFile(join(dir, 'token'), token)
  await writeFile(join(dir, 'ca.crt'), ca)
  await writeFile(join(dir, 'namespace'), NAMESPACE)
  const server = new URL(cluster.server)
  return { dir, env: { KUBERNETES_SERVICE_HOST: server.hostname, KUBERNETES_SERVICE_PORT: server.port } }
}

/**
 * Builds dist/ when the SDK's or the CLI's entry is missing or older than a source of the SDK, the
 * CLI or the controller: the figures measure the code as it is in the working tree, never an earlier
 * build of it.
 */
export async function ensureBuilt(log: (line: string) => void): Promise<void> {
  const reason = await staleBuild()
  if (reason === undefined) return
  log(`  building dist/ (npm run build): ${reason}…`)
  await exec(
    process.execPath,
    [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
    {
      cwd: ROOT,
    },
  )
}

/** Why dist/ must be built again, or `undefined` when it is up to date. */
async function staleBuild(): Promise<string | undefined> {
  if (!existsSync(SDK_ENTRY) || !existsSync(CLI_ENTRY)) return 'it is missing'
  const builtAt = Math.min(statSync(SDK_ENTRY).mtimeMs, statSync(CLI_ENTRY).mtimeMs)
  const { stdout } = await exec('git', ['ls-files', 'sdk', 'cli', 'controller'], { cwd: ROOT })
  const newer = stdout
    .split('\n')
    .filter((file) => file.endsWith('.ts') && !file.endsWith('.test.ts'))
    .filter((file) => existsSync(join(ROOT, file)) && statSync(join(ROOT, file)).mtimeMs > builtAt)
  return newer.length === 0
    ? undefined
    : `older than ${newer.slice(0, 3).join(', ')}${newer.length > 3 ? ', …' : ''}`
}

export async function footprint(
  ctx: Context,
  options: { readonly repetitions: number; readonly kubectl: string },
): Promise<FootprintResult> {
  await ensureBuilt(ctx.log)
  const sa = await serviceAccountDir(ctx)
  // A pod has no kubeconfig: none in the environment, and a home directory without ~/.kube.
  const { KUBECONFIG: _, ...inherited } = process.env
  const podEnv = { ...inherited, ...sa.env, HOME: sa.dir }
  const bare: Sample[] = []
  const kubeLocks: Sample[] = []
  const redlock: Sample[] = []
  const cliHelp: number[] = []
  const kubectlHelp: number[] = []
  const nodeExit: number[] = []
  try {
    // One round first, not counted: it creates the lease and the Redis key and warms the file cache.
    for (let round = -1; round < options.repetitions; round++) {
      if (round >= 0) ctx.log(`  round ${round + 1}/${options.repetitions}…`)
      const counted = round >= 0
      const b = await sampleProcess('bare-node', BARE, 'ready')
      const k = await sampleProcess('kube-locks-pod', kubeLocksChild(sa.dir, 'footprint'), 'acquired', podEnv)
      const r = await sampleProcess('redlock', redlockChild(ctx.redisPort, 'footprint'), 'acquired')
      const c = await timeToExit('locks-help', process.execPath, [CLI_ENTRY, '--help'])
      const h = await timeToExit('kubectl-help', options.kubectl, ['--help'])
      const n = await timeToExit('node-exit', process.execPath, ['-e', '0'])
      if (!counted) continue
      bare.push(b)
      kubeLocks.push(k)
      redlock.push(r)
      cliHelp.push(c)
      kubectlHelp.push(h)
      nodeExit.push(n)
    }
  } finally {
    await rm(sa.dir, { recursive: true, force: true })
  }
  return {
    repetitions: options.repetitions,
    connection: 'in-cluster: KUBERNETES_SERVICE_HOST/_PORT and a service account directory, no kubeconfig',
    bareNode: summarizeProcess(bare),
    kubeLocks: summarizeProcess(kubeLocks),
    redlock: summarizeProcess(redlock),
    cliHelpMs: summarize(cliHelp),
    kubectlHelpMs: summarize(kubectlHelp),
    nodeExitMs: summarize(nodeExit),
    samples: { cliHelpMs: cliHelp, kubectlHelpMs: kubectlHelp, nodeExitMs: nodeExit },
  }
}

function summarizeProcess(samples: readonly Sample[]): ProcessFootprint {
  const rss = samples.map((s) => s.rssMiB)
  const start = samples.map((s) => s.startMs)
  const imports = samples.flatMap((s) => (s.importMs === undefined ? [] : [s.importMs]))
  return {
    rssMiB: summarize(rss),
    startMs: summarize(start),
    ...(imports.length > 0 && { importMs: summarize(imports) }),
    samples: { rssMiB: rss, startMs: start, ...(imports.length > 0 && { importMs: imports }) },
  }
}

const mib = (x: number) => `${x.toFixed(1)} MiB`
/** p50 and, in brackets, the range of the samples: `64.4 MiB (64.3–64.5 MiB)`. */
function spread(s: Summary, format: (x: number) => string): string {
  const [low, high] = [format(s.min), format(s.max)]
  const unit = (text: string) => text.slice(text.lastIndexOf(' '))
  const range = unit(low) === unit(high) ? `${low.slice(0, -unit(low).length)}–${high}` : `${low}–${high}`
  return `${format(s.p50)} (${range})`
}

/** Rows of the results table; the targets: pod RSS ≤ 1.2× the Redis alternative's, `locks --help` ≤ 150 ms. */
export function footprintRows(f: FootprintResult): Row[] {
  const { bareNode: bare, kubeLocks: kl, redlock: rl } = f
  const rssRatio = kl.rssMiB.p50 / rl.rssMiB.p50
  const n = `p50 (min–max) of ${f.repetitions}`
  return [
    {
      measure: `footprint: bare Node, RSS / start-up, ${n}`,
      value: `${spread(bare.rssMiB, mib)} / ${spread(bare.startMs, formatMs)}`,
      baseline: '',
      ratio: '',
      target: '',
    },
    {
      measure: 'footprint: RSS with one lock held (kube-locks: in a pod, service account)',
      value: spread(kl.rssMiB, mib),
      baseline: `${spread(rl.rssMiB, mib)} ioredis + redlock`,
      ratio: formatRatio(rssRatio),
      target: '≤ 1.2×',
      met: rssRatio <= 1.2,
    },
    {
      measure: 'footprint: RSS above bare Node, p50',
      value: mib(kl.rssMiB.p50 - bare.rssMiB.p50),
      baseline: `${mib(rl.rssMiB.p50 - bare.rssMiB.p50)} ioredis + redlock`,
      ratio: formatRatio((kl.rssMiB.p50 - bare.rssMiB.p50) / (rl.rssMiB.p50 - bare.rssMiB.p50)),
      target: '',
    },
    {
      measure: 'footprint: process start → lock acquired',
      value: spread(kl.startMs, formatMs),
      baseline: `${spread(rl.startMs, formatMs)} ioredis + redlock`,
      ratio: formatRatio(kl.startMs.p50 / rl.startMs.p50),
      target: '',
    },
    {
      measure: 'footprint: `import` of the library alone',
      value: kl.importMs ? spread(kl.importMs, formatMs) : '–',
      baseline: rl.importMs ? `${spread(rl.importMs, formatMs)} ioredis + redlock` : '–',
      ratio: kl.importMs && rl.importMs ? formatRatio(kl.importMs.p50 / rl.importMs.p50) : '',
      target: '',
    },
    {
      measure: `footprint: \`locks --help\` (dist/cli/main.js), start to exit, ${n}`,
      value: spread(f.cliHelpMs, formatMs),
      baseline: `${spread(f.kubectlHelpMs, formatMs)} \`kubectl --help\`; ${formatMs(f.nodeExitMs.p50)} \`node -e 0\``,
      ratio: formatRatio(f.cliHelpMs.p50 / f.kubectlHelpMs.p50),
      target: '≤ 150 ms',
      met: f.cliHelpMs.p50 <= 150,
    },
  ]
}
