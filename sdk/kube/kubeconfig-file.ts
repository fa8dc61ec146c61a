import { readFileSync } from 'node:fs'
import { dirname, isAbsolute, join } from 'node:path'
import { load } from 'js-yaml'
import type { Connection } from './http.ts'

// kubeconfig files read without the generated Kubernetes client: kubectl's merge of several files,
// and the connection of the common cases — a CA, a client certificate, a bearer token or token file,
// basic auth. A context whose user runs an exec plugin or an auth provider, or whose cluster needs a
// proxy, is left to @kubernetes/client-node ({@link isLean} says which).

type Entry = Readonly<Record<string, unknown>>

interface Named {
  readonly name: string
  readonly entry: Entry
  /** The directory of the file that named it: relative paths in it are relative to that file. */
  readonly dir: string
}

/** kubeconfig files merged as kubectl merges them: for every name, and the current context, the first file wins. */
export interface KubeConfigFiles {
  readonly clusters: readonly Named[]
  readonly users: readonly Named[]
  readonly contexts: readonly Named[]
  readonly currentContext: string
}

/** A file that is not a readable kubeconfig, with what is wrong with it; the caller words it. */
export class UnreadableKubeConfig extends Error {
  path: string | undefined
}

function namedList(document: Entry, key: string, field: string, dir: string): Named[] {
  const list = document[key]
  if (list === undefined || list === null) return []
  if (!Array.isArray(list)) throw new UnreadableKubeConfig(`\`${key}\` is not a list`)
  return list.map((item: unknown) => {
    const { name, [field]: entry } = (item ?? {}) as Record<string, unknown>
    if (typeof name !== 'string') throw new UnreadableKubeConfig(`an entry of \`${key}\` has no name`)
    return { name, entry: (entry ?? {}) as Entry, dir }
  })
}

/** Reads and merges `files` (first first). */
export function readKubeConfigFiles(files: readonly string[]): KubeConfigFiles {
  const clusters = new Map<string, Named>()
  const users = new Map<string, Named>()
  const contexts = new Map<string, Named>()
  let currentContext = ''
  const add = (into: Map<string, Named>, items: readonly Named[]) => {
    for (const item of items) if (!into.has(item.name)) into.set(item.name, item)
  }
  for (const file of files) {
    try {
      const document = (load(readFileSync(file, 'utf8')) ?? {}) as Entry
      if (typeof document !== 'object' || Array.isArray(document)) {
        throw new UnreadableKubeConfig('not a YAML mapping')
      }
      const dir = dirname(file)
      add(clusters, namedList(document, 'clusters', 'cluster', dir))
      add(users, namedList(document, 'users', 'user', dir))
      add(contexts, namedList(document, 'contexts', 'context', dir))
      const current = document['current-context']
      if (currentContext === '' && typeof current === 'string') currentContext = current
    } catch (error) {
      const unreadable =
        error instanceof UnreadableKubeConfig
          ? error
          : new UnreadableKubeConfig(error instanceof Error ? error.message : String(error), { cause: error })
      unreadable.path = file
      throw unreadable
    }
  }
  return {
    clusters: [...clusters.values()],
    users: [...users.values()],
    contexts: [...contexts.values()],
    currentContext,
  }
}

/** The cluster, user and namespace a context names. */
export interface Selected {
  readonly cluster: Named | undefined
  readonly user: Named | undefined
  readonly namespace: string | undefined
}

export function select(config: KubeConfigFiles, context: string): Selected {
  const entry = config.contexts.find((c) => c.name === context)?.entry ?? {}
  const namespace = typeof entry.namespace === 'string' ? entry.namespace.trim() : ''
  return {
    cluster: config.clusters.find((c) => c.name === entry.cluster),
    user: config.users.find((u) => u.name === entry.user),
    namespace: namespace === '' ? undefined : namespace,
  }
}

const LEAN_CLUSTER_KEYS = new Set([
  'server',
  'certificate-authority',
  'certificate-authority-data',
  'insecure-skip-tls-verify',
  'tls-server-name',
  'extensions',
])
const LEAN_USER_KEYS = new Set([
  'client-certificate',
  'client-certificate-data',
  'client-key',
  'client-key-data',
  'token',
  'tokenFile',
  'username',
  'password',
  'extensions',
])

/** True when the connection needs nothing this module does not read (no exec plugin, auth provider, proxy, impersonation). */
export function isLean(selected: Selected): boolean {
  const only = (entry: Entry | undefined, keys: ReadonlySet<string>) =>
    Object.keys(entry ?? {}).every((key) => keys.has(key))
  return only(selected.cluster?.entry, LEAN_CLUSTER_KEYS) && only(selected.user?.entry, LEAN_USER_KEYS)
}

/** Inline base64 data, else the file (relative to its kubeconfig), else nothing. */
function material(item: Named | undefined, dataKey: string, fileKey: string): Buffer | undefined {
  const data = item?.entry[dataKey]
  if (typeof data === 'string' && data !== '') return Buffer.from(data, 'base64')
  const file = item?.entry[fileKey]
  if (typeof file !== 'string' || file === '') return undefined
  return readFileSync(isAbsolute(file) ? file : join(item?.dir ?? '.', file))
}

/** How long a token file's content is reused before it is read again (tokens rotate). */
const TOKEN_FILE_MS = 10_000

/** The connection of a lean context ({@link isLean}). */
export function leanConnection(selected: Selected, server: string): Connection {
  const { cluster, user } = selected
  const insecure = cluster?.entry['insecure-skip-tls-verify'] === true
  const serverName = cluster?.entry['tls-server-name']
  const token = user?.entry.token
  const tokenFile = user?.entry.tokenFile
  const username = user?.entry.username
  const password = user?.entry.password
  let fileToken: { value: string; readAt: number } | undefined
  const bearer = (): string | undefined => {
    if (typeof token === 'string' && token !== '') return token
    if (typeof tokenFile !== 'string' || tokenFile === '') return undefined
    if (fileToken === undefined || performance.now() - fileToken.readAt >= TOKEN_FILE_MS) {
      const path = isAbsolute(tokenFile) ? tokenFile : join(user?.dir ?? '.', tokenFile)
      fileToken = { value: readFileSync(path, 'utf8').trim(), readAt: performance.now() }
    }
    return fileToken.value
  }
  const headers = (): Record<string, string> => {
    const value = bearer()
    if (value !== undefined) return { Authorization: `Bearer ${value}` }
    if (typeof username === 'string' && typeof password === 'string') {
      return { Authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` }
    }
    return {}
  }
  return {
    server,
    tls: {
      ca: material(cluster, 'certificate-authority-data', 'certificate-authority'),
      cert: material(user, 'client-certificate-data', 'client-certificate'),
      key: material(user, 'client-key-data', 'client-key'),
      ...(insecure ? { rejectUnauthorized: false } : {}),
      ...(typeof serverName === 'string' && serverName !== '' ? { servername: serverName } : {}),
    },
    headers,
    namespace: selected.namespace,
  }
}
