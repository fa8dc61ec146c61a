import {
  LOCK_NAME_ANNOTATION,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  POD_ANNOTATION,
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
  } = {},
): LeaseJson {
  const holder = 'holder' in options ? options.holder : 'holder-1_1_x'
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
      annotations: { [LOCK_NAME_ANNOTATION]: options.lockName ?? name },
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
