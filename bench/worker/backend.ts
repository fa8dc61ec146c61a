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
