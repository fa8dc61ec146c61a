/**
 * `npm run demo`: the design's scenario, for real. Services that lock their own name, services that
 * share per-account locks, a caller with `timeout: 0`, a holder whose work overruns `expires`, callers
 * of a partner API behind a semaphore, and readers and a writer of one account run as separate
 * processes against a real API server, next to the controller; a live view shows the holders, and a
 * summary checks the promises from the processes' own reports.
 *
 * Uses the configured cluster (`KUBECONFIG`, `~/.kube/config` or in-cluster, or `--kubeconfig`) if there
 * is one, else starts a local control plane. Ctrl-C ends the run early and still prints the summary; a
 * second Ctrl-C stops at once. Everything it started is stopped before it exits.
 *
 * The parts: `flags.ts` (command line, which cluster), `processes.ts` (the controller and the service
 * processes), `live-view.ts` (the view while it runs), `summary.ts` (the end).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node'
import { ControlPlane } from '../dev/cluster/index.ts'
import {
  createKubernetesLeaseStore,
  isTicket,
  type LeaseRecord,
  type LeaseStore,
  MANAGED_BY_SELECTOR,
} from '../sdk/internal.ts'
import { configuredCluster, type Flags, parseFlags, USAGE } from './flags.ts'
import { LiveView } from './live-view.ts'
import { Services, startController, stopController, waitForLeadership } from './processes.ts'
import { monotonicMs } from './protocol.ts'
import {
  type ControllerEvent,
  controllerEvents,
  kept,
  lockExpiredEvents,
  summaryJson,
  summaryText,
  verdictLines,
} from './summary.ts'
import { summarize, type Tagged } from './timeline.ts'

type Cleanup = () => Promise<void>

const log = (line: string) => process.stderr.write(`${line}\n`)

/** The cluster's kubeconfig (`undefined`: in-cluster), starting a local control plane if none is configured. */
async function clusterOf(flags: Flags, cleanups: Cleanup[]): Promise<string | undefined> {
  if (flags.kubeconfig !== undefined) return flags.kubeconfig
  const configured = configuredCluster()
  if (configured) {
    log(`using the cluster configured by ${configured.what}`)
    return configured.kubeconfig
  }
  log('no cluster configured (KUBECONFIG, ~/.kube/config or in-cluster): starting a local control plane')
  const plane = await ControlPlane.start({ log })
  cleanups.push(() => plane.stop())
  log(`local control plane ready at ${plane.server}`)
  return plane.kubeconfigPath
}

async function ensureNamespace(kubeConfig: KubeConfig, namespace: string): Promise<void> {
  try {
    await kubeConfig.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: namespace } } })
  } catch (error) {
    if ((error as { code?: unknown }).code !== 409) {
      throw new Error(`cannot create namespace ${namespace}: ${(error as Error).message}`, { cause: error })
    }
  }
}

/** Draws the live view until the run's end or `ended`. */
async function watchRun(
  flags: Flags,
  run: { store: LeaseStore; kubeConfig: KubeConfig; controller: string; reports: readonly Tagged[] },
  startedAt: number,
  ended: AbortSignal,
): Promise<void> {
  const view = new LiveView(flags.json ? process.stderr : process.stdout)
  let leases: readonly LeaseRecord[] | undefined
  let leaseError: string | undefined
  let controllerLines: string[] = []
  const endAt = startedAt + flags.durationMs
  while (!ended.aborted && monotonicMs() < endAt) {
    try {
      // Locks only: waiters' tickets (places in line) are leases too.
      const listed = await run.store.list(flags.namespace, { labelSelector: MANAGED_BY_SELECTOR })
      leases = listed.items.filter((lease) => !isTicket(lease))
      leaseError = undefined
    } catch (error) {
      leaseError = error instanceof Error ? error.message : String(error)
    }
    try {
      controllerLines = (await controllerEvents(run.kubeConfig, flags.namespace, run.controller))
        .slice(-4)
        .map((event) => `${event.reason} ${event.lease}: ${event.note}`)
    } catch {
      // The view keeps the last lines it had.
    }
    view.draw({
      namespace: flags.namespace,
      startedAt,
      durationMs: flags.durationMs,
      reports: run.reports,
      leases,
      leaseError,
      controllerLines,
    })
    const wait = Math.min(view.intervalMs, endAt - monotonicMs())
    if (wait > 0) await sleep(wait, undefined, { signal: ended }).catch(() => {})
  }
}

async function run(flags: Flags, cleanups: Cleanup[], ended: AbortSignal): Promise<number> {
  const kubeconfig = await clusterOf(flags, cleanups)
  const kubeConfig = new KubeConfig()
  if (kubeconfig === undefined) kubeConfig.loadFromCluster()
  else kubeConfig.loadFromFile(kubeconfig)
  await ensureNamespace(kubeConfig, flags.namespace)

  const store = createKubernetesLeaseStore(kubeConfig)
  cleanups.push(async () => store.close?.())
  const controllerName = `kube-locks-demo-controller-${process.pid}`
  const controller = startController(flags.namespace, kubeconfig, controllerName)
  cleanups.push(() => stopController(controller))
  log('starting the controller')
  await waitForLeadership(controller, store, flags.namespace, controllerName)

  const reports: Tagged[] = []
  const services = new Services(flags.namespace, kubeconfig, (instance, report) =>
    reports.push({ instance, report }),
  )
  cleanups.push(() => services.stop())
  log(`starting ${services.list.length} service processes`)
  await services.ready()

  const startedAt = monotonicMs()
  services.start()
  await watchRun(flags, { store, kubeConfig, controller: controllerName, reports }, startedAt, ended)
  const seconds = (monotonicMs() - startedAt) / 1000

  log('stopping the service processes')
  await services.stop()
  for (const service of services.list) {
    if (service.child.stderr.trim() !== '')
      log(`${service.role.instance} stderr:\n${service.child.stderr.trim()}`)
  }
  // The controller flushes its pending Events when it stops.
  log('stopping the controller')
  await stopController(controller)
  let events: ControllerEvent[] | string
  try {
    events = await controllerEvents(kubeConfig, flags.namespace, controllerName)
  } catch (error) {
    events = error instanceof Error ? error.message : String(error)
  }

  const summary = summarize(reports)
  if (flags.json) {
    process.stdout.write(
      summaryJson(summary, events, {
        namespace: flags.namespace,
        seconds,
        processes: services.list.map((s) => ({ instance: s.role.instance, service: s.role.service })),
        controller: controllerName,
        pids: [controller, ...services.list.map((s) => s.child)]
          .map((child) => child.pid)
          .filter((pid) => pid !== undefined),
      }),
    )
    // The text summary ends with the verdict; next to the JSON it goes to stderr.
    if (!kept(summary)) log(verdictLines(summary).join('\n'))
  } else {
    const expired = typeof events === 'string' ? events : lockExpiredEvents(events)
    process.stdout.write(
      summaryText(summary, expired, { namespace: flags.namespace, seconds, processes: services.list.length }),
    )
  }
  return kept(summary) ? 0 : 1
}

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

  const cleanups: Cleanup[] = []
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
    return await run(flags, cleanups, runEnded.signal)
  } catch (error) {
    log(`demo failed: ${error instanceof Error ? error.message : String(error)}`)
    return 1
  } finally {
    for (const cleanup of [...cleanups].reverse()) await cleanup().catch(() => {})
  }
}

// Exit explicitly: the API client may keep idle connections open.
process.exit(await main())
