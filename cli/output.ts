import { dumpYaml, type LeaseRecord } from '../sdk/internal.ts'
import type { LeaseJson } from './api.ts'
import type { OutputFormat } from './flags.ts'
import {
  type AnnotationKeys,
  cell,
  type LeaseView,
  lockColumns,
  lockRow,
  queueColumns,
  queueRow,
  renderTable,
} from './rows.ts'

export { OUTPUT_FORMATS, type OutputFormat } from './flags.ts'

/** A lease as the server sent it, and the view of it that the table shows. */
export interface Item {
  readonly json: LeaseJson
  readonly view: LeaseView & Pick<LeaseRecord, 'uid' | 'resourceVersion' | 'labels'>
  /** A lock's waiters, counted: the WAITING column, and `status.waiting` in json and yaml. */
  readonly waiting?: number | undefined
  /** A lock's waiters' tickets, first in line first: shown by `get`. */
  readonly queue?: readonly Item[] | undefined
}

export interface PrintOptions {
  readonly format: OutputFormat
  readonly allNamespaces: boolean
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
 * counted, a `status` the CLI adds (a Lease has none of its own): `waiting`, and for `get` the `queue`.
 */
export function objectOf(item: Item, keys: AnnotationKeys): LeaseJson & { status?: object } {
  const object = cleanObject(item.json)
  if (item.waiting === undefined) return object
  const queue = item.queue?.map((ticket, index) => queueEntry(ticket, index + 1, keys))
  return { ...object, status: { waiting: item.waiting, ...(queue === undefined ? {} : { queue }) } }
}

function queueEntry(ticket: Item, position: number, keys: AnnotationKeys) {
  const annotations = ticket.view.annotations
  const spec = ticket.json.spec ?? {}
  const optional = (key: string, value: unknown) => (value === undefined ? {} : { [key]: value })
  return {
    position,
    lease: ticket.view.name,
    holderIdentity: ticket.view.holderIdentity,
    ...optional('service', annotations[keys.service]),
    ...optional('pod', annotations[keys.pod]),
    ...optional('node', annotations[keys.node]),
    // As the server wrote them: MicroTime keeps its six digits.
    ...optional('acquireTime', spec.acquireTime),
    ...optional('renewTime', spec.renewTime),
    ...optional('leaseDurationSeconds', spec.leaseDurationSeconds),
  }
}

function table(items: readonly Item[], options: PrintOptions, widths?: number[]) {
  const columns = lockColumns({ allNamespaces: options.allNamespaces, wide: options.format === 'wide' })
  const rows = items.map((item) => {
    const row = lockRow(item.view, options.now, options.keys, item.waiting)
    return columns.map((column) => cell(column.value(row)))
  })
  const headers = options.noHeaders ? undefined : columns.map((column) => column.header)
  return renderTable(headers, rows, widths)
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

/** A whole result in one format. A list in json/yaml is a `v1/List`, like `kubectl get -o json`. */
export function formatItems(items: readonly Item[], options: PrintOptions, single = false): string {
  switch (options.format) {
    case 'json':
      return `${JSON.stringify(single && items[0] ? objectOf(items[0], options.keys) : listOf(items, options.keys), null, 4)}\n`
    case 'yaml':
      return yaml(single && items[0] ? objectOf(items[0], options.keys) : listOf(items, options.keys))
    case 'name':
      return items.map((item) => `${resourceName(item.view)}\n`).join('')
    default: {
      const text = table(items, options).text
      const queue = single ? items[0]?.queue : undefined
      return queue === undefined ? text : text + queueTable(queue, options)
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
