import { type FootprintResult, footprintRows } from './footprint.ts'
import { latencyPlot, type PlotRow } from './plot.ts'
import { drainTable, waitingRows } from './report-waiting.ts'
import type { WatchDeliveryResult } from './scenarios/watch-delivery.ts'
import type { CrashSamples, ScaleResult, ThroughputResult, UncontendedResult } from './scenarios.ts'
import { CLIENT_GO_DEFAULTS, CLIENT_GO_TIGHT } from './scenarios.ts'
import { formatMs, formatRatio, summarize } from './stats.ts'
import type { WaitingResult } from './waiting.ts'

export interface Report {
  quick: boolean
  /** The scenarios run, when not all of them (`--only`). */
  only?: string[]
  date: string
  profile: Record<string, unknown>
  machine?: {
    cpu: string
    cpus: number
    memoryGiB: number
    kernel: string
    loadAverage: { start: number[]; end: number[]; runMean: number; runMax: number }
    runSeconds: number
  }
  versions?: Record<string, string>
  uncontended?: UncontendedResult
  handover?: {
    kubeLocks: number[]
    /** The same two writes and watch event issued directly with client-node. */
    raw: number[]
    redlock: number[]
    clientGoTight: number[]
    clientGoDefaults: number[]
  }
  /** Measured with `handover`: how soon three watches, one per client library, see the same update. */
  watchDelivery?: WatchDeliveryResult
  crash?: {
    holdMs: number
    kubeLocks: CrashSamples
    redlock: CrashSamples
    clientGoTight: CrashSamples
    clientGoDefaults: CrashSamples
  }
  throughput?: ThroughputResult[]
  waiting?: WaitingResult
  scale?: ScaleResult
  footprint?: FootprintResult
}

/** One line of the results: a figure, its baseline, the ratio and the target it answers to. */
export interface Row {
  readonly measure: string
  readonly value: string
  readonly baseline: string
  readonly ratio: string
  readonly target: string
  /** `true`/`false` when there is a target; `undefined` otherwise. */
  readonly met?: boolean | undefined
}

function rows(report: Report): Row[] {
  const out: Row[] = []
  const u = report.uncontended
  if (u) {
    for (const q of ['p50', 'p99'] as const) {
      const ratio = u.kubeLocks[q] / u.raw[q]
      out.push({
        measure: `uncontended acquire + release (defaults: fair), ${q}`,
        value: formatMs(u.kubeLocks[q]),
        baseline: `${formatMs(u.raw[q])} raw read + 2 updates`,
        ratio: formatRatio(ratio),
        target: '≤ 1.2×',
        met: ratio <= 1.2,
      })
    }
    out.push({
      measure: 'uncontended acquire + release, fair: false, p50 / p99',
      value: `${formatMs(u.kubeLocksUnfair.p50)} / ${formatMs(u.kubeLocksUnfair.p99)}`,
      baseline: `${formatMs(u.raw.p50)} / ${formatMs(u.raw.p99)} raw`,
      ratio: formatRatio(u.kubeLocksUnfair.p50 / u.raw.p50),
      target: '',
    })
    const fairRequests = u.requestsPerCycle.fair
    const holds = [
      [`semaphore (limit ${u.limit}), a free slot`, u.semaphore, u.requestsPerCycle.semaphore],
      ['shared hold of a free name', u.shared, u.requestsPerCycle.shared],
    ] as const
    for (const [label, summary, requests] of holds) {
      out.push(
        {
          measure: `uncontended acquire + release, ${label}, p50 / p99`,
          value: `${formatMs(summary.p50)} / ${formatMs(summary.p99)}`,
          baseline: `plain lock (fair) ${formatMs(u.kubeLocks.p50)} / ${formatMs(u.kubeLocks.p99)}, same process`,
          ratio: `${formatRatio(summary.p50 / u.kubeLocks.p50)} / ${formatRatio(summary.p99 / u.kubeLocks.p99)}`,
          target: '',
        },
        {
          measure: `uncontended acquire + release, ${label}: lease requests`,
          value: requestTally(requests),
          baseline: `plain lock (fair) ${requestTally(fairRequests)}`,
          ratio: formatRatio(tallyTotal(requests) / tallyTotal(fairRequests)),
          target: '',
        },
      )
    }
    out.push({
      measure: 'raw read + 2 updates, client-node default (new connection per request), p50',
      value: formatMs(u.rawPlain.p50),
      baseline: `${formatMs(u.raw.p50)} over kept-alive connections`,
      ratio: formatRatio(u.rawPlain.p50 / u.raw.p50),
      target: '',
    })
  }
  const h = report.handover
  const floor = u?.rawUpdate.p50
  if (h) {
    const kl = summarize(h.kubeLocks)
    for (const q of ['p50', 'p99'] as const) {
      const ratio = floor === undefined ? Number.NaN : kl[q] / floor
      out.push({
        measure: `handover (release → next holder), ${q}`,
        value: formatMs(kl[q]),
        baseline: floor === undefined ? '–' : `${formatMs(floor)} one raw update p50`,
        ratio: formatRatio(ratio),
        target: q === 'p50' ? '≤ 2.5×' : '',
        met: q === 'p50' && floor !== undefined ? ratio <= 2.5 : undefined,
      })
    }
    const raw = summarize(h.raw)
    out.push({
      measure: 'handover p50/p99: raw release → watch event → update',
      value: `${formatMs(raw.p50)} / ${formatMs(raw.p99)}`,
      baseline: `kube-locks ${formatMs(kl.p50)} / ${formatMs(kl.p99)}`,
      ratio: `kube-locks ${formatRatio(kl.p50 / raw.p50)} of it`,
      target: '',
    })
    out.push(...watchDeliveryRows(report.watchDelivery))
    const peers: Array<[string, number[], number | undefined]> = [
      [`client-go LE ${CLIENT_GO_DEFAULTS.label}`, h.clientGoDefaults, 100],
      [`client-go LE ${CLIENT_GO_TIGHT.label}`, h.clientGoTight, undefined],
      ['redlock defaults', h.redlock, 10],
    ]
    for (const [name, samples, target] of peers) {
      const s = summarize(samples)
      const speedup = s.p50 / kl.p50
      out.push({
        measure: `handover p50/p99: ${name}`,
        value: `${formatMs(s.p50)} / ${formatMs(s.p99)}`,
        baseline: `kube-locks ${formatMs(kl.p50)}`,
        ratio: `kube-locks ${formatRatio(speedup)} faster`,
        target: target === undefined ? '' : `≥ ${target}× faster`,
        met: target === undefined ? undefined : speedup >= target,
      })
    }
  }
  const c = report.crash
  if (c) {
    const entries: Array<[string, CrashSamples, boolean]> = [
      [`kube-locks, expires ${c.kubeLocks.expires} s`, c.kubeLocks, true],
      [`redlock, TTL ${c.redlock.expires} s`, c.redlock, false],
      [`client-go LE ${CLIENT_GO_TIGHT.label}`, c.clientGoTight, false],
      [`client-go LE ${CLIENT_GO_DEFAULTS.label}`, c.clientGoDefaults, false],
    ]
    for (const [name, samples, targeted] of entries) {
      const fromWrite = summarize(samples.fromLastWrite)
      const fromKill = summarize(samples.fromKill)
      const bound = (samples.expires + 1) * 1000
      out.push({
        measure: `crash handover: ${name}`,
        value: `${formatMs(fromWrite.max)} after last write (${formatMs(fromKill.max)} after kill)`,
        baseline: `duration + 1 s = ${formatMs(bound)}`,
        ratio: formatRatio(fromWrite.max / bound),
        target: targeted ? '≤ 1×' : '',
        met: targeted ? fromWrite.max <= bound : undefined,
      })
    }
  }
  for (const t of report.throughput ?? []) {
    out.push({
      measure: `throughput, ${t.processes} process${t.processes === 1 ? '' : 'es'} × own lock`,
      value: `${t.kubeLocksPerSecond.toFixed(0)} acquire+release/s`,
      baseline: `${t.rawPerSecond.toFixed(0)} raw read+2 updates/s`,
      ratio: formatRatio(t.kubeLocksPerSecond / t.rawPerSecond),
      target: '',
    })
  }
  if (report.waiting) out.push(...waitingRows(report.waiting))
  const s = report.scale
  if (s) {
    const growth = (after: number, before: number) =>
      `${after >= before ? '+' : '−'}${Math.abs(after - before).toFixed(1)} MiB`
    out.push({
      measure: `scale: one process holding ${s.locks} locks, RSS above before (no memory limit), 1 s after`,
      value: `${growth(s.holderRssMiB, s.holderRssBeforeMiB)} (heap ${s.holderHeapUsedMiB} MiB)`,
      baseline: `${s.holderRssBeforeMiB} → ${s.holderRssMiB} MiB`,
      ratio: formatRatio(s.holderRssMiB / s.holderRssBeforeMiB),
      target: '',
    })
    out.push({
      measure: `scale: the same ${s.settleSeconds} s later, still holding, the process doing light work`,
      value: `${growth(s.holderSettledRssMiB, s.holderRssBeforeMiB)} (heap ${s.holderSettledHeapUsedMiB} MiB)`,
      baseline: `${s.holderRssBeforeMiB} → ${s.holderSettledRssMiB} MiB`,
      ratio: formatRatio(s.holderSettledRssMiB / s.holderRssBeforeMiB),
      target: '≤ +50 MiB',
      met: s.holderSettledRssMiB - s.holderRssBeforeMiB <= 50,
    })
    const l = s.limitedHolder
    out.push(
      typeof l === 'string'
        ? {
            measure: 'scale: the same under a memory limit',
            value: `not measured: ${l}`,
            baseline: '',
            ratio: '',
            target: '',
          }
        : {
            measure: `scale: the same in a ${l.limitMiB} MiB memory cgroup, as a pod with a limit`,
            value: `${growth(l.rssMiB, l.rssBeforeMiB)} (heap ${l.heapUsedMiB} MiB)`,
            baseline: `${l.rssBeforeMiB} → ${l.rssMiB} MiB`,
            ratio: formatRatio(l.rssMiB / l.rssBeforeMiB),
            target: '≤ +50 MiB',
            met: l.rssMiB - l.rssBeforeMiB <= 50,
          },
    )
    const c = s.cappedHolder
    out.push({
      measure: `scale: the same without a limit, young generation capped (--max-semi-space-size=${c.semiSpaceMiB})`,
      value: `${growth(c.rssMiB, c.rssBeforeMiB)} (heap ${growth(c.heapUsedMiB, c.heapUsedBeforeMiB)})`,
      baseline: `${c.rssBeforeMiB} → ${c.rssMiB} MiB`,
      ratio: formatRatio(c.rssMiB / c.rssBeforeMiB),
      target: '≤ +50 MiB',
      met: c.rssMiB - c.rssBeforeMiB <= 50,
    })
    out.push({
      measure: `scale: acquiring ${s.locks} locks (64 at a time)`,
      value: `${s.acquireSeconds.toFixed(1)} s`,
      baseline: `${(s.locks / s.acquireSeconds).toFixed(0)}/s`,
      ratio: '',
      target: '',
    })
    out.push({
      measure: `scale: \`locks list -A\` (dist/cli/main.js, ${s.listedRows} rows), p50 of ${s.listSeconds.n}`,
      value: `${s.listSeconds.p50.toFixed(2)} s`,
      baseline: `${s.kubectlListSeconds.p50.toFixed(2)} s \`kubectl get leases -A\` (${s.kubectlRows} rows); ${s.cliStartSeconds.p50.toFixed(2)} s \`locks --help\``,
      ratio: formatRatio(s.listSeconds.p50 / s.kubectlListSeconds.p50),
      target: '≤ 1× kubectl',
    })
    out.push(...controllerRows('', s.controller))
    if (s.limitedController) {
      const limit = (s.limitedController as { memoryLimitMiB?: number }).memoryLimitMiB
      out.push(
        ...controllerRows(
          limit === undefined ? ' (memory cgroup)' : ` in a ${limit} MiB memory cgroup`,
          s.limitedController,
        ),
      )
    }
  }
  if (report.footprint) out.push(...footprintRows(report.footprint))
  return out
}

const tallyTotal = (tally: Readonly<Record<string, number>>) =>
  Object.values(tally).reduce((sum, n) => sum + n, 0)

/** Requests of one operation: the total, then each kind, the most frequent first (`5.00: get lock 1.00, …`). */
function requestTally(tally: Readonly<Record<string, number>>): string {
  const kinds = Object.entries(tally)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([kind, n]) => `${kind} ${n.toFixed(2)}`)
  return `${tallyTotal(tally).toFixed(2)}: ${kinds.join(', ')}`
}

/** The controller's scale figures, from bench/controller-scale.ts's JSON. */
function controllerRows(where: string, c: Record<string, unknown>): Row[] {
  if ('error' in c)
    return [
      { measure: `scale: controller${where}`, value: String(c.error), baseline: '', ratio: '', target: '' },
    ]
  return [
    {
      measure: `scale: controller${where}, RSS peak / idle (${String(c.leases)} leases)`,
      value: `${String(c.peakRssMiB)} / ${String(c.steadyRssMiB)} MiB`,
      baseline: '',
      ratio: '',
      target: '≤ 150 MiB',
    },
    {
      measure: `scale: controller${where}, reclaim pass (all due → all free)`,
      value: `${String(c.reclaimPassSeconds)} s`,
      baseline: `${String(c.reclaimPerSecond)}/s`,
      ratio: '',
      target: '',
    },
    {
      measure: `scale: controller${where}, GC pass (listed → all deleted)`,
      value: `${String(c.gcPassSeconds)} s`,
      baseline: `${String(c.gcPerSecond)}/s`,
      ratio: '',
      target: '',
    },
  ]
}

function header(report: Report): string[] {
  const m = report.machine
  const v = report.versions ?? {}
  return [
    m
      ? `machine: ${m.cpus} × ${m.cpu}, ${m.memoryGiB} GiB, Linux ${m.kernel}; load average ${m.loadAverage.start[0]} at start, ${m.loadAverage.runMean} mean / ${m.loadAverage.runMax} max during the ${m.runSeconds} s run (shared machine)`
      : 'machine: unknown',
    `versions: Node ${v.node}, Kubernetes ${v.kubernetes} (etcd ${v.etcd}, no fsync, local processes), @kubernetes/client-node ${v.clientNode}, client-go ${v.clientGo} (Go ${v.go}), redis-server ${v.redis}, redlock ${v.redlock} + ioredis ${v.ioredis}`,
  ]
}

const mark = (met: boolean | undefined) => (met === undefined ? '' : met ? 'met' : 'MISSED')

export function renderTable(report: Report): string {
  const table = rows(report)
  const columns = ['measure', 'kube-locks / figure', 'baseline', 'ratio', 'target', '']
  const cells = table.map((r) => [r.measure, r.value, r.baseline, r.ratio, r.target, mark(r.met)])
  const lines = [
    `kube-locks benchmarks${report.quick ? ' (quick)' : ''}${report.only ? ` (${report.only.join(', ')})` : ''}, ${report.date}`,
    ...header(report),
    '',
    ...textTable(columns, cells),
  ]
  if (report.waiting) {
    const drains = drainTable(report.waiting)
    lines.push('', ...textTable(drains.columns, drains.cells), '', ...drains.notes)
  }
  return `\n${lines.join('\n')}\n`
}

function textTable(columns: readonly string[], cells: readonly (readonly string[])[]): string[] {
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => (row[i] as string).length)))
  const line = (row: readonly string[]) =>
    row
      .map((cell, i) => cell.padEnd(widths[i] as number))
      .join('  ')
      .trimEnd()
  return [line(columns), ...cells.map(line)]
}

const COLORS = {
  kubeLocks: '#1f6feb',
  raw: '#6e7781',
  clientGo: '#2da44e',
  redlock: '#cf222e',
  queue: '#8250df',
}

function flags(report: Report): string {
  const flags = [
    ...(report.quick ? ['--quick'] : []),
    ...(report.only ? [`--only ${report.only.join(',')}`] : []),
  ]
  return flags.length === 0 ? '' : ` -- ${flags.join(' ')}`
}

function drainMarkdown(w: WaitingResult): string[] {
  const { columns, cells, notes } = drainTable(w)
  const row = (cells: readonly string[]) => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`
  return [
    '',
    row(columns),
    row(columns.map(() => '---')),
    ...cells.map(row),
    '',
    ...notes.map((n) => `- ${n}`),
  ]
}

/** The page's results and their plot; `plotName` is the plot's file name in `bench/plots/`, without `.svg`. */
export function renderMarkdown(report: Report, plotName = 'latency'): { markdown: string; svg: string } {
  const plotRows: PlotRow[] = []
  if (report.uncontended) {
    plotRows.push(
      {
        label: 'kube-locks acquire + release (fair)',
        samples: report.uncontended.samples.kubeLocks,
        color: COLORS.kubeLocks,
      },
      {
        label: 'kube-locks acquire + release, fair: false',
        samples: report.uncontended.samples.kubeLocksUnfair,
        color: COLORS.kubeLocks,
      },
      {
        label: `kube-locks semaphore (limit ${report.uncontended.limit}), free slot`,
        samples: report.uncontended.samples.semaphore,
        color: COLORS.kubeLocks,
      },
      {
        label: 'kube-locks shared hold',
        samples: report.uncontended.samples.shared,
        color: COLORS.kubeLocks,
      },
      { label: 'raw read + 2 updates (floor)', samples: report.uncontended.samples.raw, color: COLORS.raw },
    )
  }
  if (report.handover) {
    const h = report.handover
    plotRows.push(
      { label: 'handover: kube-locks', samples: h.kubeLocks, color: COLORS.kubeLocks },
      { label: 'handover: raw update → watch → update', samples: h.raw, color: COLORS.raw },
      { label: 'handover: redlock', samples: h.redlock, color: COLORS.redlock },
      {
        label: `handover: client-go ${CLIENT_GO_TIGHT.label}`,
        samples: h.clientGoTight,
        color: COLORS.clientGo,
      },
      {
        label: `handover: client-go ${CLIENT_GO_DEFAULTS.label}`,
        samples: h.clientGoDefaults,
        color: COLORS.clientGo,
      },
    )
  }
  if (report.watchDelivery) {
    const d = report.watchDelivery
    plotRows.push(
      { label: 'watch delivery: client-go', samples: d.clientGo, color: COLORS.clientGo },
      { label: 'watch delivery: kube-locks store', samples: d.kubeLocks, color: COLORS.kubeLocks },
      { label: 'watch delivery: client-node', samples: d.clientNode, color: COLORS.raw },
    )
  }
  if (report.waiting) {
    const w = report.waiting
    plotRows.push(
      { label: 'single waiter: kube-locks fair', samples: w.single.fair, color: COLORS.queue },
      { label: 'single waiter: kube-locks fair: false', samples: w.single.unfair, color: COLORS.queue },
      {
        label: `single waiter: kube-locks semaphore (limit ${w.semaphoreLimit})`,
        samples: w.single.semaphore,
        color: COLORS.queue,
      },
      ...[w.fair, w.semaphore, w.unfair].map((d) => ({
        label: `queue of ${w.waiters}: ${d.label}`,
        samples: d.handoverSamples,
        color: COLORS.queue,
      })),
      { label: `queue of ${w.waiters}: redlock`, samples: w.redlock.handoverSamples, color: COLORS.redlock },
      ...w.clientGo.map((d) => ({
        label: `queue of ${w.waiters}: ${d.label.replace('client-go LE ', 'client-go ')}`,
        samples: d.handoverSamples,
        color: COLORS.clientGo,
      })),
    )
  }
  if (report.crash) {
    const c = report.crash
    plotRows.push(
      { label: 'crash: kube-locks (from kill)', samples: c.kubeLocks.fromKill, color: COLORS.kubeLocks },
      { label: 'crash: redlock (from kill)', samples: c.redlock.fromKill, color: COLORS.redlock },
      {
        label: 'crash: client-go tight (from kill)',
        samples: c.clientGoTight.fromKill,
        color: COLORS.clientGo,
      },
      {
        label: 'crash: client-go defaults (from kill)',
        samples: c.clientGoDefaults.fromKill,
        color: COLORS.clientGo,
      },
    )
  }
  if (report.footprint) {
    const f = report.footprint
    plotRows.push(
      {
        label: 'start → lock acquired: kube-locks',
        samples: f.kubeLocks.samples.startMs,
        color: COLORS.kubeLocks,
      },
      { label: 'start → lock acquired: redlock', samples: f.redlock.samples.startMs, color: COLORS.redlock },
      { label: '`locks --help`', samples: f.samples.cliHelpMs, color: COLORS.kubeLocks },
      { label: '`kubectl --help`', samples: f.samples.kubectlHelpMs, color: COLORS.clientGo },
      { label: '`node -e 0`', samples: f.samples.nodeExitMs, color: COLORS.raw },
    )
  }
  const svg = latencyPlot('Latency distributions, one run on one machine', plotRows)
  const table = rows(report)
  const escapeCell = (cell: string) => cell.replace(/\|/g, '\\|')
  const markdown = [
    `Measured ${report.date.slice(0, 10)} with \`npm run bench${flags(report)}\`.`,
    '',
    ...header(report).map((line) => `- ${line}`),
    '',
    '| measure | kube-locks / figure | baseline | ratio | target | |',
    '|---|---|---|---|---|---|',
    ...table.map(
      (r) =>
        `| ${[r.measure, r.value, r.baseline, r.ratio, r.target, mark(r.met)].map(escapeCell).join(' | ')} |`,
    ),
    ...(report.waiting ? drainMarkdown(report.waiting) : []),
    '',
    `![Latency distributions](../bench/plots/${plotName}.svg)`,
  ].join('\n')
  return { markdown, svg }
}

/** One row per watching client: update sent → change seen, against client-go's and one update's. */
function watchDeliveryRows(d: WatchDeliveryResult | undefined): Row[] {
  if (d === undefined) return []
  const update = summarize(d.update)
  const clientGo = summarize(d.clientGo)
  const rows: Row[] = [
    {
      measure: 'watch delivery (update sent → change seen), p50/p99: client-go watch',
      value: `${formatMs(clientGo.p50)} / ${formatMs(clientGo.p99)}`,
      baseline: `${formatMs(update.p50)} update answered p50`,
      ratio: formatRatio(clientGo.p50 / update.p50),
      target: '',
    },
  ]
  for (const [label, samples] of [
    ['kube-locks store watch', d.kubeLocks],
    ['client-node watch', d.clientNode],
  ] as const) {
    const s = summarize(samples)
    rows.push({
      measure: `watch delivery (update sent → change seen), p50/p99: ${label}`,
      value: `${formatMs(s.p50)} / ${formatMs(s.p99)}`,
      baseline: `client-go ${formatMs(clientGo.p50)} / ${formatMs(clientGo.p99)}`,
      ratio: formatRatio(s.p50 / clientGo.p50),
      target: '',
    })
  }
  return rows
}
