/** What the worker asks of a lock client, whichever system it runs on. */
import { KubeConfig } from '@kubernetes/client-node'

export interface Backend {
  acquire(
    name: string,
    expires: number,
    timeout: number | null,
    renew: boolean,
    fair?: boolean,
  ): Promise<Held>
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
