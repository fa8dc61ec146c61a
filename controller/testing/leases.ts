import {
  formatMicroTime,
  type LeaseDraft,
  LOCK_NAME_ANNOTATION,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  POD_ANNOTATION,
} from '../../sdk/internal.ts'

/** A kube-locks lease as the SDK writes it; held by a holder that will never renew unless said otherwise. */
export function managedLease(
  namespace: string,
  name: string,
  options: { holder?: string | undefined; duration?: number; renewTime?: string } = {},
): LeaseDraft {
  const holder = 'holder' in options ? options.holder : 'dead-pod_1_abcdef'
  const time = options.renewTime ?? formatMicroTime(Date.now())
  return {
    namespace,
    name,
    holderIdentity: holder,
    leaseDurationSeconds: options.duration ?? 1,
    acquireTime: holder === undefined ? undefined : time,
    renewTime: time,
    leaseTransitions: 1,
    labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE },
    annotations: {
      [LOCK_NAME_ANNOTATION]: name,
      ...(holder === undefined ? {} : { [POD_ANNOTATION]: 'dead-pod' }),
    },
  }
}

/**
 * A lease kube-locks does not manage: a node heartbeat or another component's leader election. Expired
 * long ago by its renewTime and its duration, so a controller that judged it would act on it.
 */
export function foreignLease(
  namespace: string,
  name: string,
  labels: Record<string, string> = {},
): LeaseDraft {
  const longAgo = formatMicroTime(Date.now() - 3_600_000)
  return {
    namespace,
    name,
    holderIdentity: `${name}_holder`,
    leaseDurationSeconds: 1,
    acquireTime: longAgo,
    renewTime: longAgo,
    leaseTransitions: 0,
    labels,
    annotations: {},
  }
}
