/**
 * `npm run bench [-- --quick] [--only uncontended,handover,crash,throughput,waiting,scale,footprint] [--docs]`
 *
 * kube-locks next to what users would use instead, in one run on one machine: the raw Lease writes
 * (the floor), client-go's leader election (a Go peer, default and tight settings) and redlock on a
 * local Redis, and what each costs a process in memory and start-up. Starts its own control plane
 * (etcd + kube-apiserver) and redis-server and stops them at the end. Prints a table, writes JSON to
 * bench/results/ and, on a full run (or with --docs), the figures and the latency plot to
 * docs/benchmarks.md and bench/plots/latency.svg. A run of some scenarios with --docs writes its
 * figures to a section of that set of scenarios (and bench/plots/latency-<scenarios>.svg), leaving the
 * full run's figures and other sets' sections as they are; the next full run removes those sections.
 */
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { cpus, loadavg, release, totalmem } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { ControlPlane, VERSIONS } from '../dev/cluster/index.ts'
import {
  apiGet,
  buildLeaderElectionPeer,
  commandOutput,
  createNamespace,
  loadKubeConfig,
  startRedis,
} from './cluster.ts'
import { footprint } from './footprint.ts'
import { killAll } from './processes.ts'
import { type Report, renderMarkdown, renderTable } from './report.ts'
import {
  CLIENT_GO_DEFAULTS,
  CLIENT_GO_TIGHT,
  type Context,
  crashClientGo,
  crashLocks,
  handoverClientGo,
  handoverLocks,
  ROOT,
  scale,
  throughput,
  uncontended,
  watchDelivery,
} from './scenarios.ts'
import { summarize } from './stats.ts'
import { waiting } from './waiting.ts'

const SCENARIOS = ['uncontended', 'handover', 'crash', 'throughput', 'waiting', 'scale', 'footprint'] as const
const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    docs: { type: 'boolean' },
  },
})
const quick = values.quick ?? false
const only = new Set(values.only?.split(',') ?? SCENARIOS)
for (const name of only) {
  if (!(SCENARIOS as readonly string[]).includes(name))
    throw new Error(`Expected --only to name some of ${SCENARIOS.join(', ')}, got \`${name}\``)
}
const complete = only.size === SCENARIOS.length
const writeDocs = values.docs ?? (!quick && complete)
const PROFILE = quick
  ? {
      uncontended: 40,
      handover: 8,
      handoverClientGoDefaults: 2,
      handoverClientGoTight: 6,
      watchDelivery: 20,
      crash: 1,
      crashClientGoDefaults: 1,
      throughput: [2],
      throughputSeconds: 3,
      waiters: 10,
      sharedProcesses: 2,
      waitIdle: 5,
      waitBusy: 12,
      singleHandovers: 6,
      watchCost: { watchers: 5, seconds: 5 },
      scale: 300,
      footprint: 3,
    }
  : {
      uncontended: 200,
      handover: 40,
      handoverClientGoDefaults: 6,
      handoverClientGoTight: 20,
      watchDelivery: 200,
      crash: 3,
      crashClientGoDefaults: 2,
      throughput: [1, 8],
      throughputSeconds: 10,
      waiters: 100,
      sharedProcesses: 10,
      waitIdle: 15,
      waitBusy: 30,
      singleHandovers: 20,
      watchCost: { watchers: 30, seconds: 15 },
      scale: 10_000,
      footprint: 10,
    }
/** A generated part of docs/benchmarks.md: the full run's results, or those of a run of some scenarios. */
interface Block {
  readonly start: string
  readonly end: string
}
const RESULTS: Block = { start: '<!-- results:start -->', end: '<!-- results:end -->' }
/** The section of a run of some scenarios alone: one per set of scenarios, so runs of other sets stay. */
function partialBlock(names: readonly string[]): Block {
  const set = names.join(',')
  return { start: `<!-- partial-results:${set}:start -->`, end: `<!-- partial-results:${set}:end -->` }
}
/** Every partial section, whatever its scenarios: a full run replaces them all. */
const ANY_PARTIAL = /<!-- partial-results:([a-z,]+):start -->[\s\S]*?<!-- partial-results:\1:end -->\n*/g

const CRASH_EXPIRES = 5
const CRASH_HOLD_MS = 2_500

const log = (line: string) => process.stderr.write(`${line}\n`)
const loadSamples: number[] = []
const loadTimer = setInterval(() => loadSamples.push(loadavg()[0] as number), 5_000)
const startedAt = new Date()
const loadAtStart = loadavg()

let plane: ControlPlane | undefined
let redis: Awaited<ReturnType<typeof startRedis>> | undefined
const onSignal = () => {
  void killAll().finally(async () => {
    await redis?.stop()
    await plane?.stop()
    process.exit(130)
  })
}
process.once('SIGINT', onSignal)
process.once('SIGTERM', onSignal)

const report: Report = {
  quick,
  ...(!complete && { only: SCENARIOS.filter((name) => only.has(name)) }),
  date: startedAt.toISOString(),
  profile: PROFILE,
} as Report
try {
  const goPeer = await buildLeaderElectionPeer(join(ROOT, 'bench', 'peers', 'leader-election'), log)
  log('starting a local control plane…')
  plane = await ControlPlane.start({ log })
  log('starting redis-server…')
  redis = await startRedis(log)
  const kubeConfig = loadKubeConfig(plane.kubeconfigPath)
  const serverPids = [plane.apiserver.pid, plane.etcd.pid].filter((pid) => pid !== undefined)
  const ctx: Context = {
    kubeconfig: plane.kubeconfigPath,
    kubeConfig,
    redisPort: redis.port,
    redisPid: redis.pid,
    goPeer,
    serverPids,
    log,
  }
  report.versions = await versions(kubeConfig, redis.version)

  if (only.has('uncontended')) {
    log(`uncontended acquire + release, ${PROFILE.uncontended} each…`)
    report.uncontended = await uncontended(ctx, PROFILE.uncontended)
  }
  if (only.has('handover')) {
    await createNamespace(kubeConfig, 'bench-handover-client-go')
    log(`handover: kube-locks × ${PROFILE.handover}…`)
    const kubeLocks = await handoverLocks(ctx, 'kube-locks', PROFILE.handover)
    log(`handover: raw release → watch event → update × ${PROFILE.handover}…`)
    const raw = await handoverLocks(ctx, 'raw', PROFILE.handover)
    log(`handover: redlock × ${PROFILE.handover}…`)
    const redlock = await handoverLocks(ctx, 'redlock', PROFILE.handover)
    log(`handover: client-go ${CLIENT_GO_TIGHT.label} × ${PROFILE.handoverClientGoTight}…`)
    const tight = await handoverClientGo(
      ctx,
      'bench-handover-client-go',
      CLIENT_GO_TIGHT,
      PROFILE.handoverClientGoTight,
    )
    log(`handover: client-go ${CLIENT_GO_DEFAULTS.label} × ${PROFILE.handoverClientGoDefaults}…`)
    const defaults = await handoverClientGo(
      ctx,
      'bench-handover-client-go',
      CLIENT_GO_DEFAULTS,
      PROFILE.handoverClientGoDefaults,
    )
    report.handover = { kubeLocks, raw, redlock, clientGoTight: tight, clientGoDefaults: defaults }
    log(
      `handover: watch delivery, client-go, kube-locks' store and client-node side by side × ${PROFILE.watchDelivery}…`,
    )
    report.watchDelivery = await watchDelivery(ctx, PROFILE.watchDelivery)
  }
  if (only.has('crash')) {
    log(
      `crash handover (SIGKILL), all four side by side, expires ${CRASH_EXPIRES} s for kube-locks and redlock…`,
    )
    await createNamespace(kubeConfig, 'bench-crash-client-go')
    const [kubeLocks, redlock, tight, defaults] = await Promise.all([
      crashLocks(ctx, 'kube-locks', PROFILE.crash, CRASH_EXPIRES, CRASH_HOLD_MS),
      crashLocks(ctx, 'redlock', PROFILE.crash, CRASH_EXPIRES, CRASH_HOLD_MS),
      crashClientGo(ctx, 'bench-crash-client-go', CLIENT_GO_TIGHT, PROFILE.crash, CRASH_HOLD_MS),
      crashClientGo(
        ctx,
        'bench-crash-client-go',
        CLIENT_GO_DEFAULTS,
        PROFILE.crashClientGoDefaults,
        CRASH_HOLD_MS,
      ),
    ])
    report.crash = {
      holdMs: CRASH_HOLD_MS,
      kubeLocks,
      redlock,
      clientGoTight: tight,
      clientGoDefaults: defaults,
    }
  }
  if (only.has('throughput')) {
    report.throughput = []
    for (const processes of PROFILE.throughput) {
      log(`throughput: ${processes} process(es) × distinct locks, ${PROFILE.throughputSeconds} s each…`)
      report.throughput.push(await throughput(ctx, processes, PROFILE.throughputSeconds))
    }
  }
  if (only.has('waiting')) {
    log(`waiting: ${PROFILE.waiters} processes on one lock, each system in turn…`)
    report.waiting = await waiting(ctx, {
      waiters: PROFILE.waiters,
      idleSeconds: PROFILE.waitIdle,
      busySeconds: PROFILE.waitBusy,
      singleHandovers: PROFILE.singleHandovers,
      clientGo: [CLIENT_GO_DEFAULTS, CLIENT_GO_TIGHT],
      sharedProcesses: PROFILE.sharedProcesses,
      watchCost: PROFILE.watchCost,
    })
  }
  if (only.has('scale')) {
    log(`scale: ${PROFILE.scale} held locks…`)
    report.scale = await scale(ctx, PROFILE.scale, plane.binaries.kubectl)
  }
  if (only.has('footprint')) {
    log(`footprint: memory and start-up, ${PROFILE.footprint} fresh processes of each kind…`)
    report.footprint = await footprint(ctx, {
      repetitions: PROFILE.footprint,
      kubectl: plane.binaries.kubectl,
    })
  }
} finally {
  clearInterval(loadTimer)
  await killAll()
  await redis?.stop()
  await plane?.stop()
}

const load = summarize(loadSamples.length > 0 ? loadSamples : [loadAtStart[0] as number])
report.machine = {
  cpu: cpus()[0]?.model ?? 'unknown',
  cpus: cpus().length,
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  kernel: release(),
  loadAverage: {
    start: loadAtStart.map((x) => Math.round(x * 100) / 100),
    end: loadavg().map((x) => Math.round(x * 100) / 100),
    runMean: Math.round(load.mean * 100) / 100,
    runMax: Math.round(load.max * 100) / 100,
  },
  runSeconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
}

process.stdout.write(renderTable(report))
const resultsDir = join(ROOT, 'bench', 'results')
await mkdir(resultsDir, { recursive: true })
const file = join(resultsDir, `bench-${report.date.replace(/[:.]/g, '-')}${quick ? '-quick' : ''}.json`)
await writeFile(file, `${JSON.stringify(report, null, 2)}\n`)
process.stdout.write(`\nwritten to ${file}\n`)
if (writeDocs) {
  const names = SCENARIOS.filter((name) => only.has(name))
  const plotName = complete ? 'latency' : `latency-${names.join('-')}`
  const { markdown, svg } = renderMarkdown(report, plotName)
  await mkdir(join(ROOT, 'bench', 'plots'), { recursive: true })
  await writeFile(join(ROOT, 'bench', 'plots', `${plotName}.svg`), svg)
  const docPath = join(ROOT, 'docs', 'benchmarks.md')
  let doc = existsSync(docPath) ? await readFile(docPath, 'utf8') : '# Benchmarks\n'
  if (complete) {
    doc = splice(doc, RESULTS, markdown).replace(ANY_PARTIAL, '')
  } else {
    const heading = `### Run of ${names.join(', ')} alone\n\nFigures of a separate run of only these scenarios, as the script wrote them; they are not those of the full run above.`
    doc = splice(doc, partialBlock(names), `${heading}\n\n${markdown}`)
  }
  await writeFile(docPath, alignTables(doc))
  process.stdout.write(`figures written to docs/benchmarks.md and bench/plots/${plotName}.svg\n`)
}

/**
 * Replaces a generated part of the document, keeping the text around it; `undefined` removes it. A
 * part not there yet goes after the full run's results, or at the end.
 */
function splice(doc: string, block: Block, generated: string | undefined): string {
  const text = generated === undefined ? '' : `${block.start}\n${generated.trim()}\n${block.end}`
  const at = doc.indexOf(block.start)
  const to = doc.indexOf(block.end)
  if (at >= 0 && to > at) {
    const after = doc.slice(to + block.end.length)
    return doc.slice(0, at) + text + (text === '' ? after.replace(/^\n+/, '') : after)
  }
  if (text === '') return doc
  const anchor = doc.indexOf(RESULTS.end)
  if (anchor < 0) return `${doc.trimEnd()}\n\n${text}\n`
  const cut = anchor + RESULTS.end.length
  return `${doc.slice(0, cut)}\n\n${text}${doc.slice(cut)}`
}

/** Pads every Markdown table's cells to their column's width, as the repository's formatter does. */
function alignTables(text: string): string {
  const lines = text.split('\n')
  const out: string[] = []
  for (let i = 0; i < lines.length; ) {
    if (!lines[i]?.startsWith('|')) {
      out.push(lines[i] as string)
      i++
      continue
    }
    const block: string[][] = []
    while (lines[i]?.startsWith('|')) {
      const cells = (lines[i] as string)
        .trim()
        .slice(1, -1)
        .split(/(?<!\\)\|/)
        .map((cell) => cell.trim())
      block.push(cells)
      i++
    }
    const width = (cell: string) => [...cell].length
    const widths = (block[0] ?? []).map((_, c) =>
      Math.max(3, ...block.filter((_, r) => r !== 1).map((row) => width(row[c] ?? ''))),
    )
    for (const [r, row] of block.entries()) {
      const cells = widths.map((w, c) =>
        r === 1 ? '-'.repeat(w) : (row[c] ?? '') + ' '.repeat(w - width(row[c] ?? '')),
      )
      out.push(`| ${cells.join(' | ')} |`)
    }
  }
  return out.join('\n')
}

async function versions(kubeConfig: ReturnType<typeof loadKubeConfig>, redisVersion: string) {
  const server = JSON.parse(await apiGet(kubeConfig, '/version')) as { gitVersion: string }
  const goMod = readFileSync(join(ROOT, 'bench', 'peers', 'leader-election', 'go.mod'), 'utf8')
  const pkg = (name: string) =>
    (
      JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as {
        version: string
      }
    ).version
  return {
    node: process.version,
    kubernetes: server.gitVersion,
    etcd: VERSIONS.etcd,
    clientNode: pkg('@kubernetes/client-node'),
    clientGo: /k8s\.io\/client-go (\S+)/.exec(goMod)?.[1] ?? 'unknown',
    go: (await commandOutput('go', ['env', 'GOVERSION'])).replace(/^go/, ''),
    redis: redisVersion,
    redlock: pkg('redlock'),
    ioredis: pkg('ioredis'),
  }
}
