import {
  HOLDER_OF_LABEL,
  holderRecordLock,
  MANAGED_BY_SELECTOR,
  QUEUE_LABEL,
  WatchExpiredError,
} from '../sdk/internal.ts'
import type { ApiClient, WatchEvent } from './api.ts'
import { lockKey } from './by-lock.ts'
import { ExitCode, interrupted } from './exit-codes.ts'
import {
  absentLock,
  HOLDER_RECORD_SELECTOR,
  HolderRecords,
  holderState,
  lineOf,
  withAbsentLocks,
} from './holders.ts'
import { checkOutput, formatItems, type Item, type Output, sortItems, WatchPrinter } from './output.ts'
import { Queues } from './queue.ts'
import { type CliContext, type CommonFlags, itemOf, KEYS, Session } from './session.ts'

export { DEFAULT_CHUNK_SIZE } from './flags.ts'

/**
 * Locks, never tickets nor holder records: the server leaves out every lease with the queue label or
 * the holder-of label.
 */
export function lockSelector(extra: string | undefined): string {
  const locks = `${MANAGED_BY_SELECTOR},!${QUEUE_LABEL},!${HOLDER_OF_LABEL}`
  return extra === undefined || extra.trim() === '' ? locks : `${locks},${extra}`
}

/**
 * Every ticket in scope. Apart from the locks' selector: tickets carry no labels of their lock's (a
 * `-l` that picks locks would drop them), and WAITING counts a lock's waiters whatever `-l` says.
 */
export const TICKET_SELECTOR = `${MANAGED_BY_SELECTOR},${QUEUE_LABEL}`

export interface ListFlags extends CommonFlags {
  readonly allNamespaces?: boolean
  readonly selector?: string
  readonly output: Output
  readonly headers: boolean
  /** A JSONPath field of the lease to sort by, as kubectl's `--sort-by`. */
  readonly sortBy?: string
  readonly showLabels?: boolean
  readonly watch?: boolean
  readonly chunkSize: number
}

export async function listCommand(ctx: CliContext, flags: ListFlags): Promise<number> {
  // A bad template or field is a usage error before any request.
  checkOutput(flags.output, flags.sortBy)
  await using session = new Session(ctx, flags)
  const namespace = flags.allNamespaces ? undefined : session.namespace
  const api = session.api
  const scope = { api, namespace, chunkSize: flags.chunkSize }
  // `-o name` prints names only: it needs no count, and no lock whose lease does not exist.
  const counted = flags.output !== 'name'
  const [lockList, ticketList, recordList] = await Promise.all([
    listItems(scope, lockSelector(flags.selector), ctx.signal),
    counted ? listItems(scope, TICKET_SELECTOR, ctx.signal) : undefined,
    counted ? listItems(scope, HOLDER_RECORD_SELECTOR, ctx.signal) : undefined,
  ])
  let queues = new Queues(ticketList?.items)
  let records = new HolderRecords(recordList?.items)
  // A lock whose lease does not exist has no labels for a `-l` to match.
  const withAbsent = counted && (flags.selector === undefined || flags.selector.trim() === '')
  const counts = (lock: Item): Item => {
    if (!counted) return lock
    const holding = holderState(lock, records.of(lock), ctx.now())
    return { ...lock, holding, waiting: lineOf(lock, queues.of(lock), holding).length }
  }
  const printOptions = {
    format: flags.output,
    allNamespaces: flags.allNamespaces === true,
    noHeaders: !flags.headers,
    showLabels: flags.showLabels === true,
    keys: KEYS,
  }
  const sorted = (items: readonly Item[]) =>
    flags.sortBy === undefined ? items : sortItems(items, flags.sortBy, KEYS)
  const where = namespace === undefined ? '' : ` in namespace \`${namespace}\``
  const tabular =
    flags.output === 'table' ||
    flags.output === 'wide' ||
    (typeof flags.output === 'object' && flags.output.kind === 'custom-columns')
  const all = withAbsentLocks(lockList.items, records, withAbsent)
  if (!flags.watch) {
    if (all.length === 0 && tabular) {
      ctx.stderr(`No locks found${where}.\n`)
      return ExitCode.ok
    }
    ctx.stdout(formatItems(sorted(all.map(counts)), { ...printOptions, now: ctx.now() }))
    return ExitCode.ok
  }

  // --watch: the locks as they change, and a lock again when its waiters or its holders change.
  const printer = new WatchPrinter(printOptions)
  const locks = new Map<string, Item>()
  /** What was last printed of each lock, by its key: `uid/resourceVersion/waiting/holders`. */
  const printed = new Map<string, string>()
  const signature = (item: Item) => {
    const holders = item.holding?.holders.map((r) => `${r.view.name}=${r.view.holderIdentity}`).join(',')
    return `${item.view.uid}/${item.view.resourceVersion}/${item.waiting ?? ''}/${item.holding?.count ?? ''}/${holders ?? ''}`
  }
  const show = (batch: readonly Item[]) => {
    const changed = batch.map(counts).filter((item) => printed.get(lockKey(item.view)) !== signature(item))
    for (const item of changed) printed.set(lockKey(item.view), signature(item))
    ctx.stdout(printer.print(changed, ctx.now()))
  }
  const setLocks = (items: readonly Item[]) => {
    locks.clear()
    for (const item of items) locks.set(queues.keyOf(item), item)
  }
  /** The lock with this key: its lease, else (no `-l`) one built from its holder records while it has any. */
  const lockOf = (key: string, record: Item): Item | undefined => {
    const lock = locks.get(key)
    if (lock !== undefined || !withAbsent) return lock
    // Its last record gone, the lock is shown once more, held by nobody, as kubectl -w shows a deletion.
    const items = records.itemsOf(key)
    return absentLock(
      record.view.namespace,
      holderRecordLock(record.view) as string,
      items.length > 0 ? items : [record],
    )
  }
  if (all.length === 0 && tabular) ctx.stderr(`No locks found${where}; watching for changes.\n`)
  setLocks(lockList.items)
  // Sorted as kubectl sorts under --watch: the first list; changes come in the order they happen.
  show(sorted(all.map(counts)))
  await followAll(ctx.signal, [
    follow(scope, lockSelector(flags.selector), lockList.resourceVersion, {
      changed: (type, item) => {
        if (type === 'DELETED') locks.delete(queues.keyOf(item))
        else locks.set(queues.keyOf(item), item)
        // Printed as kubectl -w prints it, the last state of a deleted lease too.
        printed.delete(lockKey(item.view))
        show([item])
      },
      // Too far behind: list again and print only what changed since it was last printed.
      relisted: (items) => {
        setLocks(items)
        show(withAbsentLocks(items, records, withAbsent))
      },
    }),
    ...(ticketList === undefined
      ? []
      : [
          follow(scope, TICKET_SELECTOR, ticketList.resourceVersion, {
            changed: (type, ticket) => {
              const key = type === 'DELETED' ? queues.delete(ticket) : queues.set(ticket)
              const lock = key === undefined ? undefined : locks.get(key)
              if (lock !== undefined) show([lock])
            },
            relisted: (tickets) => {
              queues = new Queues(tickets)
              show([...locks.values()])
            },
          }),
        ]),
    ...(recordList === undefined
      ? []
      : [
          follow(scope, HOLDER_RECORD_SELECTOR, recordList.resourceVersion, {
            changed: (type, record) => {
              const key = type === 'DELETED' ? records.delete(record) : records.set(record)
              const lock = key === undefined ? undefined : lockOf(key, record)
              if (lock !== undefined) show([lock])
            },
            relisted: (items) => {
              records = new HolderRecords(items)
              show(withAbsentLocks([...locks.values()], records, withAbsent))
            },
          }),
        ]),
  ])
  return interrupted(ctx.signal)
}

interface Scope {
  readonly api: ApiClient
  readonly namespace: string | undefined
  readonly chunkSize: number
}

async function listItems(scope: Scope, labelSelector: string, signal: AbortSignal) {
  const list = await scope.api.list(scope.namespace, { labelSelector, chunkSize: scope.chunkSize }, signal)
  return { items: list.items.map(itemOf), resourceVersion: list.resourceVersion }
}

interface FollowHandlers {
  changed(type: Exclude<WatchEvent['type'], 'BOOKMARK'>, item: Item): void
  relisted(items: Item[]): void
}

/** Watches from `resourceVersion` until `signal` aborts; on 410 Gone lists again and watches on. */
function follow(scope: Scope, labelSelector: string, resourceVersion: string, handlers: FollowHandlers) {
  return async (signal: AbortSignal): Promise<void> => {
    let from = resourceVersion
    while (!signal.aborted) {
      try {
        await scope.api.watch(
          scope.namespace,
          { labelSelector, resourceVersion: from },
          (event) => {
            if (event.type === 'BOOKMARK') {
              from = event.resourceVersion
              return
            }
            from = event.lease.metadata?.resourceVersion ?? from
            handlers.changed(event.type, itemOf(event.lease))
          },
          signal,
        )
      } catch (error) {
        if (!(error instanceof WatchExpiredError)) throw error
        const again = await listItems(scope, labelSelector, signal)
        from = again.resourceVersion
        handlers.relisted(again.items)
      }
    }
  }
}

/** Runs the watches until `signal` aborts or one fails; a failure stops the others before it is thrown. */
async function followAll(
  signal: AbortSignal,
  watches: readonly ((signal: AbortSignal) => Promise<void>)[],
): Promise<void> {
  const stop = new AbortController()
  const both = AbortSignal.any([signal, stop.signal])
  let failure: { error: unknown } | undefined
  await Promise.allSettled(
    watches.map((watch) =>
      watch(both).catch((error: unknown) => {
        failure ??= { error }
        stop.abort()
      }),
    ),
  )
  if (failure !== undefined && !signal.aborted) throw failure.error
}
