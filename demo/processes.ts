/**
 * The demo's child processes: the controller, scoped to the demo's namespace, and one process per
 * role of the scenario, all started through the tooling's one child-process helper.
 */
import { dirname, join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { Child } from '../dev/child-process.ts'
import {
  isTicket,
  type LeaseRecord,
  type LeaseStore,
  LOCK_NAME_ANNOTATION,
  MANAGED_BY_SELECTOR,
} from '../sdk/internal.ts'
import type { Command, Report } from './protocol.ts'
import { monotonicMs } from './protocol.ts'
import { type Role, roleArgs, scenario } from './scenario.ts'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')

/** The lock the demo's controller elects its leader with. */
export const ELECTION_LOCK = 'kube-locks-demo-controller'

/** The process a lease's holder identity names. */
export function holderName(lease: LeaseRecord): string {
  const identity = lease.holderIdentity ?? ''
  // `<identity>_<pid>_<random>`: the identity is the demo process's name.
  const parts = identity.split('_')
  return parts.length >= 3 ? parts.slice(0, -2).join('_') : identity
}

/** The controller, scoped to the demo's namespace; what it does shows in its Events, not its log. */
export function startController(namespace: string, kubeconfig: string | undefined, name: string): Child {
  const args = [
    join(ROOT, 'controller/main.ts'),
    ...(kubeconfig === undefined ? [] : ['--kubeconfig', kubeconfig]),
    '--namespaces',
    namespace,
    '--leader-election-namespace',
    namespace,
    '--leader-election-name',
    ELECTION_LOCK,
    '--listen',
    '127.0.0.1:0',
  ]
  // The kernel stops the controller even if the demo itself is killed.
  return new Child('controller', process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, POD_NAME: name },
    stdio: ['ignore', 'ignore', 'pipe'],
    parentDeathSignal: 'SIGTERM',
    stderrLimit: 8_000,
  })
}

/** Stops the controller; it flushes its pending Events on SIGTERM. */
export async function stopController(controller: Child): Promise<void> {
  await controller.stop('SIGTERM', 25_000)
}

/** Resolves once the controller leads: its leader-election lease names it. */
export async function waitForLeadership(
  controller: Child,
  store: LeaseStore,
  namespace: string,
  name: string,
): Promise<void> {
  const deadline = monotonicMs() + 180_000
  for (;;) {
    if (controller.process.exitCode !== null) {
      throw new Error(`the controller exited with ${controller.process.exitCode}\n${controller.stderr}`)
    }
    const listed = await store
      .list(namespace, { labelSelector: MANAGED_BY_SELECTOR })
      .catch(() => ({ items: [] as LeaseRecord[] }))
    const election = listed.items.find(
      (lease) => lease.annotations[LOCK_NAME_ANNOTATION] === ELECTION_LOCK && !isTicket(lease),
    )
    if (election !== undefined && holderName(election) === name) return
    if (monotonicMs() > deadline) throw new Error('timed out after 180 s waiting for the controller to lead')
    await sleep(200)
  }
}

export interface Service {
  readonly role: Role
  readonly child: Child
}

function startService(
  role: Role,
  namespace: string,
  kubeconfig: string | undefined,
  onReport: (r: Report) => void,
): Service {
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

/** Sends `command` to a service that still listens. */
export function send(service: Service, command: Command): void {
  if (service.child.process.connected) service.child.process.send(command, () => {})
}

interface Readiness {
  readonly spawnedAt: number
  readonly at: number
  readonly receivedAt: number
}

/** The scenario's service processes; `onReport` gets every report but `ready`. */
export class Services {
  readonly list: readonly Service[]
  readonly #ready = new Map<string, Readiness>()

  constructor(
    namespace: string,
    kubeconfig: string | undefined,
    onReport: (instance: string, r: Report) => void,
  ) {
    this.list = scenario().map((role) => {
      const spawnedAt = monotonicMs()
      return startService(role, namespace, kubeconfig, (report) => {
        if (report.type === 'ready')
          this.#ready.set(role.instance, { spawnedAt, at: report.at, receivedAt: monotonicMs() })
        else onReport(role.instance, report)
      })
    })
  }

  /**
   * Resolves once every service is ready, and checks that each reads this machine's monotonic clock:
   * every report is put on one timeline.
   */
  async ready(): Promise<void> {
    await waitFor('the service processes to start', 180_000, () => {
      const dead = this.list.find((s) => s.child.process.exitCode !== null)
      if (dead)
        throw new Error(
          `${dead.role.instance} exited with ${dead.child.process.exitCode}\n${dead.child.stderr}`,
        )
      return this.#ready.size === this.list.length ? true : undefined
    })
    for (const [instance, times] of this.#ready) {
      if (times.at < times.spawnedAt || times.at > times.receivedAt) {
        throw new Error(
          `${instance} does not share this machine's monotonic clock; its reports cannot be compared`,
        )
      }
    }
  }

  start(): void {
    for (const service of this.list) send(service, { type: 'start' })
  }

  /** Each service releases what it holds and exits on `stop`; SIGTERM and SIGKILL only for stragglers. */
  async stop(): Promise<void> {
    for (const service of this.list) send(service, { type: 'stop' })
    await Promise.all(
      this.list.map(async (service) => {
        await Promise.race([service.child.exited, sleep(15_000)])
        await service.child.stop('SIGTERM', 5_000)
      }),
    )
  }
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
