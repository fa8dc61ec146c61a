/** scale: one process holds many locks; `locks list -A` and the controller over as many leases. */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createNamespace } from '../cluster.ts'
import { Peer, type PeerEvent } from '../processes.ts'
import { type Summary, summarize } from '../stats.ts'
import { type Context, event, ROOT, worker } from './common.ts'

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
