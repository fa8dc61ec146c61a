import { InvalidLockOptionsError } from './errors.ts'
import { connectByDefault, createKubernetesLeaseStore, kubeConfigNamespace } from './kubernetes-store.ts'
import type { Locks } from './locks.ts'
import { LockClient } from './locks.ts'
import type { LocksOptions } from './options.ts'
import { processEnvironment, resolveLocksOptions } from './options.ts'

/**
 * Creates the lock client of a process. Reads configuration only here: the kubeconfig (or the
 * in-cluster service account) and the downward-API variables `POD_NAME`, `POD_NAMESPACE` and
 * `NODE_NAME`. Makes no request until the first `acquire()`.
 *
 * ```ts
 * const locks = createLocks({ service: 'update-customer' })
 * await using lock = await locks.acquire()
 * ```
 */
export function createLocks(options: LocksOptions = {}): Locks {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidLockOptionsError('options', 'an object', options)
  }
  if (options.store !== undefined) {
    return new LockClient(resolveLocksOptions(options, processEnvironment()), options.store, false)
  }
  if (options.kubeConfig !== undefined) {
    const { kubeConfig } = options
    const resolved = resolveLocksOptions(options, processEnvironment(kubeConfigNamespace(kubeConfig)))
    return new LockClient(resolved, createKubernetesLeaseStore(kubeConfig), true)
  }
  const cluster = connectByDefault()
  const resolved = resolveLocksOptions(options, processEnvironment(cluster.namespace))
  return new LockClient(resolved, cluster.store, true)
}
