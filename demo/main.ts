/**
 * `npm run demo`: the design's scenario, for real. Services that lock their own name, services that
 * share per-account locks, a caller with `timeout: 0` and a holder whose work overruns `expires` run as
 * separate processes against a real API server, next to the controller; a live view shows the holders,
 * and a summary checks the promises from the processes' own reports.
 *
 * Uses the configured cluster (`KUBECONFIG`, `~/.kube/config` or in-cluster, or `--kubeconfig`) if there
 * is one, else starts a local control plane. Ctrl-C ends the run early and still prints the summary; a
 * second Ctrl-C stops at once. Everything it started is stopped before it exits.
 */
import { existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { CoreV1Api, EventsV1Api, KubeConfig } from '@kubernetes/client-node'
import { Child } from '../dev/child-process.ts'
import { ControlPlane } from '../dev/cluster/index.ts'
import {
  createKubernetesLeaseStore,
  isTicket,
  type LeaseRecord,
  LOCK_NAME_ANNOTATION,
  MANAGED_BY_SELECTOR,
  SERVICE_ANNOTATION,
} from '../sdk/internal.ts'
import type { Command, Report } from './protocol.ts'
import { monotonicMs } from './protocol.ts'
import { type Role, roleArgs, scenario } from './scenario.ts'
import { type Summary, summarize, type Tagged } from './timeline.ts'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const ELECTION_LOCK = 'kube-locks-demo-controller'

const USAGE = `Usage: npm run demo -- [options]

Runs the kube-locks demo scenario as separate processes against a real API server, then prints a summary.

Options:
  --duration <seconds>   how long the scenario runs (default: 45)
  --namespace <name>     namespace of the demo's leases, created if missing (default: kube-locks-demo)
  --kubeconfig <path>    cluster to use (default: KUBECONFIG, ~/.kube/config, in-cluster, else a local
                         control plane started for the demo)
  --json                 print the summary as JSON on stdout; the live view goes to stderr
  -h, --help             show this help
`

interface Flags {
  readonly durationMs: number
  readonly namespace: string
  readonly kubeconfig: string | undefined
  readonly json: boolean
}

function parseFlags(argv: string[]): Flags | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      duration: { type: 'string', default: '45' },
      namespace: { type: 'string', default: 'kube-locks-demo' },
      kubeconfig: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) return undefined
  const duration = Number(values.duration)
  if (!Number.isFinite(duration) || duration <= 0) {
    throw new UsageError(`Expected \`--duration\` to be a number of seconds > 0, got \`${values.duration}\``)
  }
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(values.namespace) || values.namespace.length > 63) {
    throw new UsageError(`Expected \`--namespace\` to be a DNS-1123 label, got \`${values.namespace}\``)
  }
  return {
    durationMs: duration * 1000,
    namespace: values.namespace,
    kubeconfig: values.kubeconfig,
    json: values.json,
  }
}

class UsageError extends Error {}

/** The same rule as `npm start`: in-cluster, or a kubeconfig file that exists. */
function configuredCluster(): { kubeconfig: string | undefined; what: string } | undefined {
  if (process.env.KUBERNETES_SERVICE_HOST)
    return { kubeconfig: undefined, what: 'the in-cluster service account' }
  const paths = process.env.KUBECONFIG?.split(':').filter(Boolean) ?? [join(homedir(), '.kube', 'config')]
  if (!paths.some((path) => existsSync(path))) return undefined
  return { kubeconfig: paths.join(':'), what: paths.join(':') }
}

/** Sends `signal`, waits up to `graceMs` for the exit, then kills. */
async function stopChild(child: Child, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  await child.stop(signal, graceMs)
}

/** The controller, scoped to the demo's namespace, logging JSON lines on stdout. */
function startController(flags: Flags, kubeconfig: string | undefined, name: string) {
  const args = [
    join(ROOT, 'controller/main.ts'),
    ...(kubeconfig === undefined ? [] : ['--kubeconfig', kubeconfig]),
    '--namespaces',
    flags.namespace,
    '--leader-election-namespace',
    flags.namespace,
    '--leader-election-name',
    ELECTION_LOCK,
    '--listen',
    '127.0.0.1:0',
  ]
  // The kernel stops the controller even if the demo itself is killed. What it does shows in its
  // Events and its leader-election lease, not in its log.
  return new Child('controller', process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, POD_NAME: name },
    stdio: ['ignore', 'ignore', 'pipe'],
    parentDeathSignal: 'SIGTERM',
    stderrLimit: 8_000,
  })
}

async function waitFor<T>(what: string, timeoutMs: number, check: () => T | undefined): Promise<T> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const value = check()
    if (value !== undefined) return value
    if (performance.now() > deadline)
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`)
    await sleep(50)
  }
}

interface Service {
  readonly role: Role
  readonly child: Child
}

function startService(
  role: Role,
  namespace: string,
  kubeconfig: string | undefined,
  onReport: (r: Report) => void,
) {
  const child = new Child(
    role.instance,
    process.execPath,
    [join(ROOT, 'demo/service.ts'), ...roleArgs(role), `--namespace=${namespace}`],
    {
      cwd: ROOT,
      env: { ...process.env, ...(kubeconfig === undefined ? {} : { KUBECONFIG: kubeconfig }) },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      stderrLimit: 8_000,
    },
  )
  child.process.on('message', (message) => onReport(message as Report))
  return { role, child }
}

function send(service: Service, command: Command): void {
  if (service.child.process.connected) service.child.process.send(command, () => {})
}

// ---------------------------------------------------------------------------------------------------
// Live view

interface LiveState {
  readonly namespace: string
  readonly startedAt: number
  readonly durationMs: number
  readonly reports: readonly Tagged[]
  readonly leases: readonly LeaseRecord[] | undefined
  readonly leaseError: string | undefined
  readonly controllerLines: readonly string[]
}

function holderName(lease: LeaseRecord): string {
  const identity = lease.holderIdentity ?? ''
  // `<identity>_<pid>_<random>`: the identity is the demo process's name.
  const parts = identity.split('_')
  return parts.length >= 3 ? parts.slice(0, -2).join('_') : identity
}

function heldFor(lease: LeaseRecord, wallNow: number): { text: string; overdue: boolean } {
  const since = lease.renewTime ?? lease.acquireTime
  if (since === undefined) return { text: '', overdue: false }
  const seconds = (wallNow - Date.parse(since)) / 1000
  const overdue = lease.leaseDurationSeconds !== undefined && seconds > lease.leaseDurationSeconds
  return { text: `${Math.max(0, seconds).toFixed(1)} s`, overdue }
}

function counters(reports: readonly Tagged[]): string {
  let acquisitions = 0
  let timeouts = 0
  let expirations = 0
  for (const { report } of reports) {
    if (report.type === 'acquired') acquisitions++
    else if (report.type === 'timeout') timeouts++
    else if (report.type === 'ended' && report.how === 'expired') expirations++
  }
  return `acquisitions ${acquisitions} · timeouts ${timeouts} · expirations ${expirations}`
}

function liveLines(state: LiveState, wide: boolean): string[] {
  const elapsed = Math.min(state.durationMs, monotonicMs() - state.startedAt) / 1000
  const head = `kube-locks demo · namespace ${state.namespace} · ${elapsed.toFixed(0)} s of ${state.durationMs / 1000} s · ${counters(state.reports)}`
  const locks = (state.leases ?? [])
    .filter((lease) => lease.annotations[LOCK_NAME_ANNOTATION] !== ELECTION_LOCK)
    .sort((a, b) =>
      (a.annotations[LOCK_NAME_ANNOTATION] ?? a.name).localeCompare(
        b.annotations[LOCK_NAME_ANNOTATION] ?? b.name,
      ),
    )
  if (!wide) {
    const held = locks
      .filter((lease) => lease.holderIdentity)
      .map((lease) => `${lease.annotations[LOCK_NAME_ANNOTATION] ?? lease.name}=${holderName(lease)}`)
    return [`${head} · held: ${held.length === 0 ? 'none' : held.join(' ')}`]
  }
  const now = Date.now()
  const rows = locks.map((lease) => {
    const lock = lease.annotations[LOCK_NAME_ANNOTATION] ?? lease.name
    if (!lease.holderIdentity) return [lock, '-', '', 'free']
    const { text, overdue } = heldFor(lease, now)
    const service = lease.annotations[SERVICE_ANNOTATION] ?? ''
    return [
      lock,
      `${holderName(lease)} (${service})`,
      text,
      overdue ? 'past expires: the controller frees it' : 'held',
    ]
  })
  const table = formatTable([['LOCK', 'HOLDER (SERVICE)', 'SINCE WRITE', 'STATE'], ...rows])
  return [
    head,
    '',
    ...table,
    ...(state.leaseError ? [`(cannot list leases: ${state.leaseError})`] : []),
    '',
    'controller:',
    ...(state.controllerLines.length === 0
      ? ['  (nothing yet)']
      : state.controllerLines.map((line) => `  ${line}`)),
  ]
}

function formatTable(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = []
  for (const row of rows) {
    for (const [i, cell] of row.entries()) widths[i] = Math.max(widths[i] ?? 0, cell.length)
  }
  return rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  )
}

/** Redraws in place on a terminal; prints a plain line every few seconds otherwise. */
class LiveView {
  readonly #out: NodeJS.WriteStream
  readonly #tty: boolean
  #lines = 0
  #lastPlain = -Infinity

  constructor(out: NodeJS.WriteStream) {
    this.#out = out
    this.#tty = out.isTTY === true
  }

  get intervalMs(): number {
    return this.#tty ? 500 : 1_000
  }

  draw(state: LiveState): void {
    if (this.#tty) {
      // Lines cut to the terminal's width (unknown in some pseudo-terminals: 0), so that none wraps
      // and the count of lines to redraw is exact.
      const width = Math.max(20, (this.#out.columns || 120) - 1)
      const lines = liveLines(state, true).map((line) =>
        line.length > width ? `${line.slice(0, width - 1)}…` : line,
      )
      const up = this.#lines > 0 ? `\x1b[${this.#lines}F` : ''
      this.#out.write(`${up}\x1b[J${lines.join('\n')}\n`)
      this.#lines = lines.length
    } else if (monotonicMs() - this.#lastPlain >= 5_000) {
      this.#lastPlain = monotonicMs()
      this.#out.write(`${liveLines(state, false).join('\n')}\n`)
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Summary

interface ExpiredEvent {
  readonly lease: string
  readonly note: string
  readonly count: number
  readonly time: string | undefined
}

/** The Events the demo's controller wrote in the namespace, oldest first. */
async function controllerEvents(kubeConfig: KubeConfig, namespace: string, reporter: string) {
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

async function lockExpiredEvents(kubeConfig: KubeConfig, namespace: string, reporter: string) {
  return (await controllerEvents(kubeConfig, namespace, reporter))
    .filter((event) => event.reason === 'LockExpired')
    .map(({ lease, note, count, time }): ExpiredEvent => ({ lease, note, count, time }))
}

function ms(value: number | undefined): string {
  return value === undefined ? '-' : `${value.toFixed(value < 10 ? 1 : 0)} ms`
}

function summaryText(
  summary: Summary,
  events: readonly ExpiredEvent[] | string,
  context: { namespace: string; seconds: number; processes: number },
): string {
  const eventCount =
    typeof events === 'string' ? `unknown (${events})` : String(events.reduce((n, e) => n + e.count, 0))
  const check = (ok: boolean) => (ok ? 'ok' : 'BROKEN')
  const rows: [string, string][] = [
    ['acquisitions', String(summary.acquisitions)],
    ['waits (asked while another process held the lock)', String(summary.waits)],
    [
      'timeouts',
      `${summary.timeouts} (${summary.immediateTimeouts} of them with timeout: 0, failing at once)`,
    ],
    [
      'expirations (holder signalled: lock expired)',
      `${summary.expirations} (results dropped: ${summary.dropped})`,
    ],
    ['LockExpired Events from the controller', eventCount],
    ['most holders of one lock at once', `${summary.maxHolders} ${check(summary.maxHolders <= 1)}`],
    ['fencing tokens strictly increasing per lock', check(summary.fencingViolations.length === 0)],
    [
      'handover latency p50 / p99',
      `${ms(summary.handoverMs.p50)} / ${ms(summary.handoverMs.p99)} (${summary.handoverMs.count} handovers)`,
    ],
  ]
  const width = Math.max(...rows.map(([label]) => label.length))
  const out = [
    '',
    `Summary: ${context.seconds.toFixed(0)} s, ${context.processes} service processes, namespace ${context.namespace}`,
    '',
    ...rows.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`),
    '',
    ...formatTable([
      ['PROCESS', 'ACQUIRED', 'WAITED', 'TIMEOUTS', 'EXPIRED'],
      ...summary.byInstance.map((c) => [
        c.instance,
        String(c.acquisitions),
        String(c.waits),
        String(c.timeouts),
        String(c.expirations),
      ]),
    ]).map((line) => `  ${line}`),
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
  if (summary.fencingViolations.length > 0)
    out.push('', 'Fencing violations:', ...summary.fencingViolations.map((v) => `  ${v}`))
  if (summary.errors.length > 0) {
    out.push('', `Errors (${summary.errors.length}):`, ...summary.errors.slice(0, 5).map((e) => `  ${e}`))
  }
  return `${out.join('\n')}\n`
}

// ---------------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  let flags: Flags | undefined
  try {
    flags = parseFlags(process.argv.slice(2))
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`)
    return 2
  }
  if (flags === undefined) {
    process.stdout.write(USAGE)
    return 0
  }
  const log = (line: string) => process.stderr.write(`${line}\n`)
  const liveOut = flags.json ? process.stderr : process.stdout

  const cleanups: (() => Promise<void>)[] = []
  const runEnded = new AbortController()
  let interrupts = 0
  const onSignal = (name: string) => {
    interrupts++
    if (interrupts === 1) {
      log(`${name}: ending the run early (again to stop at once)`)
      runEnded.abort()
    } else {
      log(`${name}: stopping at once`)
      void Promise.allSettled([...cleanups].reverse().map((cleanup) => cleanup())).then(() =>
        process.exit(130),
      )
    }
  }
  process.on('SIGINT', () => onSignal('SIGINT'))
  process.on('SIGTERM', () => onSignal('SIGTERM'))

  try {
    let kubeconfig = flags.kubeconfig
    if (kubeconfig === undefined) {
      const configured = configuredCluster()
      if (configured) {
        log(`using the cluster configured by ${configured.what}`)
        kubeconfig = configured.kubeconfig
      } else {
        log(
          'no cluster configured (KUBECONFIG, ~/.kube/config or in-cluster): starting a local control plane',
        )
        const plane = await ControlPlane.start({ log })
        cleanups.push(() => plane.stop())
        kubeconfig = plane.kubeconfigPath
        log(`local control plane ready at ${plane.server}`)
      }
    }
    const kubeConfig = new KubeConfig()
    if (kubeconfig === undefined) kubeConfig.loadFromCluster()
    else kubeConfig.loadFromFile(kubeconfig)

    const core = kubeConfig.makeApiClient(CoreV1Api)
    try {
      await core.createNamespace({ body: { metadata: { name: flags.namespace } } })
    } catch (error) {
      if ((error as { code?: unknown }).code !== 409) {
        throw new Error(`cannot create namespace ${flags.namespace}: ${(error as Error).message}`, {
          cause: error,
        })
      }
    }

    const store = createKubernetesLeaseStore(kubeConfig)
    cleanups.push(async () => store.close?.())
    const controllerName = `kube-locks-demo-controller-${process.pid}`
    const controller = startController(flags, kubeconfig, controllerName)
    cleanups.push(() => stopChild(controller, 'SIGTERM', 25_000))
    log('starting the controller')
    // It leads once its leader-election lease names it.
    const deadline = monotonicMs() + 180_000
    for (;;) {
      if (controller.process.exitCode !== null) {
        throw new Error(`the controller exited with ${controller.process.exitCode}\n${controller.stderr}`)
      }
      const listed = await store
        .list(flags.namespace, { labelSelector: MANAGED_BY_SELECTOR })
        .catch(() => ({ items: [] as LeaseRecord[] }))
      const election = listed.items.find(
        (lease) => lease.annotations[LOCK_NAME_ANNOTATION] === ELECTION_LOCK && !isTicket(lease),
      )
      if (election !== undefined && holderName(election) === controllerName) break
      if (monotonicMs() > deadline)
        throw new Error('timed out after 180 s waiting for the controller to lead')
      await sleep(200)
    }

    const reports: Tagged[] = []
    const ready = new Map<string, { spawnedAt: number; at: number; receivedAt: number }>()
    const services: Service[] = []
    for (const role of scenario()) {
      const spawnedAt = monotonicMs()
      const service = startService(role, flags.namespace, kubeconfig, (report) => {
        if (report.type === 'ready')
          ready.set(role.instance, { spawnedAt, at: report.at, receivedAt: monotonicMs() })
        else reports.push({ instance: role.instance, report })
      })
      services.push(service)
    }
    // Each service releases what it holds and exits on `stop`; SIGTERM and SIGKILL only for stragglers.
    const stopServices = async () => {
      for (const service of services) send(service, { type: 'stop' })
      await Promise.all(
        services.map(async (service) => {
          await Promise.race([service.child.exited, sleep(15_000)])
          await stopChild(service.child, 'SIGTERM', 5_000)
        }),
      )
    }
    cleanups.push(stopServices)
    log(`starting ${services.length} service processes`)
    await waitFor('the service processes to start', 180_000, () => {
      const dead = services.find((s) => s.child.process.exitCode !== null)
      if (dead)
        throw new Error(
          `${dead.role.instance} exited with ${dead.child.process.exitCode}\n${dead.child.stderr}`,
        )
      return ready.size === services.length ? true : undefined
    })
    // Every report is put on one timeline: each process's clock must be the one this process reads.
    for (const [instance, times] of ready) {
      if (times.at < times.spawnedAt || times.at > times.receivedAt) {
        throw new Error(
          `${instance} does not share this machine's monotonic clock; its reports cannot be compared`,
        )
      }
    }

    const startedAt = monotonicMs()
    for (const service of services) send(service, { type: 'start' })
    const view = new LiveView(liveOut)
    let leases: readonly LeaseRecord[] | undefined
    let leaseError: string | undefined
    let controllerLines: string[] = []
    const endAt = startedAt + flags.durationMs
    while (!runEnded.signal.aborted && monotonicMs() < endAt) {
      try {
        // Locks only: waiters' tickets (places in line) are leases too.
        const listed = await store.list(flags.namespace, { labelSelector: MANAGED_BY_SELECTOR })
        leases = listed.items.filter((lease) => !isTicket(lease))
        leaseError = undefined
      } catch (error) {
        leaseError = error instanceof Error ? error.message : String(error)
      }
      try {
        controllerLines = (await controllerEvents(kubeConfig, flags.namespace, controllerName))
          .slice(-4)
          .map((event) => `${event.reason} ${event.lease}: ${event.note}`)
      } catch {
        // The view keeps the last lines it had.
      }
      view.draw({
        namespace: flags.namespace,
        startedAt,
        durationMs: flags.durationMs,
        reports,
        leases,
        leaseError,
        controllerLines,
      })
      const wait = Math.min(view.intervalMs, endAt - monotonicMs())
      if (wait > 0) await sleep(wait, undefined, { signal: runEnded.signal }).catch(() => {})
    }
    const seconds = (monotonicMs() - startedAt) / 1000

    log('stopping the service processes')
    await stopServices()
    for (const service of services) {
      if (service.child.stderr.trim() !== '')
        log(`${service.role.instance} stderr:\n${service.child.stderr.trim()}`)
    }
    // The controller flushes its pending Events when it stops.
    log('stopping the controller')
    await stopChild(controller, 'SIGTERM', 25_000)
    let events: ExpiredEvent[] | string
    let allEvents: Awaited<ReturnType<typeof controllerEvents>> | string
    try {
      events = await lockExpiredEvents(kubeConfig, flags.namespace, controllerName)
      allEvents = await controllerEvents(kubeConfig, flags.namespace, controllerName)
    } catch (error) {
      events = error instanceof Error ? error.message : String(error)
      allEvents = events
    }

    const summary = summarize(reports)
    const ok = summary.maxHolders <= 1 && summary.fencingViolations.length === 0
    if (flags.json) {
      process.stdout.write(
        `${JSON.stringify(
          {
            ok,
            namespace: flags.namespace,
            seconds,
            processes: services.map((s) => ({ instance: s.role.instance, service: s.role.service })),
            controller: controllerName,
            // Every process the demo started, all stopped by now.
            pids: [controller, ...services.map((s) => s.child)]
              .map((child) => child.process.pid)
              .filter((pid) => pid !== undefined),
            ...summary,
            lockExpiredEvents: typeof events === 'string' ? { error: events } : events,
            // What the controller did to the demo's locks, as its Events tell it.
            controllerEvents: typeof allEvents === 'string' ? { error: allEvents } : allEvents,
          },
          null,
          2,
        )}\n`,
      )
    } else {
      process.stdout.write(
        summaryText(summary, events, { namespace: flags.namespace, seconds, processes: services.length }),
      )
    }
    return ok ? 0 : 1
  } catch (error) {
    log(`demo failed: ${error instanceof Error ? error.message : String(error)}`)
    return 1
  } finally {
    for (const cleanup of [...cleanups].reverse()) await cleanup().catch(() => {})
  }
}

// Exit explicitly: the API client may keep idle connections open.
process.exit(await main())
