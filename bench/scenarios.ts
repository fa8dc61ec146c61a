import { readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CoordinationV1Api } from '@kubernetes/client-node'
import { leaseNameFor, parseMicroTime } from '../sdk/internal.ts'
import { createNamespace, type loadKubeConfig } from './cluster.ts'
import { Peer, type PeerEvent } from './processes.ts'
import { type Summary, summarize } from './stats.ts'
import type { WorkerConfig } from './worker.ts'

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
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
const wallNow = (): number => performance.timeOrigin + performance.now()
let serial = 0

/** `raw`: the floor over kept-alive connections; `raw-plain`: client-node's default, a new pool per request. */
export type WorkerKind = 'kube-locks' | 'raw' | 'raw-plain' | 'redlock'

export async function worker(
  ctx: Context,
  backend: WorkerKind,
  namespace: string,
  options: { readonly nodeFlags?: readonly string[]; readonly identity?: string } = {},
): Promise<Peer> {
  const { kubeconfig } = ctx
  const { identity, nodeFlags = [] } = options
  const config: WorkerConfig =
    backend === 'redlock'
      ? { backend, redisPort: ctx.redisPort }
      : backend === 'kube-locks'
        ? { backend, kubeconfig, namespace, ...(identity !== undefined && { identity }) }
        : { backend: 'raw', kubeconfig, namespace, reuseConnections: backend === 'raw' }
  const peer = new Peer(`${backend}-worker-${identity ?? ++serial}`, process.execPath, [
    ...nodeFlags,
    WORKER,
    JSON.stringify(config),
  ])
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

// ---------------------------------------------------------------------------------------------------

export interface UncontendedResult {
  /** The default: fair (the lock's line is read beside the lease). */
  readonly kubeLocks: Summary
  /** `fair: false`: the lease alone. */
  readonly kubeLocksUnfair: Summary
  readonly raw: Summary
  /** The same requests with client-node's default of a new connection pool per request. */
  readonly rawPlain: Summary
  readonly rawRead: Summary
  readonly rawUpdate: Summary
  readonly samples: {
    readonly kubeLocks: number[]
    readonly kubeLocksUnfair: number[]
    readonly raw: number[]
  }
  /** The lease requests of one acquire + release, as the process counted them (`get lock`, `list line`). */
  readonly requestsPerCycle: {
    readonly fair: Record<string, number>
    readonly unfair: Record<string, number>
  }
}

/**
 * Acquire + release of one free lock by one process, with the defaults (fair) and with `fair: false`,
 * against the same read + two updates issued directly. They run in alternating blocks so that a
 * change in machine load hits all alike.
 */
export async function uncontended(ctx: Context, count: number): Promise<UncontendedResult> {
  const namespace = 'bench-uncontended'
  await createNamespace(ctx.kubeConfig, namespace)
  const kl = await worker(ctx, 'kube-locks', namespace)
  const raw = await worker(ctx, 'raw', namespace)
  const plain = await worker(ctx, 'raw-plain', namespace)
  const unfair = await worker(ctx, 'kube-locks', namespace)
  const cycle = async (peer: Peer, name: string, n: number, fair?: boolean) => {
    const from = peer.events.length
    peer.send({ op: 'cycle', name, count: n, ...(fair !== undefined && { fair }) })
    return (await peer.next(event('cycled'), 600_000, from)) as PeerEvent & {
      samples: number[]
      requests: number[][]
    }
  }
  await cycle(kl, 'kube-locks', 5)
  await cycle(unfair, 'kube-locks-unfair', 5, false)
  await cycle(raw, 'raw', 5)
  await cycle(plain, 'raw-plain', 5)
  const blocks = 5
  const kubeLocks: number[] = []
  const unfairSamples: number[] = []
  const rawSamples: number[] = []
  const plainSamples: number[] = []
  const reads: number[] = []
  const updates: number[] = []
  for (let b = 0; b < blocks; b++) {
    kubeLocks.push(...(await cycle(kl, 'kube-locks', Math.ceil(count / blocks))).samples)
    unfairSamples.push(
      ...(await cycle(unfair, 'kube-locks-unfair', Math.ceil(count / blocks), false)).samples,
    )
    const r = await cycle(raw, 'raw', Math.ceil(count / blocks))
    rawSamples.push(...r.samples)
    for (const [read, take, free] of r.requests) {
      reads.push(read as number)
      updates.push(take as number, free as number)
    }
    plainSamples.push(...(await cycle(plain, 'raw-plain', Math.ceil(count / blocks))).samples)
  }
  const perCycle = async (peer: Peer, cycles: number) => {
    const from = peer.events.length
    peer.send({ op: 'counts' })
    const { counts } = (await peer.next(event('counts'), 60_000, from)) as PeerEvent & {
      counts: Record<string, number>
    }
    return Object.fromEntries(
      Object.entries(counts)
        .filter(([kind]) => kind !== 'watch namespace')
        .map(([kind, n]) => [kind, Math.round((n / cycles) * 100) / 100]),
    )
  }
  const cycles = 5 + blocks * Math.ceil(count / blocks)
  const requestsPerCycle = { fair: await perCycle(kl, cycles), unfair: await perCycle(unfair, cycles) }
  await Promise.all([kl.stop(), unfair.stop(), raw.stop(), plain.stop()])
  return {
    kubeLocks: summarize(kubeLocks),
    kubeLocksUnfair: summarize(unfairSamples),
    raw: summarize(rawSamples),
    rawPlain: summarize(plainSamples),
    rawRead: summarize(reads),
    rawUpdate: summarize(updates),
    samples: { kubeLocks, kubeLocksUnfair: unfairSamples, raw: rawSamples },
    requestsPerCycle,
  }
}

// ---------------------------------------------------------------------------------------------------

/**
 * Release → next holder, between two processes that take turns: the waiter is waiting (its watch
 * established) before the holder releases. Measured from just before the release call in the holder
 * to the acquisition returning in the waiter, on the shared wall clock.
 */
export async function handoverLocks(
  ctx: Context,
  backend: 'kube-locks' | 'redlock' | 'raw',
  count: number,
  options: { readonly fair?: boolean; readonly namespace?: string } = {},
): Promise<number[]> {
  const namespace = options.namespace ?? `bench-handover-${backend}`
  if (backend !== 'redlock') await createNamespace(ctx.kubeConfig, namespace)
  const peers = [await worker(ctx, backend, namespace), await worker(ctx, backend, namespace)] as const
  const name = 'handover'
  const fair = options.fair === undefined ? {} : { fair: options.fair }
  const acquire = { op: 'acquire', name, expires: 20, timeout: null, ...fair }
  peers[0].send({ ...acquire, id: 'h0' })
  await peers[0].next(event('acquired', 'h0'), 60_000)
  const samples: number[] = []
  for (let i = 0; i < count; i++) {
    const holder = peers[i % 2] as Peer
    const waiter = peers[(i + 1) % 2] as Peer
    const next = `h${i + 1}`
    waiter.send({ ...acquire, id: next })
    await waiter.next(event('waiting', next), 60_000)
    await sleep(400 + Math.random() * 300)
    holder.send({ op: 'release', id: `h${i}` })
    const released = await holder.next(event('releasing', `h${i}`), 60_000)
    const acquired = await waiter.next(event('acquired', next), 60_000)
    samples.push(acquired.t - released.t)
  }
  await Promise.all(peers.map((peer) => peer.stop()))
  return samples
}

/** The same for client-go's leader election: the leader gives up (ReleaseOnCancel) → the next candidate leads. */
export async function handoverClientGo(
  ctx: Context,
  namespace: string,
  settings: ElectionSettings,
  count: number,
): Promise<number[]> {
  const name = `handover-${settings.leaseDuration}s`
  let leader = candidate(ctx, namespace, name, settings)
  await leader.next(event('leader'), 60_000)
  const samples: number[] = []
  for (let i = 0; i < count; i++) {
    const next = candidate(ctx, namespace, name, settings)
    await next.next(event('started'), 60_000)
    // Let the candidate find the lease held and settle into its retry rhythm.
    await sleep(settings.retryPeriod * 1000 * (1.5 + Math.random()) + 200)
    leader.send('release')
    const released = await leader.next(event('releasing'), 60_000)
    const led = await next.next(event('leader'), 120_000)
    samples.push(led.t - released.t)
    await leader.exited
    leader = next
  }
  await leader.stop(10_000)
  return samples
}

// ---------------------------------------------------------------------------------------------------

export interface CrashSamples {
  /** SIGKILL of the holder → next holder. */
  readonly fromKill: number[]
  /** The holder's last successful write (its acquisition) → next holder. */
  readonly fromLastWrite: number[]
  /** Lease duration / lock TTL in seconds. */
  readonly expires: number
}

/**
 * The holder (renewing, for kube-locks) is SIGKILLed `holdMs` after it acquired, while a waiter waits;
 * the waiter takes over. The holder's last write is read back from the lease (`renewTime`, written from
 * the same machine's clock) or, for redlock, is the acquisition.
 */
export async function crashLocks(
  ctx: Context,
  backend: 'kube-locks' | 'redlock',
  count: number,
  expires: number,
  holdMs: number,
): Promise<CrashSamples> {
  const namespace = `bench-crash-${backend}`
  if (backend === 'kube-locks') await createNamespace(ctx.kubeConfig, namespace)
  const waiter = await worker(ctx, backend, namespace)
  const fromKill: number[] = []
  const fromLastWrite: number[] = []
  for (let i = 0; i < count; i++) {
    const name = `crash-${i}`
    const holder = await worker(ctx, backend, namespace)
    holder.send({ op: 'acquire', id: 'holder', name, expires, timeout: 0, renew: backend === 'kube-locks' })
    const acquired = await holder.next(event('acquired', 'holder'), 60_000)
    waiter.send({ op: 'acquire', id: name, name, expires, timeout: null })
    await waiter.next(event('waiting', name), 60_000)
    await sleep(Math.max(0, acquired.t + holdMs + Math.random() * 1000 - wallNow()))
    const killedAt = holder.kill()
    const lastWrite =
      backend === 'kube-locks' ? await renewTime(ctx, namespace, leaseNameFor(name)) : acquired.t
    const next = await waiter.next(event('acquired', name), (expires + 30) * 1000)
    fromKill.push(next.t - killedAt)
    fromLastWrite.push(next.t - lastWrite)
    waiter.send({ op: 'release', id: name })
    await waiter.next(event('released', name), 60_000)
  }
  await waiter.stop()
  return { fromKill, fromLastWrite, expires }
}

/** The lease's `renewTime` as Unix milliseconds. */
async function renewTime(ctx: Context, namespace: string, name: string): Promise<number> {
  const lease = await ctx.kubeConfig.makeApiClient(CoordinationV1Api).readNamespacedLease({ name, namespace })
  const time = lease.spec?.renewTime as Date | string | undefined
  if (time === undefined) throw new Error(`lease ${namespace}/${name} has no renewTime`)
  return typeof time === 'string' ? parseMicroTime(time) : time.getTime()
}

export async function crashClientGo(
  ctx: Context,
  namespace: string,
  settings: ElectionSettings,
  count: number,
  holdMs: number,
): Promise<CrashSamples> {
  const fromKill: number[] = []
  const fromLastWrite: number[] = []
  for (let i = 0; i < count; i++) {
    const name = `crash-${settings.leaseDuration}s-${i}`
    const leader = candidate(ctx, namespace, name, settings)
    const led = await leader.next(event('leader'), 60_000)
    const next = candidate(ctx, namespace, name, settings)
    await next.next(event('started'), 60_000)
    await sleep(Math.max(0, led.t + holdMs + Math.random() * 1000 - wallNow()))
    const killedAt = leader.kill()
    const lastWrite = await renewTime(ctx, namespace, name)
    const took = await next.next(event('leader'), (settings.leaseDuration * 3 + 30) * 1000)
    fromKill.push(took.t - killedAt)
    fromLastWrite.push(took.t - lastWrite)
    await next.stop(10_000)
  }
  return { fromKill, fromLastWrite, expires: settings.leaseDuration }
}

// ---------------------------------------------------------------------------------------------------

export interface ThroughputResult {
  readonly processes: number
  readonly seconds: number
  readonly kubeLocksPerSecond: number
  readonly rawPerSecond: number
  readonly kubeLocksLatency: Summary
  readonly rawLatency: Summary
}

/** `processes` processes, each acquiring and releasing its own lock in a loop, then the same with raw writes. */
export async function throughput(
  ctx: Context,
  processes: number,
  seconds: number,
): Promise<ThroughputResult> {
  const namespace = `bench-throughput-${processes}`
  await createNamespace(ctx.kubeConfig, namespace)
  const run = async (backend: 'kube-locks' | 'raw') => {
    const peers = await Promise.all(Array.from({ length: processes }, () => worker(ctx, backend, namespace)))
    const cycle = async (n: { count?: number; seconds?: number }) =>
      Promise.all(
        peers.map(async (peer, i) => {
          const from = peer.events.length
          peer.send({ op: 'cycle', name: `${backend}-${i}`, ...n })
          return (await peer.next(event('cycled'), 600_000, from)) as PeerEvent & {
            samples: number[]
            seconds: number
          }
        }),
      )
    await cycle({ count: 3 })
    const results = await cycle({ seconds })
    await Promise.all(peers.map((peer) => peer.stop()))
    const samples = results.flatMap((r) => r.samples)
    const perSecond = results.reduce((sum, r) => sum + r.samples.length / r.seconds, 0)
    return { perSecond, latency: summarize(samples) }
  }
  const kl = await run('kube-locks')
  const raw = await run('raw')
  return {
    processes,
    seconds,
    kubeLocksPerSecond: kl.perSecond,
    rawPerSecond: raw.perSecond,
    kubeLocksLatency: kl.latency,
    rawLatency: raw.latency,
  }
}

// ---------------------------------------------------------------------------------------------------

export interface ScaleResult {
  readonly locks: number
  readonly acquireSeconds: number
  readonly holderRssMiB: number
  readonly holderHeapUsedMiB: number
  readonly holderRssBeforeMiB: number
  readonly listSeconds: Summary
  /** `locks --help`: the CLI's start-up alone. */
  readonly cliStartSeconds: Summary
  readonly listedRows: number
  readonly controller: Record<string, unknown> | { readonly error: string }
}

const mib = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10

export async function scale(ctx: Context, locks: number): Promise<ScaleResult> {
  const namespace = 'bench-scale'
  await createNamespace(ctx.kubeConfig, namespace)
  const holder = await worker(ctx, 'kube-locks', namespace, { nodeFlags: ['--expose-gc'] })
  ctx.log(`  one process acquires ${locks} locks…`)
  holder.send({ op: 'hold-many', prefix: 'scale', count: locks, concurrency: 64 })
  const held = (await holder.next(event('holding'), 1_800_000)) as PeerEvent & {
    seconds: number
    before: NodeJS.MemoryUsage
    after: NodeJS.MemoryUsage
  }
  ctx.log('  timing `locks list -A`…')
  const listTimes: number[] = []
  const startTimes: number[] = []
  let listedRows = 0
  for (let i = 0; i < 3; i++) {
    const help = new Peer('locks-help', process.execPath, [join(ROOT, 'cli', 'main.ts'), '--help'])
    const h0 = performance.now()
    await help.exited
    startTimes.push(performance.now() - h0)
    const list = new Peer('locks-list', process.execPath, [
      join(ROOT, 'cli', 'main.ts'),
      'list',
      '-A',
      '--kubeconfig',
      ctx.kubeconfig,
    ])
    let lines = 0
    list.child.stdout?.on('data', (chunk: Buffer) => {
      for (const byte of chunk) if (byte === 10) lines++
    })
    const t0 = performance.now()
    const code = await list.exited
    listTimes.push(performance.now() - t0)
    if (code !== 0) throw new Error(`locks list -A exited with ${code}`)
    listedRows = lines - 1
  }
  holder.kill()
  ctx.log(`  controller: npm run bench:controller -- --leases ${locks}…`)
  const controller = await controllerScale(ctx, locks)
  return {
    locks,
    acquireSeconds: held.seconds,
    holderRssMiB: mib(held.after.rss),
    holderHeapUsedMiB: mib(held.after.heapUsed),
    holderRssBeforeMiB: mib(held.before.rss),
    listSeconds: summarize(listTimes.map((ms) => ms / 1000)),
    cliStartSeconds: summarize(startTimes.map((ms) => ms / 1000)),
    listedRows,
    controller,
  }
}

/** Runs the controller's own scale benchmark against this control plane and folds in its JSON. */
async function controllerScale(ctx: Context, leases: number): Promise<Record<string, unknown>> {
  const peer = new Peer('controller-scale', process.execPath, [
    join(ROOT, 'bench', 'controller-scale.ts'),
    '--kubeconfig',
    ctx.kubeconfig,
    '--leases',
    String(leases),
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
