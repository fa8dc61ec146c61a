// `kube-locks/internal`: what the controller, the CLI and the development tooling use from the SDK.
// Not for applications, which import `kube-locks` (index.ts) and `kube-locks/testing` (testing.ts):
// no compatibility promise, any release may change any name here. A name added here is added to its
// list in sdk/entry-points.test.ts too.
export type { Clock, Logger } from './clock.ts'
export { systemClock } from './clock.ts'
export {
  HOLDER_ANNOTATIONS,
  HOLDER_OF_LABEL,
  HOLDS_ANNOTATION,
  LEASE_API_VERSION,
  LEASE_RESOURCE,
  LIMIT_ANNOTATION,
  LOCK_NAME_ANNOTATION,
  MANAGED_BY_LABEL,
  MANAGED_BY_SELECTOR,
  MANAGED_BY_VALUE,
  MODE_ANNOTATION,
  NODE_ANNOTATION,
  NODE_NAME_ENV,
  POD_ANNOTATION,
  POD_NAME_ENV,
  POD_NAMESPACE_ENV,
  QUEUE_LABEL,
  QUEUE_POSITION_ANNOTATION,
  SERVICE_ANNOTATION,
  WAITS_FOR_ANNOTATION,
} from './constants.ts'
export { createLocks } from './create-locks.ts'
export type { LockErrorCode, LockLostReason } from './errors.ts'
export {
  InvalidLockOptionsError,
  LeaseConflictError,
  LeaseNotFoundError,
  LeaseNotManagedError,
  LockApiError,
  LockClosedError,
  LockError,
  LockLostError,
  LockModeConflictError,
  LockPermissionError,
  LockTimeoutError,
  LockUnavailableError,
  NamespaceNotFoundError,
  WatchExpiredError,
} from './errors.ts'
export type { LeaseObservation } from './expiry.ts'
export { expiresAt, isExpired, observe } from './expiry.ts'
export type { Lock } from './held-lock.ts'
export { RECORD_FRESH_MS } from './holder-acquire.ts'
export {
  describeMode,
  holderKeyFor,
  holderRecordLock,
  holderSelector,
  isHolderRecord,
  isHolderRecordOf,
  modeOf,
} from './holders.ts'
export type {
  Cluster,
  ClusterOptions,
  KubeConfig,
  KubeConfigProblem,
  KubernetesLeaseEvent,
  KubernetesLeaseStore,
  KubernetesLeaseStoreOptions,
  KubernetesWatchOptions,
} from './kubernetes-store.ts'
export {
  connectionFailure,
  createClusterLeaseStore,
  createKubernetesLeaseStore,
  dumpYaml,
  KubeConfigError,
  kubeConfigNamespace,
  loadCluster,
  loadDefaultKubeConfig,
} from './kubernetes-store.ts'
export {
  HASHED_LEASE_NAME,
  isDns1123Subdomain,
  leaseNameFor,
  MAX_LOCK_NAME_BYTES,
  validateLockName,
} from './lease-name.ts'
export type { LeaseDraft, LeaseObject, LeaseRecord, RetainedFields } from './lease-record.ts'
export { freedRecord, isFree, isManaged, leaseToRecord, recordToLease } from './lease-record.ts'
export type {
  LeaseEvent,
  LeaseList,
  LeaseStore,
  ListOptions,
  RequestOptions,
  WatchOptions,
} from './lease-store.ts'
export type { LockedFunction, Locks } from './locks.ts'
export type { FaultPhase, MemoryLeaseStore, MemoryStoreOperation } from './memory-store.ts'
export { createMemoryLeaseStore } from './memory-store.ts'
export { formatMicroTime, parseMicroTime } from './micro-time.ts'
export type { AcquireOptions, HolderMode, LocksOptions } from './options.ts'
export {
  DEFAULTS,
  defaultSafetyMargin,
  MAX_EXPIRES,
  MAX_LIMIT,
  nearestName,
  rejectUnknownKeys,
} from './options.ts'
export type { PagedList, PagedListOptions } from './paged-list.ts'
export { listPaged } from './paged-list.ts'
export type { ReclaimDecision, ReclaimSettings } from './reclaim.ts'
export { RECLAIM_DEFAULTS, reclaimDecision, reclaimManagedDecision } from './reclaim.ts'
export { compareResourceVersions, isResourceVersion } from './resource-version.ts'
export type { ServerVersionInfo } from './server-version.ts'
export type { TicketDraftOptions } from './ticket.ts'
export {
  compareTickets,
  isTicket,
  isTicketOf,
  isWaiting,
  newTicketName,
  queueKeyFor,
  queueSelector,
  renewedTicket,
  ticketDraft,
  ticketLock,
  ticketPosition,
} from './ticket.ts'
export { backoff, clampDelay, MAX_TIMER_MS, setClampedTimeout } from './timers.ts'
