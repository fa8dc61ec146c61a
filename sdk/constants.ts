/**
 * Metadata shared by the SDK, the controller, the CLI and the Helm chart. These strings are a contract:
 * leases already in clusters carry them, so they never change.
 */

/** Label key present on every lease the SDK creates. */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by'
/** Value of {@link MANAGED_BY_LABEL} on every lease the SDK creates. */
export const MANAGED_BY_VALUE = 'kube-locks'
/** Label selector matching exactly the leases kube-locks manages. */
export const MANAGED_BY_SELECTOR = `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`

/** Annotation with the original lock name; always present, since a lease name may be a hash of it. */
export const LOCK_NAME_ANNOTATION = 'kube-locks.io/name'
/** Annotation with the holder's service, where known. Removed when the lock is released. */
export const SERVICE_ANNOTATION = 'kube-locks.io/service'
/** Annotation with the holder's pod name, where known. Removed when the lock is released. */
export const POD_ANNOTATION = 'kube-locks.io/pod'
/** Annotation with the holder's node name, where known. Removed when the lock is released. */
export const NODE_ANNOTATION = 'kube-locks.io/node'

/** Annotations that describe the current holder; a free lease has none of them. */
export const HOLDER_ANNOTATIONS: readonly string[] = Object.freeze([
  SERVICE_ANNOTATION,
  POD_ANNOTATION,
  NODE_ANNOTATION,
])

/** Downward-API environment variables read by `createLocks()` (and only there). */
export const POD_NAME_ENV = 'POD_NAME'
export const POD_NAMESPACE_ENV = 'POD_NAMESPACE'
export const NODE_NAME_ENV = 'NODE_NAME'

export const LEASE_RESOURCE = 'leases.coordination.k8s.io'
export const LEASE_API_VERSION = 'coordination.k8s.io/v1'

/**
 * Label on every ticket (a waiter's place in a fair lock's queue; see `sdk/ticket.ts`): the queue key
 * of the lock it waits for. Locks never carry it, so `-l '!kube-locks.io/queue-for'` lists locks only.
 */
export const QUEUE_LABEL = 'kube-locks.io/queue-for'
/** Annotation on every ticket: the Lease name of the lock it waits for. */
export const WAITS_FOR_ANNOTATION = 'kube-locks.io/waits-for'
/** Annotation a ticket's renewals write: its place in line, the resourceVersion of its creation. */
export const QUEUE_POSITION_ANNOTATION = 'kube-locks.io/position'

/**
 * Label on every holder record (one shared or semaphore holder of a lock; see `sdk/holders.ts`): the
 * queue key of the lock's lease, so `-l kube-locks.io/holder-of=<key>` lists one lock's holders.
 */
export const HOLDER_OF_LABEL = 'kube-locks.io/holder-of'
/** Annotation on every holder record: the Lease name of the lock it holds, exactly. */
export const HOLDS_ANNOTATION = 'kube-locks.io/holds'
/**
 * How a lock is held by more than one holder: `shared` or `semaphore`. On each holder record, and on
 * the lock's own lease (the mark) while such holders may be in, so that an exclusive acquirer knows to
 * wait for them and a holder asking for another mode is told what is in use. An exclusive acquirer that
 * creates the lease marks it `exclusive` (it cannot know who holds records until it has looked); one
 * that has waited for every holder it found drops the mark with its next write.
 */
export const MODE_ANNOTATION = 'kube-locks.io/mode'
/** Beside {@link MODE_ANNOTATION} `semaphore`: the most holders at once, a decimal integer. */
export const LIMIT_ANNOTATION = 'kube-locks.io/limit'
