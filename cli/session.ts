import {
  type Cluster,
  holderRecordLock,
  holderSelector,
  isDns1123Subdomain,
  isHolderRecord,
  isHolderRecordOf,
  isTicket,
  LOCK_NAME_ANNOTATION,
  leaseNameFor,
  leaseToRecord,
  MANAGED_BY_LABEL,
  MANAGED_BY_SELECTOR,
  MANAGED_BY_VALUE,
  NODE_ANNOTATION,
  POD_ANNOTATION,
  SERVICE_ANNOTATION,
  ticketLock,
} from '../sdk/internal.ts'
import { ApiClient, type LeaseJson } from './api.ts'
import { CliError, UsageError } from './errors.ts'
import { DEFAULT_CHUNK_SIZE } from './flags.ts'
import { absentLock } from './holders.ts'
import { type ClusterFlags, loadCluster, namespaceOf } from './kubeconfig.ts'
import type { Item } from './output.ts'
import { type AnnotationKeys, isHeld } from './rows.ts'

/** What every command shares: the CLI's view of the world, its cluster connection, and finding a lock. */

const LEASE_PREFIXES = ['lease.coordination.k8s.io/', 'leases.coordination.k8s.io/', 'leases/', 'lease/']

export const KEYS: AnnotationKeys = Object.freeze({
  name: LOCK_NAME_ANNOTATION,
  service: SERVICE_ANNOTATION,
  pod: POD_ANNOTATION,
  node: NODE_ANNOTATION,
})

/** What the CLI reads from and writes to the world; `main.ts` wires it to the process. */
export interface CliContext {
  readonly stdout: (text: string) => void
  readonly stderr: (text: string) => void
  readonly env: Readonly<Record<string, string | undefined>>
  readonly home: string | undefined
  /** Wall-clock epoch milliseconds: shown and written, never the basis of a safety decision. */
  readonly now: () => number
  /** Monotonic milliseconds: what `release` judges expiry by. @default `performance.now()` */
  readonly monotonic?: () => number
  /** Aborts, with the signal's name as reason, when the process is asked to stop (SIGINT, SIGTERM…). */
  readonly signal: AbortSignal
  /** Source of the signals `run` forwards to its command. */
  readonly signals: Pick<NodeJS.Process, 'on' | 'off'>
  /** How the user invoked the CLI, for help texts: `locks` or, as a kubectl plugin, `kubectl locks`. */
  readonly programName?: string
}

export interface CommonFlags extends ClusterFlags {
  readonly requestTimeout: number
  /** `-v`/`--v`: the log level, as kubectl's (see {@link TRACE_LEVELS}). */
  readonly v?: number
  /** `--verbose`: the same as `-v 6`. */
  readonly verbose?: boolean
}

/** What each `-v` level logs to stderr; levels in between log what the level below them does. */
export const TRACE_LEVELS = Object.freeze({
  /** Each API request's method, URL, status and duration, as kubectl's `-v=6`. */
  requests: 6,
})

/** The log level of the flags: `-v N`, or 6 for `--verbose`. */
export function traceLevel(flags: Pick<CommonFlags, 'v' | 'verbose'>): number {
  return Math.max(flags.v ?? 0, flags.verbose ? TRACE_LEVELS.requests : 0)
}

export class Session implements AsyncDisposable {
  readonly ctx: CliContext
  readonly flags: CommonFlags
  #api: ApiClient | undefined
  #cluster: Cluster | undefined

  constructor(ctx: CliContext, flags: CommonFlags) {
    this.ctx = ctx
    this.flags = flags
  }

  /** The cluster by kubectl's rules and the flags; loaded on first use. */
  get cluster(): Cluster {
    this.#cluster ??= loadCluster(this.flags, { env: this.ctx.env, home: this.ctx.home })
    return this.#cluster
  }

  get namespace(): string {
    const namespace = namespaceOf(this.cluster, this.flags.namespace)
    if (namespace.length > 63 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(namespace)) {
      throw new UsageError(
        `\`${namespace}\` is not a namespace name: lowercase letters, digits and '-', at most 63 characters`,
      )
    }
    return namespace
  }

  get api(): ApiClient {
    const traced = traceLevel(this.flags) >= TRACE_LEVELS.requests
    this.#api ??= new ApiClient(this.cluster, {
      requestTimeout: this.flags.requestTimeout,
      trace: traced ? (line) => this.ctx.stderr(`${line}\n`) : undefined,
      traceAnswers: traced,
    })
    return this.#api
  }

  /** Closes the connections of the API client, if one was made. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.#api?.close()
  }
}

export function itemOf(json: LeaseJson): Item {
  return { json, view: leaseToRecord(json) }
}

function isManagedLease(lease: LeaseJson): boolean {
  return lease.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE
}

/** The lease names a command-line name may refer to: as a lock name first, then as a lease name. */
export function candidateLeaseNames(name: string): string[] {
  for (const prefix of LEASE_PREFIXES) {
    if (name.startsWith(prefix)) return [name.slice(prefix.length)]
  }
  const names = [leaseNameFor(name)]
  if (isDns1123Subdomain(name) && !names.includes(name)) names.push(name)
  return names
}

/** The lease of the lock `name` refers to, refused if it is not a lock's; `undefined` if there is none. */
async function lookUpLock(session: Session, name: string): Promise<Item | undefined> {
  const namespace = session.namespace
  if (name === '') throw new UsageError('the lock name is empty: give the name of a lock (see `locks list`)')
  for (const leaseName of candidateLeaseNames(name)) {
    const lease = await session.api.get(namespace, leaseName, session.ctx.signal)
    if (lease === undefined) continue
    if (!isManagedLease(lease)) {
      throw new CliError(
        `lease \`${namespace}/${leaseName}\` is not a kube-locks lock (it lacks the label ${MANAGED_BY_SELECTOR}); locks leaves it alone: use kubectl for it`,
      )
    }
    const item = itemOf(lease)
    if (isTicket(item.view)) throw new CliError(notALock(item))
    if (isHolderRecord(item.view)) throw new CliError(holderRecordNotALock(item))
    return item
  }
  return undefined
}

function notFound(session: Session, name: string): never {
  throw new CliError(
    `lock \`${name}\` not found in namespace \`${session.namespace}\`: check the name and the namespace (-n), or see \`locks list -A\``,
  )
}

/** A lock and its holder records (shared or semaphore holders; any, held or not). */
export interface LockWithHolders {
  readonly lock: Item
  readonly records: readonly Item[]
}

/**
 * The lock `name` refers to and its holder records. A lock whose lease does not exist (yet: a shared
 * or semaphore acquirer creates its record first) is found by a record that names a holder.
 */
export async function findLockWithHolders(session: Session, name: string): Promise<LockWithHolders> {
  const lock = await lookUpLock(session, name)
  if (lock !== undefined) return { lock, records: await holderRecordsOf(session, lock.view.name) }
  for (const leaseName of candidateLeaseNames(name)) {
    const records = await holderRecordsOf(session, leaseName)
    if (records.some((record) => isHeld(record.view))) {
      return { lock: absentLock(session.namespace, leaseName, records), records }
    }
  }
  return notFound(session, name)
}

async function holderRecordsOf(session: Session, leaseName: string): Promise<Item[]> {
  const list = await session.api.list(
    session.namespace,
    { labelSelector: holderSelector(leaseName), chunkSize: DEFAULT_CHUNK_SIZE },
    session.ctx.signal,
  )
  return list.items.map(itemOf).filter((record) => isHolderRecordOf(record.view, leaseName))
}

/** Why a ticket is refused where a lock is expected. */
function notALock(ticket: Item): string {
  const lock = ticket.view.annotations[LOCK_NAME_ANNOTATION] ?? ticketLock(ticket.view) ?? '?'
  return `lease \`${ticket.view.namespace}/${ticket.view.name}\` is a ticket, a waiter's place in the queue of lock \`${lock}\`, not a lock: see that lock and its queue with \`locks get ${lock}\`; a ticket goes away when its waiter stops waiting, or when the controller sees that its waiter is gone`
}

/** Why a holder record is refused where a lock is expected. */
function holderRecordNotALock(record: Item): string {
  const lock = record.view.annotations[LOCK_NAME_ANNOTATION] ?? holderRecordLock(record.view) ?? '?'
  const holder = record.view.holderIdentity ?? 'ID'
  return `lease \`${record.view.namespace}/${record.view.name}\` is a holder record, one holder of shared lock or semaphore \`${lock}\`, not a lock: see that lock and its holders with \`locks get ${lock}\`, release this holder with \`locks release ${lock} --holder ${holder}\``
}

/**
 * Refuses a lock name whose lease is a ticket or a holder record, saying so; returns when it is not
 * one. Both have random names, so only a name copied from one (`locks list -o name` never shows them)
 * meets one.
 */
export async function refuseTicketName(session: Session, name: string, command: string): Promise<void> {
  let leaseName: string
  try {
    leaseName = leaseNameFor(name)
  } catch {
    return // not a lock name at all: the SDK says why
  }
  const lease = await session.api.get(session.namespace, leaseName, session.ctx.signal)
  if (lease === undefined || !isManagedLease(lease)) return
  const item = itemOf(lease)
  const where = `lock name \`${name}\` is the name of lease \`${item.view.namespace}/${leaseName}\``
  const lockName = item.view.annotations[LOCK_NAME_ANNOTATION]
  if (isTicket(item.view)) {
    const lock = lockName ?? ticketLock(item.view) ?? '?'
    throw new CliError(
      `${where}, a ticket: a waiter's place in the queue of lock \`${lock}\`; it is not a lock and ${command} leaves it alone: choose another lock name`,
    )
  }
  if (isHolderRecord(item.view)) {
    const lock = lockName ?? holderRecordLock(item.view) ?? '?'
    throw new CliError(
      `${where}, a holder record: one holder of shared lock or semaphore \`${lock}\`; it is not a lock and ${command} leaves it alone: choose another lock name`,
    )
  }
}

export function labelSelector(extra: string | undefined): string {
  return extra === undefined || extra.trim() === '' ? MANAGED_BY_SELECTOR : `${MANAGED_BY_SELECTOR},${extra}`
}
