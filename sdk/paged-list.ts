import type { LeaseObject, LeaseRecord } from './lease-record.ts'
import type { LeaseStore, ListOptions } from './lease-store.ts'

/**
 * A whole list of leases, fetched a page at a time (`limit`/`continue`), as kubectl's `--chunk-size`
 * and client-go's pager fetch large lists: the API server answers every page from the snapshot of the
 * first, so the pages together are one consistent list, with that snapshot's resourceVersion to watch
 * from.
 *
 * A continue token the server no longer serves (410 Gone, `reason: Expired`, after the compaction of
 * the snapshot it names) rejects with the store's `WatchExpiredError`: the pages read so far are from a
 * snapshot that cannot be completed, so the caller lists again from the start (the controller does so
 * at once, as after a watch's 410; the CLI reports it).
 */

export interface PagedListOptions extends Pick<ListOptions, 'labelSelector' | 'objects' | 'signal'> {
  /** Leases per page; `0` or `undefined` fetches the whole list in one request. */
  readonly limit?: number | undefined
}

export interface PagedList {
  readonly items: readonly LeaseRecord[]
  /** The resourceVersion of the snapshot the pages were served from: watch from it. */
  readonly resourceVersion: string
  /** With `objects: true`, the leases as sent, in the order of `items`. */
  readonly objects?: readonly LeaseObject[] | undefined
}

/** Every lease of `namespace` (`undefined`: of all namespaces) that the selector matches, page by page. */
export async function listPaged(
  store: Pick<LeaseStore, 'list'>,
  namespace: string | undefined,
  options: PagedListOptions = {},
): Promise<PagedList> {
  const { limit, ...query } = options
  const items: LeaseRecord[] = []
  const objects: LeaseObject[] = []
  let resourceVersion: string | undefined
  let next: string | undefined
  do {
    const page = await store.list(namespace, {
      ...query,
      ...(limit !== undefined && limit > 0 ? { limit } : {}),
      ...(next === undefined ? {} : { continue: next }),
    })
    for (const item of page.items) items.push(item)
    if (options.objects) for (const object of page.objects ?? []) objects.push(object)
    // The first page fixes the snapshot; the API server gives later pages the same resourceVersion.
    resourceVersion ??= page.resourceVersion
    next = page.continue
  } while (next !== undefined)
  return { items, resourceVersion, ...(options.objects ? { objects } : {}) }
}
