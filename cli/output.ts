import { dumpYaml, type LeaseRecord } from '../sdk/internal.ts'
import type { LeaseJson } from './api.ts'
import { holderColumns, holderRow, queueColumns, queueRow } from './get-rows.ts'
import { type HolderState, lockModeOf } from './holders.ts'
import { execute, fieldValues, parseFieldPath, parseTemplate, printed } from './jsonpath.ts'
import type { CustomColumn, Output } from './output-flags.ts'
import {
  type AnnotationKeys,
  cell,
  formatLabels,
  type Holding,
  type LeaseView,
  type LockMode,
  lockColumns,
  lockRow,
  NONE,
  renderTable,
} from './rows.ts'

export { OUTPUT_FORMATS, type OutputFormat } from './flags.ts'
export type { Output } from './output-flags.ts'

/** A lease as the server sent it, and the view of it that the table shows. */
export interface Item {
  readonly json: LeaseJson
  readonly view: LeaseView & Pick<LeaseRecord, 'uid' | 'resourceVersion' | 'labels'>
  /** A lock's waiters, counted: the WAITING column, and `status.waiting` in json and yaml. */
  readonly waiting?: number | undefined
  /** A lock's waiters' tickets, first in line first: shown by `get`. */
  readonly queue?: readonly Item[] | undefined
  /** Who holds a lock by holder records (shared, semaphore), when they were read: HOLDERS and `get`. */
  readonly holding?: HolderState | undefined
  /** A lock whose lease does not exist (yet), built from its holder records. */
  readonly absent?: boolean | undefined
}

export interface PrintOptions {
  readonly format: Output
  readonly allNamespaces: boolean
  /** A LABELS column at the end of the table (`--show-labels`). */
  readonly showLabels?: boolean | undefined
  readonly noHeaders: boolean
  readonly now: number
  readonly keys: AnnotationKeys
}

/** `-o name`: the kubectl resource name, which `kubectl`, `locks get` and `locks release` all accept. */
export function resourceName(lease: Pick<LeaseView, 'name'>): string {
  return `lease.coordination.k8s.io/${lease.name}`
}

/** What kubectl prints for objects: without `managedFields`, which it hides by default too. */
export function cleanObject(lease: LeaseJson): LeaseJson {
  const { managedFields: _, ...metadata } = lease.metadata ?? {}
  return { ...lease, metadata }
}

/**
 * What json and yaml print of a lock: the Lease as the server sent it, and when its waiters were
 * counted, a `status` the CLI adds (a Lease has none of its own): `waiting`, `holding` and `mode` (with
 * `limit` for a semaphore), `holders` for a shared lock or a semaphore, and for `get` the `queue`.
 */
export function objectOf(item: Item, keys: AnnotationKeys): LeaseJson & { status?: object } {
  const object = cleanObject(item.json)
  if (item.waiting === undefined) return object
  const holding = item.holding
  const holders =
    holding === undefined || (holding.mode.kind === 'exclusive' && holding.holders.length === 0)
      ? {}
      : { holders: holding.holders.map((record) => holderEntry(record, keys)) }
  const queue = item.queue?.map((ticket, index) => queueEntry(ticket, index + 1, keys))
  return {
    ...object,
    status: {
      waiting: item.waiting,
      ...(holding === undefined ? {} : { holding: holding.count, ...modeFields(holding.mode), ...holders }),
      ...(queue === undefined ? {} : { queue }),
    },
  }
}

function modeFields(mode: LockMode) {
  switch (mode.kind) {
    case 'semaphore':
      return { mode: mode.kind, limit: mode.limit }
    case 'unknown':
      return { mode: mode.value }
    default:
      return { mode: mode.kind }
  }
}

const optional = (key: string, value: unknown) => (value === undefined ? {} : { [key]: value })

/** What a waiter or a holder recorded of itself: who, where, and its times as the server has them. */
function holderFields(lease: Item, keys: AnnotationKeys) {
  const annotations = lease.view.annotations
  const spec = lease.json.spec ?? {}
  return {
    lease: lease.view.name,
    holderIdentity: lease.view.holderIdentity,
    ...optional('service', annotations[keys.service]),
    ...optional('pod', annotations[keys.pod]),
    ...optional('node', annotations[keys.node]),
    // As the server wrote them: MicroTime keeps its six digits.
    ...optional('acquireTime', spec.acquireTime),
    ...optional('renewTime', spec.renewTime),
    ...optional('leaseDurationSeconds', spec.leaseDurationSeconds),
  }
}

function queueEntry(ticket: Item, position: number, keys: AnnotationKeys) {
  return { position, ...holderFields(ticket, keys) }
}

function holderEntry(record: Item, keys: AnnotationKeys) {
  return { ...holderFields(record, keys), resourceVersion: record.view.resourceVersion }
}

/** What the lock's row needs of its holder records. */
function holdingOf(item: Item): Holding | undefined {
  const holding = item.holding
  if (holding === undefined) return undefined
  return { mode: holding.mode, count: holding.count, holders: holding.holders.map((record) => record.view) }
}

function table(items: readonly Item[], options: PrintOptions, widths?: number[]) {
  if (typeof options.format === 'object') {
    if (options.format.kind !== 'custom-columns') throw new Error(`not a table: ${options.format.kind}`)
    return customColumns(options.format.columns, items, options, widths)
  }
  const columns = lockColumns({ allNamespaces: options.allNamespaces, wide: options.format === 'wide' })
  const rows = items.map((item) => {
    const row = lockRow(item.view, options.now, options.keys, item.waiting, holdingOf(item))
    const cells = columns.map((column) => cell(column.value(row)))
    return options.showLabels ? [...cells, cell(formatLabels(item.view.labels))] : cells
  })
  const headers = options.noHeaders
    ? undefined
    : [...columns.map((column) => column.header), ...(options.showLabels ? ['LABELS'] : [])]
  return renderTable(headers, rows, widths)
}

/** `-o custom-columns`: one column per field path of the object json prints; `<none>` where it has none. */
function customColumns(
  spec: readonly CustomColumn[],
  items: readonly Item[],
  options: PrintOptions,
  widths?: number[],
) {
  const columns = spec.map((column) => ({ header: column.header, field: parseFieldPath(column.path) }))
  const rows = items.map((item) => {
    const object = objectOf(item, options.keys)
    return columns.map((column) => {
      const values = fieldValues(column.field, object)
      return cell(values.length === 0 ? NONE : values.map(printed).join(','))
    })
  })
  const headers = options.noHeaders ? undefined : columns.map((column) => column.header)
  return renderTable(headers, rows, widths)
}

/** Parses `-o`'s template and `--sort-by`'s field, so that a bad one fails before any request. */
export function checkOutput(format: Output, sortBy?: string): void {
  if (typeof format === 'object' && format.kind === 'jsonpath') parseTemplate(format.template)
  if (typeof format === 'object' && format.kind === 'custom-columns') {
    for (const column of format.columns) parseFieldPath(column.path)
  }
  if (sortBy !== undefined) parseFieldPath(sortBy)
}

/**
 * `--sort-by`: the items in the order of a field of the object json prints, as kubectl sorts: numbers
 * by value, anything else by its text; items without the field first. A stable sort: ties keep the
 * server's order.
 */
export function sortItems(items: readonly Item[], path: string, keys: AnnotationKeys): Item[] {
  const field = parseFieldPath(path)
  const keyed = items.map((item) => ({ item, value: fieldValues(field, objectOf(item, keys))[0] }))
  const rank = (value: unknown) =>
    value === undefined || value === null ? 0 : typeof value === 'number' ? 1 : 2
  keyed.sort((a, b) => {
    const byRank = rank(a.value) - rank(b.value)
    if (byRank !== 0) return byRank
    if (typeof a.value === 'number' && typeof b.value === 'number') return a.value - b.value
    const x = a.value === undefined || a.value === null ? '' : printed(a.value)
    const y = b.value === undefined || b.value === null ? '' : printed(b.value)
    return x < y ? -1 : x > y ? 1 : 0
  })
  return keyed.map(({ item }) => item)
}

/** A lock's queue under its row, separated by an empty line, as `get` shows it. */
function queueTable(queue: readonly Item[], options: PrintOptions): string {
  if (queue.length === 0) return ''
  const columns = queueColumns({ wide: options.format === 'wide' })
  const rows = queue.map((ticket, index) => {
    const row = queueRow(ticket.view, index + 1, options.now, options.keys)
    return columns.map((column) => cell(column.value(row)))
  })
  const headers = options.noHeaders ? undefined : columns.map((column) => column.header)
  return `\n${renderTable(headers, rows).text}`
}

/** The holders of a shared lock or a semaphore under its row, as `get` shows them. */
function holdersTable(holding: HolderState | undefined, options: PrintOptions): string {
  if (holding === undefined || holding.holders.length === 0) return ''
  const columns = holderColumns({ wide: options.format === 'wide' })
  const rows = holding.holders.map((record) => {
    const row = holderRow(
      record.view,
      lockModeOf(record.view.annotations) ?? holding.mode,
      options.now,
      options.keys,
    )
    return columns.map((column) => cell(column.value(row)))
  })
  const headers = options.noHeaders ? undefined : columns.map((column) => column.header)
  return `\n${renderTable(headers, rows).text}`
}

/** A whole result in one format. A list in json/yaml is a `v1/List`, like `kubectl get -o json`. */
export function formatItems(items: readonly Item[], options: PrintOptions, single = false): string {
  if (typeof options.format === 'object' && options.format.kind === 'jsonpath') {
    const data = single && items[0] ? objectOf(items[0], options.keys) : listOf(items, options.keys)
    return execute(parseTemplate(options.format.template), data)
  }
  switch (options.format) {
    case 'json':
      return `${JSON.stringify(single && items[0] ? objectOf(items[0], options.keys) : listOf(items, options.keys), null, 4)}\n`
    case 'yaml':
      return yaml(single && items[0] ? objectOf(items[0], options.keys) : listOf(items, options.keys))
    case 'name':
      return items.map((item) => `${resourceName(item.view)}\n`).join('')
    default: {
      const text = table(items, options).text
      // Holders and queue under the lock in the lock tables; custom columns show the lock's fields alone.
      const lock = single && typeof options.format !== 'object' ? items[0] : undefined
      if (lock === undefined) return text
      return text + holdersTable(lock.holding, options) + queueTable(lock.queue ?? [], options)
    }
  }
}

/** Keys in alphabetical order, as kubectl prints YAML. */
function yaml(object: object & { status?: object }): string {
  const { status, ...rest } = object
  if (status === undefined) return dumpYaml(object, { sortKeys: true })
  // A Lease goes through the client's Lease serializer, which drops what a Lease does not have; the
  // CLI's `status` is dumped apart and follows, where sorted keys put it (after `spec`).
  return dumpYaml(rest, { sortKeys: true }) + dumpYaml({ status }, { sortKeys: true })
}

function listOf(items: readonly Item[], keys: AnnotationKeys) {
  return {
    apiVersion: 'v1',
    kind: 'List',
    metadata: { resourceVersion: '' },
    items: items.map((item) => objectOf(item, keys)),
  }
}

/**
 * Prints what `--watch` sees: the first batch like a list (with headers), then one row or object per
 * change, keeping the table's columns aligned with what came before.
 */
export class WatchPrinter {
  readonly #options: Omit<PrintOptions, 'now'>
  #widths: number[] | undefined
  #first = true

  constructor(options: Omit<PrintOptions, 'now'>) {
    this.#options = options
  }

  print(items: readonly Item[], now: number): string {
    const options = { ...this.#options, now, noHeaders: this.#options.noHeaders || !this.#first }
    // Headers come with the first row, whenever it arrives.
    if (items.length === 0) return ''
    this.#first = false
    if (typeof options.format === 'object' && options.format.kind === 'jsonpath') {
      // Each change through the template, as `kubectl get -w -o jsonpath` prints it.
      const template = parseTemplate(options.format.template)
      return items.map((item) => execute(template, objectOf(item, options.keys))).join('')
    }
    switch (options.format) {
      case 'json':
        return items.map((item) => `${JSON.stringify(objectOf(item, options.keys), null, 4)}\n`).join('')
      case 'yaml':
        return items.map((item) => `---\n${yaml(objectOf(item, options.keys))}`).join('')
      case 'name':
        return formatItems(items, options)
      default: {
        const { text, widths } = table(items, options, this.#widths)
        this.#widths = widths
        return text
      }
    }
  }
}
