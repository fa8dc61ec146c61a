// What the controller needs from the API server: the SDK's Kubernetes store lists and watches leases,
// in one namespace or in all (`namespace` undefined), and writes the Events.
import {
  formatMicroTime,
  type KubernetesLeaseStore,
  type LeaseStore,
  LockApiError,
  LockPermissionError,
} from '../sdk/internal.ts'
import type { EventSink } from './events.ts'

/** List and watch of managed leases in one namespace, or in all (`namespace` undefined). */
export type LeaseSource = Pick<LeaseStore, 'list' | 'watch'>

/**
 * Events through events.k8s.io/v1. A missing or changed Event rejects with a `LockApiError` of status
 * 404 or 409; a refusal says which permission the controller lacks.
 */
export function createEventSink(store: Pick<KubernetesLeaseStore, 'createEvent' | 'patchEvent'>): EventSink {
  const explain = (error: unknown): never => {
    if (error instanceof LockPermissionError && error.status === 403) {
      throw new LockApiError(
        403,
        'Forbidden',
        `the API server refused the Event: the controller needs \`create\` and \`patch\` on \`events.events.k8s.io\` in namespace \`${error.namespace}\``,
        { cause: error },
      )
    }
    throw error
  }
  return {
    async create(event, signal) {
      const namespace = event.metadata?.namespace ?? ''
      return store.createEvent(namespace, event, { signal }).catch(explain)
    },
    async update(event, signal) {
      const namespace = event.metadata?.namespace ?? ''
      const name = event.metadata?.name ?? ''
      // A merge patch of the series alone (an Event's note is immutable): needs only `patch`, like
      // client-go's event recorder, and no resourceVersion round trip.
      const series =
        event.series === undefined
          ? null
          : {
              count: event.series.count,
              lastObservedTime: event.series.lastObservedTime ?? formatMicroTime(Date.now()),
            }
      return store.patchEvent(namespace, name, { series }, { signal }).catch(explain)
    },
  }
}
