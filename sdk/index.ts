// The package entry point, `kube-locks`: what an application needs to take locks and handle their
// failures. Every name here is a promise kept across releases; sdk/entry-points.test.ts lists them.
// Test helpers are in `kube-locks/testing` (testing.ts); what the controller, the CLI and the
// development tooling share is in internal.ts, which has no compatibility promise.
export type { Clock, Logger } from './clock.ts'
export { createLocks } from './create-locks.ts'
export type { LockErrorCode, LockLostReason } from './errors.ts'
export {
  InvalidLockOptionsError,
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
} from './errors.ts'
export type { Lock } from './held-lock.ts'
export type { KubeConfig, KubeConfigProblem } from './kubernetes-store.ts'
export { KubeConfigError } from './kubernetes-store.ts'
export type { LeaseStore } from './lease-store.ts'
export type { LockedFunction, Locks } from './locks.ts'
export type { AcquireOptions, HolderMode, LocksOptions } from './options.ts'
export { DEFAULTS } from './options.ts'
export { compareResourceVersions } from './resource-version.ts'
