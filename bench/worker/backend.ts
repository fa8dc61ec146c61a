/** What the worker asks of a lock client, whichever system it runs on. */
import { KubeConfig } from '@kubernetes/client-node'

/** One acquisition: `expires` and `timeout` in seconds; `timeout: null` waits for as long as it takes. */
export interface AcquireRequest {
  readonly expires: number
  readonly timeout: number | null
  readonly renew: boolean
  /** kube-locks: wait in line (the default) or race. */
  readonly fair?: boolean | undefined
  /** kube-locks: a semaphore of this many holders. */
  readonly limit?: number | undefined
  /** kube-locks: a shared hold. */
  readonly shared?: boolean | undefined
}

export interface Backend {
  /** redlock and the raw floor take exclusive locks only: they refuse `limit` and `shared`. */
  acquire(name: string, request: AcquireRequest): Promise<Held>
  /** Requests sent so far, by verb and object; kube-locks only. */
  readonly counts?: Readonly<Record<string, number>>
  /** Times of each request of one acquire+release, for the raw floor. */
  readonly lastRequests?: number[]
  /**
   * Watches the namespace's leases from now on and tells `onChange` of each change seen, until `signal`
   * aborts; resolves once the watch is open. kube-locks and raw only.
   */
  watchChanges?(onChange: (name: string, resourceVersion: string) => void, signal: AbortSignal): Promise<void>
  /**
   * The least a Node client can do per watch event: a watch of the namespace's kube-locks leases over
   * node:https that splits the stream into lines and parses each, and does nothing else; until `signal`
   * aborts. Resolves once the watch is open. raw only.
   */
  watchBare?(signal: AbortSignal): Promise<void>
  close(): Promise<void>
}

export interface Held {
  release(): Promise<void>
}

export function loadKubeConfig(path: string): KubeConfig {
  const kubeConfig = new KubeConfig()
  kubeConfig.loadFromFile(path)
  return kubeConfig
}

/** For the backends with exclusive locks only: a semaphore or shared hold asked of them is a mistake. */
export function exclusiveOnly(backend: string, request: AcquireRequest): void {
  if (request.limit !== undefined || request.shared !== undefined) {
    throw new Error(
      `the ${backend} backend takes exclusive locks only, got \`limit\` ${String(request.limit)} / \`shared\` ${String(request.shared)}: run semaphores and shared holds on a kube-locks worker`,
    )
  }
}
