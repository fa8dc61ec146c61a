import { dumpYaml } from '@kubernetes/client-node'
import type { LeaseJson } from './api.ts'
import { type AnnotationKeys, cell, type LeaseView, lockColumns, lockRow, renderTable } from './rows.ts'

export const OUTPUT_FORMATS = ['table', 'wide', 'json', 'yaml', 'name'] as const
export type OutputFormat = (typeof OUTPUT_FORMATS)[number]

/** A lease as the server sent it, and the view of it that the table shows. */
export interface Item {
  readonly json: LeaseJson
  readonly view: LeaseView & { readonly uid: string; readonly resourceVersion: string }
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

function table(items: readonly Item[], options: PrintOptions, widths?: number[]) {
  const columns = lockColumns({ allNamespaces: options.allNamespaces, wide: options.format === 'wide' })
  const rows = items.map((item) => {
    const row = lockRow(item.view, options.now, options.keys)
    return columns.map((column) => cell(column.value(row)))
  })
  const headers = options.noHeaders ? undefined : columns.map((column) => column.header)
  return renderTable(headers, rows, widths)
}

/** A whole result in one format. A list in json/yaml is a `v1/List`, like `kubectl get -o json`. */
export function formatItems(items: readonly Item[], options: PrintOptions, single = false): string {
  switch (options.format) {
    case 'json':
      return `${JSON.stringify(single && items[0] ? cleanObject(items[0].json) : listOf(items), null, 4)}\n`
    case 'yaml':
      return yaml(single && items[0] ? cleanObject(items[0].json) : listOf(items))
    case 'name':
      return items.map((item) => `${resourceName(item.view)}\n`).join('')
    default:
      return table(items, options).text
  }
}

/** Keys in alphabetical order, as kubectl prints YAML. */
function yaml(object: object): string {
  return dumpYaml(object, { sortKeys: true })
}

function listOf(items: readonly Item[]) {
  return {
    apiVersion: 'v1',
    kind: 'List',
    metadata: { resourceVersion: '' },
    items: items.map((i) => cleanObject(i.json)),
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
        return items.map((item) => `${JSON.stringify(cleanObject(item.json), null, 4)}\n`).join('')
      case 'yaml':
        return items.map((item) => `---\n${yaml(cleanObject(item.json))}`).join('')
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
