import { randomBytes } from 'node:crypto'
import { KubeConfig } from '@kubernetes/client-node'
import { expect } from 'vitest'
import type { HaControlPlane } from '../../dev/cluster/index.ts'
import { createKubernetesLeaseStore, type LeaseStore } from '../../sdk/internal.ts'
import { FaultRun, type Worker, type WorkerDefaults } from '../faults/coordinator.ts'

// What the HA fault files share: a run in a fresh namespace of the HA control plane, workers pinned to
// one API server each (or going through the front), and waits for contention to commit again.

/** One API round trip plus reporting on a loaded machine (see docs/safety.md, Tolerances). */
export const ROUND_TRIP_MS = 3_000

/** Where a worker reaches the API: one server directly, or the round-robin front. */
export type Route = number | 'front'

export interface HaRun {
  readonly r: FaultRun
  readonly ns: string
  /** An admin store through the front, for reading leases. */
  readonly leases: LeaseStore
  /** Starts worker `id` on `route`. */
  spawn(id: string, route: Route, overrides?: Partial<WorkerDefaults>): Promise<Worker>
  close(): Promise<void>
}

export async function haRun(plane: HaControlPlane, prefix: string): Promise<HaRun> {
  const ns = `${prefix}-${randomBytes(3).toString('hex')}`
  const created = await plane.request('POST', '/api/v1/namespaces', { metadata: { name: ns } })
  expect(created.status).toBe(201)
  const r = new FaultRun({
    kubeconfig: plane.kubeconfigPath,
    namespace: ns,
    retryInterval: 0.2,
    requestTimeout: 5,
  })
  const config = new KubeConfig()
  config.loadFromFile(plane.kubeconfigPath)
  const leases = createKubernetesLeaseStore(config)
  const kubeconfigOf = (route: Route) =>
    route === 'front' ? plane.kubeconfigPath : (plane.apiServers[route]?.kubeconfigPath ?? '')
  return {
    r,
    ns,
    leases,
    spawn: (id, route, overrides = {}) => r.spawn(id, { kubeconfig: kubeconfigOf(route), ...overrides }),
    close: async () => {
      await r.close()
      await leases.close?.()
    },
  }
}

/**
 * Waits until `workers` report `count` writes, one after the other, that committed after this call
 * (contention goes on), failing at the deadline with what one of them reported last.
 */
export async function committedAgain(
  workers: readonly Worker[],
  timeoutMs: number,
  count = 1,
): Promise<void> {
  const deadline = performance.now() + timeoutMs
  for (let n = 0; n < count; n++) {
    const marks = workers.map((w) => w.received.length)
    const left = Math.max(1, deadline - performance.now())
    await Promise.any(
      workers.map((w, i) => w.next('write', (write) => write.outcome === 'committed', left, marks[i])),
    ).catch((error: AggregateError) => {
      throw new Error(`${n} of ${count} writes committed within ${timeoutMs} ms`, { cause: error.errors[0] })
    })
  }
}

/** Contention on `locks` for as long as the workers run (they stop on `stop`). */
export function endlessContention(locks: readonly string[], expires: number) {
  return {
    locks,
    acquire: { expires, timeout: 120 },
    pauseMs: [5, 50] as const,
    rounds: 1_000_000,
  }
}
