import {
  HOLDER_OF_LABEL,
  HOLDS_ANNOTATION,
  holderKeyFor,
  LIMIT_ANNOTATION,
  LOCK_NAME_ANNOTATION,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  MODE_ANNOTATION,
  POD_ANNOTATION,
  QUEUE_POSITION_ANNOTATION,
  recordToLease,
  SERVICE_ANNOTATION,
  ticketDraft,
} from '../../sdk/internal.ts'
import type { LeaseJson } from '../api.ts'

/** A lock's lease as the API server sends it. */
export function lockJson(
  name: string,
  options: {
    namespace?: string
    holder?: string | undefined
    resourceVersion?: string
    lockName?: string
    /** The mark of a shared lock or semaphore: `shared`, or the semaphore's limit. */
    mode?: 'shared' | number
  } = {},
): LeaseJson {
  const holder = 'holder' in options ? options.holder : 'holder-1_1_x'
  const mark = options.mode === undefined ? {} : modeAnnotationsOf(options.mode)
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name,
      namespace: options.namespace ?? 'shop',
      uid: `uid-${name}`,
      resourceVersion: options.resourceVersion ?? '10',
      creationTimestamp: '2030-01-01T11:00:00Z',
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE },
      annotations: { [LOCK_NAME_ANNOTATION]: options.lockName ?? name, ...mark },
    },
    spec: {
      ...(holder === undefined ? {} : { holderIdentity: holder, acquireTime: '2030-01-01T11:59:00.000000Z' }),
      leaseDurationSeconds: 20,
      renewTime: '2030-01-01T11:59:55.000000Z',
      leaseTransitions: 1,
    },
  }
}

/** A waiter's ticket for the lock whose lease is `lock`, created at `resourceVersion`, as the SDK writes it. */
export function ticketJson(
  lock: string,
  suffix: string,
  options: {
    namespace?: string
    resourceVersion?: string
    acquireTime?: string
    holder?: string | undefined
    lockName?: string
  } = {},
): LeaseJson {
  const draft = ticketDraft({
    namespace: options.namespace ?? 'shop',
    leaseName: lock,
    lockName: options.lockName ?? lock,
    identity: 'holder' in options ? (options.holder as string) : `waiter-${suffix}_1_x`,
    durationSeconds: 15,
    annotations: { [SERVICE_ANNOTATION]: 'billing', [POD_ANNOTATION]: `pod-${suffix}` },
    wallNow: Date.parse(options.acquireTime ?? '2030-01-01T11:59:30Z'),
    name: `${lock}.q-${suffix}`,
  })
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    ...recordToLease({
      ...draft,
      ...('holder' in options && options.holder === undefined ? { holderIdentity: undefined } : {}),
      uid: `uid-${lock}.q-${suffix}`,
      resourceVersion: options.resourceVersion ?? '20',
      creationTimestamp: '2030-01-01T11:59:30Z',
    }),
  } as LeaseJson
}

function modeAnnotationsOf(mode: 'shared' | number): Record<string, string> {
  return mode === 'shared'
    ? { [MODE_ANNOTATION]: 'shared' }
    : { [MODE_ANNOTATION]: 'semaphore', [LIMIT_ANNOTATION]: String(mode) }
}

/**
 * One shared or semaphore holder's record of the lock whose lease is `lock`, as the SDK lays it out
 * (sdk/holders.ts): created at `resourceVersion` unless `position` says otherwise (a renewed record).
 */
export function holderJson(
  lock: string,
  suffix: string,
  options: {
    namespace?: string
    mode?: 'shared' | number
    resourceVersion?: string
    position?: string
    holder?: string | undefined
    renewTime?: string
    lockName?: string
  } = {},
): LeaseJson {
  const name = `${lock}.h-${suffix}`
  const holder = 'holder' in options ? options.holder : `sync-${suffix}_1_x`
  const resourceVersion = options.resourceVersion ?? '30'
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name,
      namespace: options.namespace ?? 'shop',
      uid: `uid-${name}`,
      resourceVersion,
      creationTimestamp: '2030-01-01T11:58:00Z',
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [HOLDER_OF_LABEL]: holderKeyFor(lock) },
      annotations: {
        [LOCK_NAME_ANNOTATION]: options.lockName ?? lock,
        [HOLDS_ANNOTATION]: lock,
        ...modeAnnotationsOf(options.mode ?? 3),
        ...(holder === undefined ? {} : { [SERVICE_ANNOTATION]: 'sync', [POD_ANNOTATION]: `sync-${suffix}` }),
        ...(options.position === undefined ? {} : { [QUEUE_POSITION_ANNOTATION]: options.position }),
      },
    },
    spec: {
      ...(holder === undefined ? {} : { holderIdentity: holder, acquireTime: '2030-01-01T11:58:00.000000Z' }),
      leaseDurationSeconds: 20,
      renewTime: options.renewTime ?? '2030-01-01T11:59:50.000000Z',
      leaseTransitions: 0,
    },
  }
}
