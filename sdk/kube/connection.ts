import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { homedir } from 'node:os'
import { delimiter, join } from 'node:path'
import type { KubeConfig } from '@kubernetes/client-node'
import { LockApiError } from '../errors.ts'
import type { Connection } from './http.ts'
import {
  isLean,
  type KubeConfigFiles,
  leanConnection,
  readKubeConfigFiles as readLeanFiles,
  select,
  UnreadableKubeConfig,
} from './kubeconfig-file.ts'

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

/**
 * `@kubernetes/client-node`, loaded on first use: only to read kubeconfig files. Synchronous, so that
 * `createLocks()` stays synchronous (Node loads an ES module graph with `require()`).
 */
export function clientNode(): typeof import('@kubernetes/client-node') {
  return createRequire(import.meta.url)('@kubernetes/client-node')
}

/** What is wrong with the cluster configuration, for callers that word it their own way (the CLI). */
export type KubeConfigProblem =
  /** The kubeconfig file named explicitly (`path`) does not exist. */
  | 'file-not-found'
  /** None of the files `KUBECONFIG` names exists. */
  | 'env-files-not-found'
  /** No kubeconfig file anywhere, and not in a pod with a service account. */
  | 'not-configured'
  /** A kubeconfig file could not be read or parsed. */
  | 'unreadable'
  /** The context asked for is not in the kubeconfig (`contexts` lists those that are). */
  | 'unknown-context'
  /** No context was asked for and the kubeconfig's current context is unset or missing. */
  | 'no-current-context'
  /** The context names no cluster with a server. */
  | 'no-server'

/** The cluster configuration cannot be loaded; `problem` says why. */
export class KubeConfigError extends LockApiError {
  readonly problem: KubeConfigProblem
  /** The file concerned, or the value of `KUBECONFIG`. */
  readonly path: string | undefined
  /** The context concerned. */
  readonly context: string | undefined
  /** The contexts the kubeconfig has. */
  readonly contexts: readonly string[]

  constructor(
    problem: KubeConfigProblem,
    message: string,
    details: { path?: string | undefined; context?: string | undefined; contexts?: readonly string[] } = {},
    options?: ErrorOptions,
  ) {
    super(0, undefined, message, options)
    this.problem = problem
    this.path = details.path
    this.context = details.context
    this.contexts = details.contexts ?? []
  }
}

export interface ClusterOptions extends InClusterOptions {
  /** A kubeconfig file to read instead of `KUBECONFIG` and `~/.kube/config` (`--kubeconfig`). */
  readonly kubeconfig?: string | undefined
  /** The context to use instead of the current one (`--context`). */
  readonly context?: string | undefined
  /** The home directory holding `.kube/config`. @default `env.HOME`, else `os.homedir()` */
  readonly home?: string | undefined
}

/** Where the API server is and how to reach it, as found by {@link loadCluster}. */
export interface Cluster {
  readonly server: string
  /** The namespace the configuration names (kubeconfig context, service account), if any. */
  readonly namespace: string | undefined
  /** The kubeconfig context in use; `undefined` with the pod's service account. */
  readonly context: string | undefined
  /** The kubeconfig that was read; `undefined` with the pod's service account. */
  readonly kubeConfig: KubeConfig | undefined
  /** The connection; called on the first request (a kubeconfig's exec plugin runs then). */
  readonly connect: () => Connection | Promise<Connection>
}

/**
 * The cluster by kubectl's rules: `options.kubeconfig`, else the files of `KUBECONFIG` (missing ones
 * skipped; merged, the first file to name a cluster, user or context or to set the current context
 * wins), else `~/.kube/config`, else the pod's service account, which needs no Kubernetes client
 * library. Then `options.context`, or the current context, picks the cluster. Throws a
 * {@link KubeConfigError} rather than falling back to `localhost:8080`.
 */
export function loadCluster(options: ClusterOptions = {}): Cluster {
  const env = options.env ?? process.env
  const files = kubeConfigFiles(options)
  if (files === undefined) {
    if (options.context !== undefined) {
      throw new KubeConfigError(
        'unknown-context',
        `there is no kubeconfig, so no context \`${options.context}\``,
        { context: options.context },
      )
    }
    const connection = inClusterConnection({ ...options, env })
    return {
      server: connection.server,
      namespace: connection.namespace,
      context: undefined,
      kubeConfig: undefined,
      connect: () => connection,
    }
  }
  const config = readFiles(files)
  const contexts = config.contexts.map((context) => context.name)
  const has = (name: string) => contexts.includes(name)
  if (options.context !== undefined && !has(options.context)) {
    throw new KubeConfigError('unknown-context', `the kubeconfig has no context \`${options.context}\``, {
      context: options.context,
      contexts,
    })
  }
  const context = options.context ?? config.currentContext
  if (!context || !has(context)) {
    throw new KubeConfigError('no-current-context', 'the kubeconfig has no current context', { contexts })
  }
  const selected = select(config, context)
  const server = selected.cluster?.entry.server
  if (typeof server !== 'string' || server === '') {
    throw new KubeConfigError(
      'no-server',
      `the kubeconfig context \`${context}\` names no cluster with a server`,
      {
        context,
        contexts,
      },
    )
  }
  // The generated client is loaded only for what the lean reader leaves to it (exec plugins, auth
  // providers, proxies) and for callers that ask for its object.
  let kubeConfig: KubeConfig | undefined
  const clientNodeConfig = () => {
    if (kubeConfig === undefined) {
      kubeConfig = readKubeConfigFiles(files)
      kubeConfig.setCurrentContext(context)
    }
    return kubeConfig
  }
  return {
    server,
    namespace: selected.namespace,
    context,
    get kubeConfig() {
      return clientNodeConfig()
    },
    connect: () =>
      isLean(selected) ? leanConnection(selected, server) : kubeConfigConnection(clientNodeConfig()),
  }
}

/** The files read by the lean reader, a bad one as a {@link KubeConfigError}. */
function readFiles(files: readonly string[]): KubeConfigFiles {
  try {
    return readLeanFiles(files)
  } catch (error) {
    if (!(error instanceof UnreadableKubeConfig)) throw error
    const file = error.path ?? files.join(delimiter)
    const detail = error.message.split('\n')[0] ?? ''
    throw new KubeConfigError(
      'unreadable',
      `cannot read the kubeconfig ${file} (${detail})`,
      { path: file },
      { cause: error.cause ?? error },
    )
  }
}

/** The kubeconfig files kubectl's rules pick, first first; `undefined`: none, use the service account. */
function kubeConfigFiles(options: ClusterOptions): string[] | undefined {
  const env = options.env ?? process.env
  if (options.kubeconfig !== undefined) {
    if (!existsSync(options.kubeconfig)) {
      throw new KubeConfigError(
        'file-not-found',
        `the kubeconfig file ${options.kubeconfig} does not exist`,
        {
          path: options.kubeconfig,
        },
      )
    }
    return [options.kubeconfig]
  }
  if (env.KUBECONFIG) {
    const existing = env.KUBECONFIG.split(delimiter).filter((file) => file !== '' && existsSync(file))
    if (existing.length === 0) {
      throw new KubeConfigError(
        'env-files-not-found',
        `no kubeconfig file named by KUBECONFIG exists (${env.KUBECONFIG})`,
        { path: env.KUBECONFIG },
      )
    }
    return existing
  }
  const home = join(options.home ?? env.HOME ?? homedir(), '.kube', 'config')
  if (existsSync(home)) return [home]
  if (isInCluster(options)) return undefined
  throw new KubeConfigError(
    'not-configured',
    'no cluster configured: set KUBECONFIG, create ~/.kube/config, or run in a pod with a service account',
  )
}

/** Reads and merges kubeconfig files: for every name, and for the current context, the first file wins. */
function readKubeConfigFiles(files: readonly string[]): KubeConfig {
  const { KubeConfig } = clientNode()
  const loaded = files.map((file) => {
    const kubeConfig = new KubeConfig()
    try {
      kubeConfig.loadFromFile(file)
    } catch (error) {
      const detail = error instanceof Error ? (error.message.split('\n')[0] ?? '') : String(error)
      throw new KubeConfigError(
        'unreadable',
        `cannot read the kubeconfig ${file} (${detail})`,
        { path: file },
        {
          cause: error,
        },
      )
    }
    return kubeConfig
  })
  const [first] = loaded
  if (first !== undefined && loaded.length === 1) return first
  const firstByName = <T extends { readonly name: string }>(lists: readonly (readonly T[])[]): T[] => {
    const seen = new Map<string, T>()
    for (const item of lists.flat()) if (!seen.has(item.name)) seen.set(item.name, item)
    return [...seen.values()]
  }
  const merged = new KubeConfig()
  merged.loadFromOptions({
    clusters: firstByName(loaded.map((config) => config.getClusters())),
    users: firstByName(loaded.map((config) => config.getUsers())),
    contexts: firstByName(loaded.map((config) => config.getContexts())),
    currentContext: loaded.map((config) => config.getCurrentContext()).find((name) => name) ?? '',
  })
  return merged
}

/**
 * A kubeconfig by kubectl's rules ({@link loadCluster}), or from `path`; with the pod's service account,
 * a kubeconfig that describes it.
 */
export function loadKubeConfig(path?: string): KubeConfig {
  const cluster = loadCluster({ kubeconfig: path })
  if (cluster.kubeConfig !== undefined) return cluster.kubeConfig
  const kubeConfig = new (clientNode().KubeConfig)()
  kubeConfig.loadFromCluster()
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
