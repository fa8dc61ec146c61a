/** The end of a run: what the controller's Events say, and the summary as text or JSON. */
import { EventsV1Api, type KubeConfig } from '@kubernetes/client-node'
import { tableLines } from './live-view.ts'
import type { Percentiles, Summary } from './timeline.ts'

export interface ControllerEvent {
  readonly reason: string
  readonly lease: string
  readonly note: string
  readonly count: number
  readonly time: string | undefined
}

export interface ExpiredEvent {
  readonly lease: string
  readonly note: string
  readonly count: number
  readonly time: string | undefined
}

/** The Events the demo's controller wrote in the namespace, oldest first. */
export async function controllerEvents(
  kubeConfig: KubeConfig,
  namespace: string,
  reporter: string,
): Promise<ControllerEvent[]> {
  const api = kubeConfig.makeApiClient(EventsV1Api)
  const list = await api.listNamespacedEvent({ namespace })
  return list.items
    .filter((event) => event.reportingInstance === reporter)
    .map((event) => ({
      reason: event.reason ?? '',
      lease: `${event.regarding?.namespace}/${event.regarding?.name}`,
      note: event.note ?? '',
      count: event.series?.count ?? 1,
      time: event.eventTime === undefined ? undefined : String(event.eventTime),
    }))
    .sort((a, b) => (a.time ?? '').localeCompare(b.time ?? ''))
}

export function lockExpiredEvents(events: readonly ControllerEvent[]): ExpiredEvent[] {
  return events
    .filter((event) => event.reason === 'LockExpired')
    .map(({ lease, note, count, time }): ExpiredEvent => ({ lease, note, count, time }))
}

function ms(value: number | undefined): string {
  return value === undefined ? '-' : `${value.toFixed(value < 10 ? 1 : 0)} ms`
}

function latency(p: Percentiles): string {
  return `${ms(p.p50)} / ${ms(p.p99)} (${p.count} handovers)`
}

/** Whether the run kept the promises the demo checks. */
export function kept(summary: Summary): boolean {
  return summary.violations.length === 0
}

/** The rows of the semaphores' and the shared locks' checks. */
function modeRows(summary: Summary, check: (ok: boolean) => string): [string, string][] {
  const rows: [string, string][] = []
  for (const s of summary.semaphores) {
    const name = `semaphore ${s.lock} (limit ${s.limit})`
    rows.push(
      [`${name}: calls`, `${s.calls} (${s.waits} waited for a place, ${s.timeouts} timed out)`],
      [`${name}: most inside at once`, `${s.peak} ${check(s.peak <= s.limit)}`],
    )
  }
  for (const s of summary.shared) {
    const name = `shared lock ${s.lock}`
    const overlap = s.peakReaders >= 2 ? 'readers overlapped' : 'readers did not overlap in this run'
    rows.push(
      [`${name}: reads / writes`, `${s.reads} / ${s.writes}`],
      [`${name}: most readers at once`, `${s.peakReaders} (${overlap})`],
      [`${name}: most holders with a writer in`, `${s.peakWithWriter} ${check(s.peakWithWriter <= 1)}`],
      [`${name}: readers in after a writer p50 / p99`, latency(s.readerHandoverMs)],
    )
  }
  return rows
}

export function summaryText(
  summary: Summary,
  events: readonly ExpiredEvent[] | string,
  context: { namespace: string; seconds: number; processes: number },
): string {
  const eventCount =
    typeof events === 'string' ? `unknown (${events})` : String(events.reduce((n, e) => n + e.count, 0))
  const check = (ok: boolean) => (ok ? 'ok' : 'BROKEN')
  const rows: [string, string][] = [
    ['acquisitions', String(summary.acquisitions)],
    ['waits (asked while the lock had no room)', String(summary.waits)],
    [
      'timeouts',
      `${summary.timeouts} (${summary.immediateTimeouts} of them with timeout: 0, failing at once)`,
    ],
    [
      'expirations (holder signalled: lock expired)',
      `${summary.expirations} (results dropped: ${summary.dropped})`,
    ],
    ['LockExpired Events from the controller', eventCount],
    [
      'most holders at once of a lock held exclusively',
      `${summary.maxHolders} ${check(summary.maxHolders <= 1)}`,
    ],
    ['fencing tokens in order per lock', check(summary.fencingViolations.length === 0)],
    ['handover latency p50 / p99', latency(summary.handoverMs)],
    ...modeRows(summary, check),
  ]
  const width = Math.max(...rows.map(([label]) => label.length))
  const out = [
    '',
    `Summary: ${context.seconds.toFixed(0)} s, ${context.processes} service processes, namespace ${context.namespace}`,
    '',
    ...rows.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`),
    '',
    ...tableLines(
      ['PROCESS', 'ACQUIRED', 'WAITED', 'TIMEOUTS', 'EXPIRED'],
      summary.byInstance.map((c) => [
        c.instance,
        String(c.acquisitions),
        String(c.waits),
        String(c.timeouts),
        String(c.expirations),
      ]),
    ).map((line) => `  ${line}`),
  ]
  if (typeof events !== 'string' && events.length > 0) {
    out.push(
      '',
      'The controller freed the expired lease with an Event (kubectl get events -n ' +
        `${context.namespace}):`,
    )
    for (const event of events.slice(0, 3)) {
      out.push(`  LockExpired on ${event.lease}${event.count > 1 ? ` (×${event.count})` : ''}: ${event.note}`)
    }
  }
  if (summary.errors.length > 0) {
    out.push('', `Errors (${summary.errors.length}):`, ...summary.errors.slice(0, 5).map((e) => `  ${e}`))
  }
  out.push('', ...verdictLines(summary))
  return `${out.join('\n')}\n`
}

/** The run's verdict: one line when every check held, else a line per broken promise. */
export function verdictLines(summary: Summary): string[] {
  if (kept(summary)) return ['All checks kept.']
  const shown = summary.violations.slice(0, 10)
  const more = summary.violations.length - shown.length
  return [
    `BROKEN: ${summary.violations.length} ${summary.violations.length === 1 ? 'promise' : 'promises'} broken:`,
    ...shown.map((v) => `  ${v}`),
    ...(more > 0 ? [`  … and ${more} more (--json lists them all)`] : []),
  ]
}

/** The `--json` summary. */
export function summaryJson(
  summary: Summary,
  events: readonly ControllerEvent[] | string,
  context: {
    readonly namespace: string
    readonly seconds: number
    readonly processes: readonly { readonly instance: string; readonly service: string }[]
    readonly controller: string
    readonly pids: readonly number[]
  },
): string {
  const error = (message: string) => ({ error: message })
  return `${JSON.stringify(
    {
      ok: kept(summary),
      namespace: context.namespace,
      seconds: context.seconds,
      processes: context.processes,
      controller: context.controller,
      // Every process the demo started, all stopped by now.
      pids: context.pids,
      ...summary,
      lockExpiredEvents: typeof events === 'string' ? error(events) : lockExpiredEvents(events),
      // What the controller did to the demo's locks, as its Events tell it.
      controllerEvents: typeof events === 'string' ? error(events) : events,
    },
    null,
    2,
  )}\n`
}
