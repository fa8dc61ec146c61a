import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { homedir } from 'node:os'
import { join } from 'node:path'
import type { KubeConfig } from '@kubernetes/client-node'
import { LockApiError } from '../errors.ts'
import type { Connection } from './http.ts'

/**
 * Where the API server is and how to authenticate, found like kubectl finds it:
 * 1. an explicit kubeconfig (`--kubeconfig`, or a `KubeConfig` handed to `createLocks()`);
 * 2. `KUBECONFIG` (several files, merged);
 * 3. `~/.kube/config`;
 * 4. in a pod, the service account: `KUBERNETES_SERVICE_HOST`/`_PORT`, and the token, CA and
 *    namespace files under `/var/run/secrets/kubernetes.io/serviceaccount`.
 *
 * Kubeconfig files can name exec credential plugins, auth providers and client certificates, so they are
 * read with `@kubernetes/client-node` — loaded only then: the in-cluster path needs none of it.
 */

export type { KubeConfig }

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount'

/** The projected token is re-read this often (client-go re-reads it about every minute). */
export const TOKEN_REFRESH_MS = 60_000

export interface InClusterOptions {
  readonly env?: Readonly<Record<string, string | undefined>>
  /** The service account's files. @default {@link SERVICE_ACCOUNT_DIR} */
  readonly root?: string
  /** Monotonic milliseconds, for the token's refresh. @default `performance.now()` */
  readonly now?: () => number
}

/** Whether the process runs in a pod with a service account to use. */
export function isInCluster(options: InClusterOptions = {}): boolean {
  const env = options.env ?? process.env
  const root = options.root ?? SERVICE_ACCOUNT_DIR
  return (
    Boolean(env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT) && existsSync(join(root, 'token'))
  )
}

/**
 * The in-cluster connection: the service `kubernetes` from the environment, the CA file, and the token
 * file — re-read every {@link TOKEN_REFRESH_MS}, since the kubelet rotates projected tokens.
 */
export function inClusterConnection(options: InClusterOptions = {}): Connection {
  const env = options.env ?? process.env
  const root = options.root ?? SERVICE_ACCOUNT_DIR
  const now = options.now ?? (() => performance.now())
  const host = env.KUBERNETES_SERVICE_HOST
  const port = env.KUBERNETES_SERVICE_PORT
  if (!host || !port) {
    throw new LockApiError(
      0,
      undefined,
      'not in a pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set, and no kubeconfig was found (set KUBECONFIG or create ~/.kube/config)',
    )
  }
  const read = (file: string) => readFileSync(join(root, file), 'utf8').trim()
  let token = read('token')
  let readAt = now()
  const namespacePath = join(root, 'namespace')
  return {
    // An IPv6 service address needs brackets in a URL.
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    tls: { ca: readFileSync(join(root, 'ca.crt')) },
    headers: () => {
      if (now() - readAt >= TOKEN_REFRESH_MS) {
        try {
          token = read('token')
        } catch {
          // Keep the last token: a rotation in progress (the kubelet swaps a symlink) or a brief hiccup.
        }
        readAt = now()
      }
      return { Authorization: `Bearer ${token}` }
    },
    namespace: existsSync(namespacePath)
      ? readFileSync(namespacePath, 'utf8').trim() || undefined
      : undefined,
  }
}

/** Whether kubectl's rules find a kubeconfig file (`KUBECONFIG`, else `~/.kube/config`). */
export function hasKubeConfigFile(env: Readonly<Record<string, string | undefined>> = process.env): boolean {
  if (env.KUBECONFIG) return true
  return existsSync(join(env.HOME ?? homedir(), '.kube', 'config'))
}

/**
 * `@kubernetes/client-node`, loaded on first use: only to read kubeconfig files. Synchronous, so that
 * `createLocks()` stays synchronous (Node loads an ES module graph with `require()`).
 */
export function clientNode(): typeof import('@kubernetes/client-node') {
  return createRequire(import.meta.url)('@kubernetes/client-node')
}

/** A kubeconfig loaded by kubectl's rules, or from `path`. */
export function loadKubeConfig(path?: string): KubeConfig {
  const kubeConfig = new (clientNode().KubeConfig)()
  if (path === undefined) kubeConfig.loadFromDefault()
  else kubeConfig.loadFromFile(path)
  return kubeConfig
}

/** How long TLS material and headers from a kubeconfig are reused before they are asked for again. */
const KUBECONFIG_HEADERS_MS = 10_000

/**
 * The connection a kubeconfig describes. TLS material (CA, client certificate and key) is read once;
 * headers (bearer tokens, including those of exec plugins and auth providers) are asked of the
 * kubeconfig again every few seconds, so rotating credentials keep working.
 */
export async function kubeConfigConnection(kubeConfig: KubeConfig): Promise<Connection> {
  const cluster = kubeConfig.getCurrentCluster()
  if (!cluster?.server) {
    throw new LockApiError(
      0,
      undefined,
      'the kubeconfig has no current cluster: set a context with a cluster `server`',
    )
  }
  const apply = async () => {
    const options: { headers: Record<string, string>; [key: string]: unknown } = { headers: {} }
    await kubeConfig.applyToHTTPSOptions(options as never)
    if (typeof options.auth === 'string') {
      options.headers.Authorization = `Basic ${Buffer.from(options.auth).toString('base64')}`
    }
    return options
  }
  const first = await apply()
  let headers = first.headers
  let appliedAt = performance.now()
  return {
    server: cluster.server,
    tls: {
      ca: first.ca as Buffer | undefined,
      cert: first.cert as Buffer | undefined,
      key: first.key as Buffer | undefined,
      ...(first.rejectUnauthorized === undefined
        ? {}
        : { rejectUnauthorized: Boolean(first.rejectUnauthorized) }),
      ...(typeof first.servername === 'string' ? { servername: first.servername } : {}),
    },
    headers: async () => {
      if (performance.now() - appliedAt >= KUBECONFIG_HEADERS_MS) {
        headers = (await apply()).headers
        appliedAt = performance.now()
      }
      return headers
    },
    namespace: kubeConfigNamespace(kubeConfig),
  }
}

/** The namespace of the kubeconfig's current context, if it names one. */
export function kubeConfigNamespace(kubeConfig: KubeConfig): string | undefined {
  const context = kubeConfig.getContextObject(kubeConfig.getCurrentContext())
  const namespace = context?.namespace?.trim()
  return namespace === undefined || namespace === '' ? undefined : namespace
}
