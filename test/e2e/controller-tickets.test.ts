/**
 * The controller and fair locks' tickets on the real API server: a ticket whose waiter stopped renewing
 * is deleted once the controller has seen it unchanged for its duration plus grace, a ticket that names
 * no waiter at once; a renewed ticket stays; tickets are never freed, never counted as locks, and
 * `locks gc --dry-run` shows the same plan.
 */
import { EventsV1Api } from '@kubernetes/client-node'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  ControllerProcess,
  killControllers,
  namespacedArgs,
} from '../../controller/testing/controller-process.ts'
import { managedLease } from '../../controller/testing/leases.ts'
import {
  createKubernetesLeaseStore,
  isTicket,
  type LeaseRecord,
  type LeaseStore,
  MANAGED_BY_SELECTOR,
  NODE_ANNOTATION,
  POD_ANNOTATION,
  renewedTicket,
  SERVICE_ANNOTATION,
  ticketDraft,
} from '../../sdk/internal.ts'
import { locks } from './cli-helpers.ts'
import { adminKubeConfig, createNamespace, kubeconfigPath, waitFor } from './support.ts'

let store: LeaseStore

beforeEach(() => {
  store = createKubernetesLeaseStore(adminKubeConfig())
})

afterEach(async () => {
  await killControllers()
  await store.close?.()
})

const GRACE_S = 1
/** Room for a shared 2-core machine between the earliest moment and the delete being seen. */
const SLACK_MS = 3_000

function controllerIn(name: string, namespace: string): ControllerProcess {
  return new ControllerProcess(
    name,
    namespacedArgs(kubeconfigPath(), namespace, '--grace', String(GRACE_S), '--retention', '600'),
  )
}

/** A waiter's ticket for lock `orders`, as the SDK's waiter creates it. */
function ticket(
  namespace: string,
  waiter: string,
  options: { duration?: number; wallNow?: number; holder?: boolean } = {},
) {
  const draft = ticketDraft({
    namespace,
    leaseName: 'orders',
    lockName: 'orders',
    identity: `${waiter}_1_abcdef`,
    durationSeconds: options.duration ?? 2,
    annotations: {
      [SERVICE_ANNOTATION]: 'billing',
      [POD_ANNOTATION]: `${waiter}-pod`,
      [NODE_ANNOTATION]: 'node-a',
    },
    wallNow: options.wallNow ?? Date.now(),
    name: `orders.q-${waiter.padEnd(16, 'a')}`,
  })
  return options.holder === false ? { ...draft, holderIdentity: undefined } : draft
}

/** Renews `record` every `everyMs` until `signal` aborts, as a live waiter does. */
async function keepRenewing(record: LeaseRecord, everyMs: number, signal: AbortSignal): Promise<LeaseRecord> {
  let current = record
  while (!signal.aborted) {
    await new Promise((resolve) => setTimeout(resolve, everyMs))
    if (signal.aborted) break
    current = await store.update(renewedTicket(current, Date.now()))
  }
  return current
}

async function gone(namespace: string, name: string): Promise<number | undefined> {
  return (await store.get(namespace, name)) === undefined ? performance.now() : undefined
}

/** Events on the lease named `name` that this controller instance recorded. */
async function eventsOn(namespace: string, name: string, reportingInstance: string) {
  const api = adminKubeConfig().makeApiClient(EventsV1Api)
  const list = await api.listNamespacedEvent({ namespace, fieldSelector: `regarding.name=${name}` })
  return list.items.filter((event) => event.reportingInstance === reportingInstance)
}

describe('controller and tickets', () => {
  it('deletes an unrenewed ticket after its duration plus grace, a ticket without a waiter at once, and keeps a renewed one', async () => {
    const ns = await createNamespace('ctl-tickets')
    const lock = await store.create(managedLease(ns, 'orders', { duration: 3600 }))
    const dead = await store.create(ticket(ns, 'dead'))
    const empty = await store.create(ticket(ns, 'empty', { holder: false }))
    const live = await store.create(ticket(ns, 'live'))
    const renewing = new AbortController()
    const renewals = keepRenewing(live, 500, renewing.signal)
    try {
      const spawned = performance.now()
      const controller = controllerIn('tickets', ns)
      await controller.waitForLog('listed leases')
      const listed = performance.now()

      const emptyGoneAt = await waitFor(
        'the ticket without a waiter to be deleted',
        () => gone(ns, empty.name),
        {
          timeoutMs: SLACK_MS,
          intervalMs: 20,
        },
      )
      expect(emptyGoneAt - listed).toBeLessThan(SLACK_MS)

      const deadGoneAt = await waitFor('the unrenewed ticket to be deleted', () => gone(ns, dead.name), {
        timeoutMs: 2_000 + GRACE_S * 1000 + SLACK_MS + 5_000,
        intervalMs: 20,
      })
      // Not before it could have seen the ticket unchanged for 2 s + 1 s grace, and promptly after.
      expect(deadGoneAt - spawned).toBeGreaterThanOrEqual(2_000 + GRACE_S * 1000)
      expect(deadGoneAt - listed).toBeLessThan(2_000 + GRACE_S * 1000 + SLACK_MS)

      // The renewed ticket outlives three of its durations plus grace.
      await waitFor(
        'the renewed ticket to outlive 3 × (duration + grace)',
        async () =>
          (await store.get(ns, live.name)) !== undefined &&
          performance.now() - listed >= 3 * (2_000 + GRACE_S * 1000),
        { timeoutMs: 15_000, intervalMs: 100 },
      )
      expect((await store.get(ns, live.name))?.holderIdentity).toBe('live_1_abcdef')

      expect(await controller.metric('kube_locks_tickets_deleted_total', { reason: 'expired' })).toBe(1)
      expect(await controller.metric('kube_locks_tickets_deleted_total', { reason: 'free' })).toBe(1)
      expect(await controller.metric('kube_locks_tickets')).toBe(1)
      // Tickets are not locks: the gauge counts the lock and the controller's own leader lease.
      const locksHeld = (await store.list(ns, { labelSelector: MANAGED_BY_SELECTOR })).items.filter(
        (lease) => !isTicket(lease) && lease.holderIdentity,
      ).length
      expect(await controller.metric('kube_locks_leases', { state: 'held' })).toBe(locksHeld)
      // No lock counter moved, and the lock itself was left alone.
      expect(await controller.metric('kube_locks_expired_total')).toBe(0)
      expect(await controller.metric('kube_locks_reclaimed_total')).toBe(0)
      expect(await controller.metric('kube_locks_deleted_total')).toBe(0)
      expect((await store.get(ns, 'orders'))?.resourceVersion).toBe(lock.resourceVersion)

      const logged = controller.logged('ticket deleted: its waiter is gone')
      expect(logged).toHaveLength(1)
      expect(logged[0]).toMatchObject({
        lock: 'orders',
        namespace: ns,
        lease: dead.name,
        holder: 'dead_1_abcdef',
      })
      expect(controller.logged('ticket deleted: it named no waiter')).toHaveLength(1)
      // Deleted tickets leave no Events behind.
      for (const name of [dead.name, empty.name]) expect(await eventsOn(ns, name, 'tickets')).toEqual([])
    } finally {
      renewing.abort()
      await renewals
    }
  })

  it('`locks gc --dry-run` lists the tickets the controller then deletes, as deletions, never as frees', async () => {
    const ns = await createNamespace('ctl-tickets-gc')
    await store.create(managedLease(ns, 'orders', { duration: 3600 }))
    // Written a minute ago by a waiter that then died: due by the times written in it.
    const dead = await store.create(ticket(ns, 'stale', { wallNow: Date.now() - 60_000 }))
    const empty = await store.create(ticket(ns, 'empty', { holder: false }))
    // Lives an hour unrenewed: due neither by the dry run nor by the controller.
    const live = await store.create(ticket(ns, 'live', { duration: 3600 }))

    const plan = await locks(['gc', '--dry-run', '-n', ns, '-o', 'json', '--grace', String(GRACE_S)])
    expect(plan.code, plan.stderr).toBe(0)
    const actions = JSON.parse(plan.stdout).actions as {
      lease: string
      kind: string
      action: string
      reason: string
    }[]
    expect(actions.map((step) => [step.lease, step.kind, step.action]).sort()).toEqual(
      [
        [dead.name, 'ticket', 'delete'],
        [empty.name, 'ticket', 'delete'],
      ].sort(),
    )
    const table = await locks(['gc', '--dry-run', '-n', ns, '--grace', String(GRACE_S)])
    const rows = table.stdout
      .trimEnd()
      .split('\n')
      .slice(1)
      .map((line) => line.split(/ {3,}/))
    // NAME is the lock the ticket waits for, HOLDER its waiter.
    expect(
      rows
        .map(([name, holder, action, reason]) => [
          name,
          holder,
          action,
          reason?.replace(/\d+s ago/, 'Ns ago'),
        ])
        .sort(),
    ).toEqual(
      [
        [
          'orders',
          'stale_1_abcdef',
          'delete',
          'ticket expired Ns ago (duration 2s + grace 1s): its waiter is gone',
        ],
        ['orders', '<none>', 'delete', 'ticket names no waiter'],
      ].sort(),
    )

    const controller = controllerIn('tickets-gc', ns)
    await controller.waitForLog('listed leases')
    for (const name of [dead.name, empty.name]) {
      await waitFor(`${name} to be deleted`, () => gone(ns, name), {
        timeoutMs: 2_000 + GRACE_S * 1000 + SLACK_MS + 5_000,
        intervalMs: 50,
      })
    }
    expect((await store.get(ns, live.name))?.uid).toBe(live.uid)
    // Nothing else due: the dry run now shows nothing.
    const after = await locks(['gc', '--dry-run', '-n', ns, '-o', 'json', '--grace', String(GRACE_S)])
    expect(JSON.parse(after.stdout).actions).toEqual([])
  })
})
