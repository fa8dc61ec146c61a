import { describe, expect, it } from 'vitest'
import { MANAGED_BY_LABEL, MANAGED_BY_SELECTOR, MANAGED_BY_VALUE } from '../constants.ts'
import { LeaseConflictError, LeaseNotFoundError, LockApiError, WatchExpiredError } from '../errors.ts'
import type { LeaseDraft } from '../lease-record.ts'
import type { LeaseEvent, LeaseStore } from '../lease-store.ts'
import { compareResourceVersions } from '../resource-version.ts'

export interface ContractFixture {
  readonly store: LeaseStore
  /** A namespace of its own for this test. */
  readonly namespace: string
}

/**
 * The behaviour every `LeaseStore` must have, run against the in-memory store (unit) and against a real
 * API server (e2e). The in-memory store is only trustworthy as a test double while both pass.
 */
export interface ContractOptions {
  /**
   * Whether the store can be made to forget watch history (the in-memory store's `compact()`); a fresh
   * API server keeps every revision until etcd compacts, which takes minutes.
   */
  readonly compact?: ((fixture: ContractFixture) => void) | undefined
}

export function describeLeaseStoreContract(
  label: string,
  setup: () => Promise<ContractFixture>,
  options: ContractOptions = {},
): void {
  const draft = (namespace: string, name: string, overrides: Partial<LeaseDraft> = {}): LeaseDraft => ({
    namespace,
    name,
    holderIdentity: 'holder-a',
    leaseDurationSeconds: 20,
    acquireTime: '2030-01-02T03:04:05.123456Z',
    renewTime: '2030-01-02T03:04:05.654321Z',
    leaseTransitions: 0,
    labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE },
    annotations: { 'kube-locks.io/name': name },
    ...overrides,
  })

  describe(`LeaseStore contract: ${label}`, () => {
    it('reads an absent lease as undefined', async () => {
      const { store, namespace } = await setup()
      expect(await store.get(namespace, 'absent')).toBeUndefined()
    })

    it('creates a lease and reads back every field, MicroTimes to the microsecond', async () => {
      const { store, namespace } = await setup()
      const longName = `tenant/ü/${'x'.repeat(10_000)}`
      const created = await store.create(
        draft(namespace, 'fields', { annotations: { 'kube-locks.io/name': longName } }),
      )
      expect(created.uid).not.toBe('')
      expect(created.resourceVersion).toMatch(/^[1-9][0-9]*$/)
      const read = await store.get(namespace, 'fields')
      expect(read).toMatchObject({
        namespace,
        name: 'fields',
        uid: created.uid,
        resourceVersion: created.resourceVersion,
        holderIdentity: 'holder-a',
        leaseDurationSeconds: 20,
        acquireTime: '2030-01-02T03:04:05.123456Z',
        renewTime: '2030-01-02T03:04:05.654321Z',
        leaseTransitions: 0,
        labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE },
        annotations: { 'kube-locks.io/name': longName },
      })
      expect(read?.creationTimestamp).toMatch(/^\d{4}-\d\d-\d\dT/)
    })

    it('refuses a create of an existing name with AlreadyExists', async () => {
      const { store, namespace } = await setup()
      await store.create(draft(namespace, 'taken'))
      const error = await store.create(draft(namespace, 'taken')).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(LeaseConflictError)
      expect((error as LeaseConflictError).reason).toBe('AlreadyExists')
    })

    it('updates under matching uid and resourceVersion, with a greater resourceVersion', async () => {
      const { store, namespace } = await setup()
      const created = await store.create(draft(namespace, 'cas'))
      const updated = await store.update({ ...created, holderIdentity: 'holder-b', leaseTransitions: 1 })
      expect(updated.holderIdentity).toBe('holder-b')
      expect(compareResourceVersions(updated.resourceVersion, created.resourceVersion)).toBe(1)
      const freed = await store.update({ ...updated, holderIdentity: undefined, acquireTime: undefined })
      expect(freed.holderIdentity).toBeUndefined()
      expect(freed.acquireTime).toBeUndefined()
      expect((await store.get(namespace, 'cas'))?.holderIdentity).toBeUndefined()
    })

    it('refuses an update with a stale resourceVersion (Conflict)', async () => {
      const { store, namespace } = await setup()
      const created = await store.create(draft(namespace, 'stale'))
      await store.update({ ...created, holderIdentity: 'holder-b' })
      const error = await store.update({ ...created, holderIdentity: 'holder-c' }).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(LeaseConflictError)
      expect((error as LeaseConflictError).reason).toBe('Conflict')
      expect((await store.get(namespace, 'stale'))?.holderIdentity).toBe('holder-b')
    })

    it('never brings back a deleted lease through an update, nor takes over a re-created one', async () => {
      const { store, namespace } = await setup()
      const created = await store.create(draft(namespace, 'gone'))
      await store.delete(namespace, 'gone', created)
      const late = await store.update({ ...created, holderIdentity: 'late' }).catch((e: unknown) => e)
      expect(late).toBeInstanceOf(LeaseConflictError)
      expect(await store.get(namespace, 'gone')).toBeUndefined()

      const again = await store.create(draft(namespace, 'gone', { holderIdentity: 'new' }))
      expect(again.uid).not.toBe(created.uid)
      expect(compareResourceVersions(again.resourceVersion, created.resourceVersion)).toBe(1)
      const stale = await store
        .update({ ...created, resourceVersion: again.resourceVersion, holderIdentity: 'late' })
        .catch((e: unknown) => e)
      expect(stale).toBeInstanceOf(LeaseConflictError)
      expect((await store.get(namespace, 'gone'))?.holderIdentity).toBe('new')
    })

    it('deletes only under matching preconditions', async () => {
      const { store, namespace } = await setup()
      const created = await store.create(draft(namespace, 'del'))
      const updated = await store.update({ ...created, holderIdentity: 'holder-b' })
      await expect(store.delete(namespace, 'del', created)).rejects.toBeInstanceOf(LeaseConflictError)
      await expect(
        store.delete(namespace, 'del', { uid: 'not-the-uid', resourceVersion: updated.resourceVersion }),
      ).rejects.toBeInstanceOf(LeaseConflictError)
      await store.delete(namespace, 'del', updated)
      expect(await store.get(namespace, 'del')).toBeUndefined()
      await expect(store.delete(namespace, 'del', updated)).rejects.toBeInstanceOf(LeaseNotFoundError)
    })

    it('rejects a MicroTime with three fractional digits', async () => {
      const { store, namespace } = await setup()
      const error = await store
        .create(draft(namespace, 'millis', { renewTime: '2030-01-02T03:04:05.123Z' }))
        .catch((e: unknown) => e)
      expect(error).toBeInstanceOf(LockApiError)
      expect((error as LockApiError).status).toBe(400)
    })

    it('lists by label selector, with a resourceVersion to watch from', async () => {
      const { store, namespace } = await setup()
      await store.create(draft(namespace, 'managed'))
      await store.create(draft(namespace, 'foreign', { labels: { app: 'other' } }))
      const list = await store.list(namespace, { labelSelector: MANAGED_BY_SELECTOR })
      expect(list.items.map((item) => item.name)).toEqual(['managed'])
      expect(list.resourceVersion).toMatch(/^[1-9][0-9]*$/)
      const all = await store.list(namespace)
      expect(all.items.map((item) => item.name).sort()).toEqual(['foreign', 'managed'])
    })

    it('lists every namespace when none is named, in pages, and with the objects as sent', async () => {
      const { store, namespace } = await setup()
      const run = { 'contract-run': `r${Math.random().toString(36).slice(2, 10)}` }
      const names = ['page-a', 'page-b', 'page-c', 'page-d', 'page-e']
      for (const name of names) {
        await store.create(
          draft(namespace, name, { labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, ...run } }),
        )
      }
      const selector = `contract-run=${run['contract-run']}`
      const seen: string[] = []
      let next: string | undefined
      let pages = 0
      do {
        const page = await store.list(undefined, {
          labelSelector: selector,
          limit: 2,
          continue: next,
          objects: true,
        })
        pages++
        expect(page.items.length).toBeLessThanOrEqual(2)
        expect(page.objects?.map((object) => object.metadata?.name)).toEqual(
          page.items.map((item) => item.name),
        )
        for (const item of page.items) {
          expect(item.namespace).toBe(namespace)
          seen.push(item.name)
        }
        next = page.continue
      } while (next !== undefined && pages < 10)
      expect(seen.sort()).toEqual(names)
      expect(pages).toBe(3)
    })

    it('watches every namespace when none is named', async () => {
      const { store, namespace } = await setup()
      const { resourceVersion } = await store.list(namespace)
      const controller = new AbortController()
      const seen: LeaseEvent[] = []
      const watching = store.watch(
        undefined,
        { resourceVersion, labelSelector: MANAGED_BY_SELECTOR, signal: controller.signal },
        (event) => {
          if (event.type !== 'BOOKMARK' && event.lease.namespace === namespace) {
            seen.push(event)
            controller.abort()
          }
        },
      )
      await store.create(draft(namespace, 'anywhere'))
      await watching
      expect(seen.map((event) => event.type !== 'BOOKMARK' && event.lease.name)).toEqual(['anywhere'])
    })

    it('watches changes after a resourceVersion, in order, and stops on abort', async () => {
      const { store, namespace } = await setup()
      const before = await store.create(draft(namespace, 'early'))
      const list = await store.list(namespace, { labelSelector: MANAGED_BY_SELECTOR })
      const events: LeaseEvent[] = []
      const controller = new AbortController()
      const watching = store.watch(
        namespace,
        {
          resourceVersion: list.resourceVersion,
          labelSelector: MANAGED_BY_SELECTOR,
          signal: controller.signal,
        },
        (event) => events.push(event),
      )
      const created = await store.create(draft(namespace, 'w'))
      const updated = await store.update({ ...created, holderIdentity: 'holder-b' })
      await store.delete(namespace, 'w', updated)
      await store.create(draft(namespace, 'ignored', { labels: { app: 'other' } }))
      await store.update({ ...before, holderIdentity: 'holder-z' })
      const deadline = Date.now() + 10_000
      const changes = () =>
        events.filter(
          (event): event is Exclude<LeaseEvent, { type: 'BOOKMARK' }> => event.type !== 'BOOKMARK',
        )
      while (changes().length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
      controller.abort()
      await watching
      const seen = changes().map((event) => `${event.type} ${event.lease.name}`)
      expect(seen).toEqual(['ADDED w', 'MODIFIED w', 'DELETED w', 'MODIFIED early'])
      const versions = changes().map((event) => event.lease.resourceVersion)
      for (let i = 1; i < versions.length; i++) {
        expect(compareResourceVersions(versions[i] as string, versions[i - 1] as string)).toBe(1)
      }
      expect(changes()[1]?.lease.namespace).toBe(namespace)
    })

    it.skipIf(options.compact === undefined)(
      'fails a watch from a compacted resourceVersion with WatchExpiredError',
      async () => {
        const fixture = await setup()
        const { store, namespace } = fixture
        await store.create(draft(namespace, 'old'))
        options.compact?.(fixture)
        const error = await store
          .watch(namespace, { resourceVersion: '1', signal: AbortSignal.timeout(10_000) }, () => {})
          .then(
            () => 'ended without an error',
            (e: unknown) => e,
          )
        expect(error).toBeInstanceOf(WatchExpiredError)
      },
    )

    it('rejects with the reason of an aborted signal', async () => {
      const { store, namespace } = await setup()
      const controller = new AbortController()
      const reason = new Error('caller aborted')
      controller.abort(reason)
      await expect(store.get(namespace, 'x', { signal: controller.signal })).rejects.toBe(reason)
    })
  })
}
