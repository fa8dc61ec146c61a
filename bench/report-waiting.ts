import { RECORD_FRESH_MS } from '../sdk/internal.ts'
import type { Row } from './report.ts'
import { formatMs, formatRatio, summarize } from './stats.ts'
import type { DrainResult, WaitingResult } from './waiting.ts'

/** Targets of fair waiting, against `fair: false` and the single-waiter handover of the same run. */
export function waitingRows(w: WaitingResult): Row[] {
  const single = summarize(w.single.fair)
  const singleUnfair = summarize(w.single.unfair)
  const { fair, unfair } = w
  const n = w.waiters
  const out: Row[] = [
    {
      measure: 'single-waiter handover (reference), p50 / p99',
      value: `fair ${formatMs(single.p50)} / ${formatMs(single.p99)}`,
      baseline: `fair: false ${formatMs(singleUnfair.p50)} / ${formatMs(singleUnfair.p99)}`,
      ratio: formatRatio(single.p50 / singleUnfair.p50),
      target: '',
    },
    {
      measure: `queue of ${n}, fair: lease requests per handover`,
      value: fair.requestsPerHandover.toFixed(2),
      baseline: `fair: false ${unfair.requestsPerHandover.toFixed(1)}`,
      ratio: formatRatio(fair.requestsPerHandover / unfair.requestsPerHandover),
      target: '≤ 4',
      met: fair.requestsPerHandover <= 4,
    },
  ]
  for (const [q, bound] of [
    ['p50', 1.5],
    ['p99', 3],
  ] as const) {
    const ratio = fair.handover[q] / single.p50
    out.push({
      measure: `queue of ${n}, fair: handover along the queue, ${q}`,
      value: formatMs(fair.handover[q]),
      baseline: `${formatMs(single.p50)} single waiter p50; fair: false ${formatMs(unfair.handover[q])}`,
      ratio: formatRatio(ratio),
      target: `≤ ${bound}×`,
      met: ratio <= bound,
    })
  }
  const warm = fair.warm
  if (warm) {
    out.push({
      measure: `queue of ${n}, fair, drained again by the same processes: handover p50 / p99`,
      value: `${formatMs(warm.handover.p50)} / ${formatMs(warm.handover.p99)}`,
      baseline: `${formatMs(single.p50)} single waiter p50; first drain ${formatMs(fair.handover.p50)} / ${formatMs(fair.handover.p99)}`,
      ratio: `${formatRatio(warm.handover.p50 / single.p50)} / ${formatRatio(warm.handover.p99 / single.p50)}`,
      target: '',
    })
  }
  out.push(
    {
      measure: `queue of ${n}, fair: acquisitions out of start order`,
      value: `${fair.outOfOrder} (${fair.inversions} pairs)${warm ? `; drained again ${warm.outOfOrder} (${warm.inversions} pairs)` : ''}`,
      baseline: `fair: false ${unfair.outOfOrder} (${unfair.inversions} pairs)${fair.lineInStartOrder === undefined ? '' : `; line listed in start order: ${fair.lineInStartOrder ? 'yes' : 'no'}`}`,
      ratio: '',
      target: '0',
      met: fair.outOfOrder === 0 && (warm?.outOfOrder ?? 0) === 0,
    },
    {
      measure: `waiting, fair: lease requests/s per waiting process (${n} waiting)`,
      value: fair.addedPerWaiterPerSecond.toFixed(3),
      baseline: `${fair.idlePerSecond.toFixed(2)}/s holder alone → ${fair.waitingPerSecond.toFixed(2)}/s`,
      ratio: '',
      target: '≤ 0.2',
      met: fair.addedPerWaiterPerSecond <= 0.2,
    },
    ...semaphoreRows(w),
    ...sharedRows(w, single.p50),
    {
      measure: `watch event: CPU per event per watching process (${w.watchCost.watchers} watching)`,
      value: `${w.watchCost.kubeLocks.perEventUs.toFixed(0)} µs`,
      baseline: `${w.watchCost.bare.perEventUs.toFixed(0)} µs bare node:https watch`,
      ratio: formatRatio(w.watchCost.kubeLocks.perEventUs / w.watchCost.bare.perEventUs),
      target: '',
    },
    {
      measure: `waiting, fair: false: lease requests/s per waiting process (${n} waiting)`,
      value: unfair.addedPerWaiterPerSecond.toFixed(3),
      baseline: `${unfair.idlePerSecond.toFixed(2)}/s holder alone → ${unfair.waitingPerSecond.toFixed(2)}/s`,
      ratio: '',
      target: '',
    },
  )
  return out
}

/**
 * The semaphore's queue, every slot held when its waiters join, against the same targets as the fair
 * lock's: its own single-waiter handover (two processes taking turns on its last free slot) is the
 * reference, the plain lock's figures stand beside it.
 */
function semaphoreRows(w: WaitingResult): Row[] {
  const d = w.semaphore
  const single = summarize(w.single.semaphore)
  const plainSingle = summarize(w.single.fair)
  const label = `queue of ${w.waiters}, semaphore (limit ${w.semaphoreLimit})`
  const out: Row[] = [
    {
      measure: `single-waiter handover, semaphore (limit ${w.semaphoreLimit}), its last free slot (reference), p50 / p99`,
      value: `${formatMs(single.p50)} / ${formatMs(single.p99)}`,
      baseline: `plain lock, fair ${formatMs(plainSingle.p50)} / ${formatMs(plainSingle.p99)}`,
      ratio: formatRatio(single.p50 / plainSingle.p50),
      target: '',
    },
    {
      measure: `${label}: lease requests per handover`,
      value: d.requestsPerHandover.toFixed(2),
      baseline: `plain lock, fair ${w.fair.requestsPerHandover.toFixed(2)}`,
      ratio: formatRatio(d.requestsPerHandover / w.fair.requestsPerHandover),
      target: '≤ 4',
      met: d.requestsPerHandover <= 4,
    },
  ]
  for (const [q, bound] of [
    ['p50', 1.5],
    ['p99', 3],
  ] as const) {
    const ratio = d.handover[q] / single.p50
    out.push({
      measure: `${label}: handover along the queue, ${q}`,
      value: formatMs(d.handover[q]),
      baseline: `${formatMs(single.p50)} single semaphore waiter p50; plain lock, fair ${formatMs(w.fair.handover[q])}`,
      ratio: formatRatio(ratio),
      target: `≤ ${bound}×`,
      met: ratio <= bound,
    })
  }
  out.push(
    {
      measure: `${label}: acquisitions out of start order`,
      value: `${d.outOfOrder} (${d.inversions} pairs)`,
      baseline: `plain lock, fair ${w.fair.outOfOrder} (${w.fair.inversions} pairs)${d.lineInStartOrder === undefined ? '' : `; records listed in start order: ${d.lineInStartOrder ? 'yes' : 'no'}`}`,
      ratio: '',
      target: '0',
      met: d.outOfOrder === 0,
    },
    {
      measure: `waiting, semaphore (limit ${w.semaphoreLimit}): lease requests/s per waiting process (${w.waiters} waiting)`,
      value: d.addedPerWaiterPerSecond.toFixed(3),
      baseline: `${d.idlePerSecond.toFixed(2)}/s holders alone → ${d.waitingPerSecond.toFixed(2)}/s; plain lock, fair ${w.fair.addedPerWaiterPerSecond.toFixed(3)}`,
      ratio: '',
      target: '≤ 0.2',
      met: d.addedPerWaiterPerSecond <= 0.2,
    },
  )
  return out
}

/**
 * The same fair queue with its waiters spread over fewer processes: what the targets read when a change
 * of the line wakes `sharedProcesses` processes rather than one per waiter on the same two cores.
 */
function sharedRows(w: WaitingResult, singleP50: number): Row[] {
  const d = w.fairShared
  const label = `queue of ${w.waiters} in ${w.sharedProcesses} processes, fair`
  return [
    {
      measure: `${label}: lease requests per handover`,
      value: d.requestsPerHandover.toFixed(2),
      baseline: `one process each ${w.fair.requestsPerHandover.toFixed(2)}`,
      ratio: '',
      target: '',
    },
    {
      measure: `${label}: handover along the queue, p50 / p99`,
      value: `${formatMs(d.handover.p50)} / ${formatMs(d.handover.p99)}`,
      baseline: `${formatMs(singleP50)} single waiter p50`,
      ratio: `${formatRatio(d.handover.p50 / singleP50)} / ${formatRatio(d.handover.p99 / singleP50)}`,
      target: '',
    },
    {
      measure: `${label}: acquisitions out of start order`,
      value: `${d.outOfOrder} (${d.inversions} pairs)`,
      baseline: '',
      ratio: '',
      target: '0',
      met: d.outOfOrder === 0,
    },
  ]
}

/** The handover p50 of each fifth of the queue, in the order served. */
function byFifth(d: DrainResult): string {
  const size = Math.ceil(d.handoverSamples.length / 5)
  return Array.from({ length: 5 }, (_, k) =>
    formatMs(summarize(d.handoverSamples.slice(k * size, (k + 1) * size)).p50),
  ).join(', ')
}

/** Every queue of the run side by side. */
export function drainTable(w: WaitingResult): { columns: string[]; cells: string[][]; notes: string[] } {
  const queues = [w.fair, w.fairShared, w.semaphore, w.unfair, w.redlock, ...w.clientGo]
  const columns = [
    `${w.waiters} waiting on one lock`,
    'requests per handover',
    'handover p50 / p99',
    'out of start order (pairs)',
    'requests/s per waiter',
    'CPU per waiter, ms/s',
    'CPU per handover, ms: clients + store',
    'all waiting after',
    'drained in',
    'load',
  ]
  const cells = queues.map((d) => [
    d.label,
    `${d.requestsPerHandover.toFixed(d.requestsPerHandover < 10 ? 2 : 1)}${d.unit === 'Redis commands' ? ' (Redis)' : ''}`,
    `${formatMs(d.handover.p50)} / ${formatMs(d.handover.p99)}`,
    `${d.outOfOrder} (${d.inversions})`,
    d.addedPerWaiterPerSecond.toFixed(3),
    d.waitingCpuMsPerWaiterSecond.toFixed(2),
    `${d.drainCpuMsPerHandover.toFixed(0)} + ${d.drainServerCpuMsPerHandover.toFixed(0)}`,
    `${d.startSeconds.toFixed(1)} s`,
    `${d.drainSeconds.toFixed(1)} s`,
    `${d.loadAverage[0]} → ${d.loadAverage[1]}`,
  ])
  const perHandover = (d: DrainResult, tally: Record<string, number> | undefined) =>
    Object.entries(tally ?? {})
      .filter(([, count]) => count > 0)
      .sort((a, b) => b[1] - a[1])
      .map(([kind, count]) => `${kind} ${(count / d.waiters).toFixed(2)}`)
      .join(', ')
  const perWaiterSecond = (d: DrainResult) =>
    Object.keys({ ...d.idleByKind, ...d.waitingByKind })
      .map((kind) => {
        const busy = (d.waitingByKind[kind] ?? 0) / w.busySeconds
        const idle = (d.idleByKind[kind] ?? 0) / w.idleSeconds
        return [kind, (busy - idle) / d.waiters] as const
      })
      .filter(([, rate]) => Math.abs(rate) >= 0.0005)
      .sort((a, b) => b[1] - a[1])
      .map(([kind, rate]) => `${kind} ${rate.toFixed(3)}`)
      .join(', ')
  const notes = [
    `Each waiter keeps the lock ${w.holdMs} ms; a handover is measured from the moment a holder begins to release to the moment the next acquisition returns. Requests are counted at the API server (\`apiserver_request_total\`, leases) or at redis-server (\`INFO commandstats\`); requests/s per waiter are those with everyone waiting less those with the holder alone (${w.idleSeconds} s and ${w.busySeconds} s windows). CPU is the time the holder's and the waiters' processes (clients) and the store's (kube-apiserver + etcd, or redis-server) spent, from \`/proc\`; all run on the same machine.`,
    `${w.semaphore.label}: ${w.semaphoreLimit} holders, one per slot, hold it while the waiters join; then the slots change hands one at a time: the longest holder releases, the next waiter takes its slot while the other slot stays held, and ${w.holdMs} ms later the next longest holder releases. Its reference is two processes taking turns on the last free slot of the same semaphore, its other slot held, each waiting past the ${RECORD_FRESH_MS / 1000} s a waiting record stays fresh (so it renews its record before its check, as a waiter in the queue does).`,
    ...[w.fair, w.fairShared, w.semaphore, w.unfair].map(
      (d) =>
        `${d.label}, lease requests per handover while the queue drained: ${perHandover(d, d.drainByObject)} (by verb at the API server: ${perHandover(d, d.drainByKind)}); per waiter and second while waiting: ${perWaiterSecond(d)}.`,
    ),
    `Handover p50 along the queue by fifths, from the first fifth of the waiters served (${w.waiters} → ${Math.round(w.waiters * 0.8)} waiting) to the last: ${queues.map((d) => `${d.label} ${byFifth(d)}`).join('; ')}.`,
    ...(w.fair.warm
      ? [
          `${w.fair.label}, drained again by the same processes: handover p50 by fifths ${byFifth({ ...w.fair, handoverSamples: w.fair.warm.handoverSamples })}.`,
        ]
      : []),
    `${w.redlock.label}, Redis commands per handover: ${perHandover(w.redlock, w.redlock.drainByKind)}.`,
    ...w.clientGo.map((d) => `${d.label}, lease requests per handover: ${perHandover(d, d.drainByKind)}.`),
  ]
  return { columns, cells, notes }
}
