/** scale: one process holds many locks; `locks list -A` and the controller over as many leases. */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createMemoryLimit } from '../../dev/memory-limit.ts'
import { createNamespace } from '../cluster.ts'
import { CLI_ENTRY, ensureBuilt } from '../footprint.ts'
import { Peer, type PeerEvent } from '../processes.ts'
import { type Summary, summarize } from '../stats.ts'
import { type Context, event, ROOT, worker } from './common.ts'

export interface ScaleResult {
  readonly locks: number
  readonly acquireSeconds: number
  readonly holderRssMiB: number
  readonly holderHeapUsedMiB: number
  readonly holderRssBeforeMiB: number
  /** The same process {@link SETTLE_SECONDS} later, still holding, while it does light work. */
  readonly holderSettledRssMiB: number
  readonly holderSettledHeapUsedMiB: number
  readonly settleSeconds: number
  /**
   * The same holder in a memory cgroup, as a pod with a memory limit runs: Node sizes its heap from
   * the limit instead of the host's memory. A string: why it was not measured here.
   */
  readonly limitedHolder: HolderMemory | string
  /**
   * The same holder without a memory limit, its young generation capped with `--max-semi-space-size`
   * (which `NODE_OPTIONS` can set for a pod without a limit): V8 sizes it from the machine's memory
   * otherwise, and a burst of requests grows it to that size.
   */
  readonly cappedHolder: CappedHolderMemory
  readonly listSeconds: Summary
  /** `locks --help`: the CLI's start-up alone. */
  readonly cliStartSeconds: Summary
  readonly listedRows: number
  /** `kubectl get leases -A` over the same leases, in turn with `locks list -A`. */
  readonly kubectlListSeconds: Summary
  readonly kubectlRows: number
  readonly controller: Record<string, unknown> | { readonly error: string }
  /** The same in a memory cgroup of the chart's default memory limit. */
  readonly limitedController: Record<string, unknown> | { readonly error: string }
}

export interface HolderMemory {
  readonly limitMiB: number
  readonly rssBeforeMiB: number
  readonly rssMiB: number
  readonly heapUsedMiB: number
  readonly acquireSeconds: number
}

export interface CappedHolderMemory {
  readonly semiSpaceMiB: number
  readonly rssBeforeMiB: number
  readonly rssMiB: number
  readonly heapUsedBeforeMiB: number
  readonly heapUsedMiB: number
}

/** The young generation's cap of the capped holder: V8's semi-space size, in MiB. */
const CAPPED_SEMI_SPACE_MIB = 2

/**
 * How long the holder without a memory limit keeps holding, doing light work, before its memory is read
 * again: long enough for V8's memory reducer (which first waits 8 s) to have run.
 */
const SETTLE_SECONDS = 40

/** The memory limit of the limited holder: a typical pod limit for a small service. */
const HOLDER_LIMIT_MIB = 256

const mib = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10

type Holding = PeerEvent & {
  seconds: number
  before: NodeJS.MemoryUsage
  after: NodeJS.MemoryUsage
  settled?: NodeJS.MemoryUsage
}

/** One process acquires `locks` locks, 64 at a time, and reports its memory before and after. */
async function holdMany(
  holder: Peer,
  prefix: string,
  locks: number,
  settleSeconds?: number,
): Promise<Holding> {
  holder.send({ op: 'hold-many', prefix, count: locks, concurrency: 64, settleSeconds })
  return (await holder.next(event('holding'), 1_800_000)) as Holding
}

/** A fresh holder process acquires `locks` locks (see {@link holdMany}), reports, and is ended. */
async function holdOnce(
  ctx: Context,
  namespace: string,
  prefix: string,
  locks: number,
  options: Parameters<typeof worker>[3],
): Promise<Holding> {
  const holder = await worker(ctx, 'kube-locks', namespace, options)
  const held = await holdMany(holder, prefix, locks)
  holder.kill()
  await holder.exited
  return held
}

async function limitedHolder(ctx: Context, namespace: string, locks: number): Promise<HolderMemory | string> {
  const limit = createMemoryLimit(`kube-locks-bench-${process.pid}`, HOLDER_LIMIT_MIB * 2 ** 20)
  if (typeof limit === 'string') return limit
  try {
    ctx.log(`  the same in a ${HOLDER_LIMIT_MIB} MiB memory cgroup…`)
    const held = await holdOnce(ctx, namespace, 'scale-limited', locks, {
      nodeFlags: ['--expose-gc'],
      memoryLimit: limit,
    })
    return {
      limitMiB: HOLDER_LIMIT_MIB,
      rssBeforeMiB: mib(held.before.rss),
      rssMiB: mib(held.after.rss),
      heapUsedMiB: mib(held.after.heapUsed),
      acquireSeconds: held.seconds,
    }
  } finally {
    limit.remove()
  }
}

async function cappedHolder(ctx: Context, namespace: string, locks: number): Promise<CappedHolderMemory> {
  ctx.log(`  the same without a limit, with --max-semi-space-size=${CAPPED_SEMI_SPACE_MIB}…`)
  const held = await holdOnce(ctx, namespace, 'scale-capped', locks, {
    nodeFlags: ['--expose-gc', `--max-semi-space-size=${CAPPED_SEMI_SPACE_MIB}`],
  })
  return {
    semiSpaceMiB: CAPPED_SEMI_SPACE_MIB,
    rssBeforeMiB: mib(held.before.rss),
    rssMiB: mib(held.after.rss),
    heapUsedBeforeMiB: mib(held.before.heapUsed),
    heapUsedMiB: mib(held.after.heapUsed),
  }
}

export async function scale(ctx: Context, locks: number, kubectl: string): Promise<ScaleResult> {
  const namespace = 'bench-scale'
  await createNamespace(ctx.kubeConfig, namespace)
  const holder = await worker(ctx, 'kube-locks', namespace, { nodeFlags: ['--expose-gc'] })
  ctx.log(`  one process acquires ${locks} locks…`)
  const held = await holdMany(holder, 'scale', locks, SETTLE_SECONDS)
  const settled = held.settled
  if (settled === undefined) throw new Error('the holder did not report its memory after settling')
  await ensureBuilt(ctx.log)
  ctx.log('  timing `locks list -A` (dist/cli/main.js) and `kubectl get leases -A`…')
  const listTimes: number[] = []
  const startTimes: number[] = []
  let listedRows = 0
  const kubectlTimes: number[] = []
  let kubectlRows = 0
  for (let i = 0; i < 3; i++) {
    const help = new Peer('locks-help', process.execPath, [CLI_ENTRY, '--help'])
    const h0 = performance.now()
    await help.exited
    startTimes.push(performance.now() - h0)
    const list = new Peer('locks-list', process.execPath, [
      CLI_ENTRY,
      'list',
      '-A',
      '--kubeconfig',
      ctx.kubeconfig,
    ])
    const t0 = performance.now()
    const lines = countLines(list)
    const code = await list.exited
    listTimes.push(performance.now() - t0)
    if (code !== 0) throw new Error(`locks list -A exited with ${code}`)
    listedRows = lines() - 1
    const get = new Peer('kubectl-get', kubectl, ['get', 'leases', '-A', '--kubeconfig', ctx.kubeconfig])
    const k0 = performance.now()
    const rows = countLines(get)
    const getCode = await get.exited
    kubectlTimes.push(performance.now() - k0)
    if (getCode !== 0) throw new Error(`kubectl get leases -A exited with ${getCode}`)
    kubectlRows = rows() - 1
  }
  holder.kill()
  await holder.exited
  const limited = await limitedHolder(ctx, namespace, locks)
  const capped = await cappedHolder(ctx, namespace, locks)
  ctx.log(`  controller: npm run bench:controller -- --leases ${locks}…`)
  const controller = await controllerScale(ctx, locks)
  const chartLimit = chartMemoryLimitMiB()
  ctx.log(`  controller: the same in a ${chartLimit} MiB memory cgroup (the chart's default limit)…`)
  const limitedController = await controllerScale(ctx, locks, ['--memory-limit', String(chartLimit)])
  return {
    locks,
    acquireSeconds: held.seconds,
    holderRssMiB: mib(held.after.rss),
    holderHeapUsedMiB: mib(held.after.heapUsed),
    holderRssBeforeMiB: mib(held.before.rss),
    holderSettledRssMiB: mib(settled.rss),
    holderSettledHeapUsedMiB: mib(settled.heapUsed),
    settleSeconds: SETTLE_SECONDS,
    limitedHolder: limited,
    cappedHolder: capped,
    listSeconds: summarize(listTimes.map((ms) => ms / 1000)),
    cliStartSeconds: summarize(startTimes.map((ms) => ms / 1000)),
    listedRows,
    kubectlListSeconds: summarize(kubectlTimes.map((ms) => ms / 1000)),
    kubectlRows,
    controller,
    limitedController,
  }
}

/** The controller's default memory limit in the chart's values.yaml, in MiB. */
function chartMemoryLimitMiB(): number {
  const values = readFileSync(join(ROOT, 'helm', 'kube-locks', 'values.yaml'), 'utf8')
  const limit = /^resources:\n(?:[ #].*\n)*? {2}limits:\n {4}memory: (\d+)Mi$/m.exec(values)?.[1]
  if (limit === undefined) throw new Error('no resources.limits.memory in Mi in helm/kube-locks/values.yaml')
  return Number(limit)
}

/** Counts the lines a peer writes on stdout; the count is final once it has exited. */
function countLines(peer: Peer): () => number {
  let lines = 0
  peer.child.stdout?.on('data', (chunk: Buffer) => {
    for (const byte of chunk) if (byte === 10) lines++
  })
  return () => lines
}

/** Runs the controller's own scale benchmark against this control plane and folds in its JSON. */
async function controllerScale(
  ctx: Context,
  leases: number,
  flags: readonly string[] = [],
): Promise<Record<string, unknown>> {
  const peer = new Peer('controller-scale', process.execPath, [
    join(ROOT, 'bench', 'controller-scale.ts'),
    '--kubeconfig',
    ctx.kubeconfig,
    '--leases',
    String(leases),
    ...flags,
  ])
  let stdout = ''
  peer.child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString()
  })
  const timer = setTimeout(() => peer.kill(), 900_000)
  const code = await peer.exited
  clearTimeout(timer)
  const file = /written to (\S+\.json)/.exec(stdout)?.[1]
  if (code !== 0 || file === undefined) {
    return { error: `bench/controller-scale.ts exited with ${code}: ${stdout.trim().slice(-500)}` }
  }
  return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>
}
