import type { Logger } from './clock.ts'
import type { LeaseStore, RequestOptions } from './lease-store.ts'

/**
 * Fencing tokens are resourceVersions compared as integers. Kubernetes promises that comparison
 * only from 1.35 (KEP-5504: resourceVersions of one resource type are comparable decimal
 * integers). Before, a resourceVersion is opaque by contract, though with the API server's own
 * etcd storage it is the etcd revision of the write and grows with every write. The SDK keeps
 * working on older servers and says so once (docs/guarantees.md, "Fencing before Kubernetes 1.35").
 */
export const COMPARABLE_RESOURCE_VERSIONS_SINCE: KubernetesVersion = Object.freeze({ major: 1, minor: 35 })

/** What the API server's `GET /version` reports (the fields the SDK reads). */
export interface ServerVersionInfo {
  readonly major?: string | undefined
  readonly minor?: string | undefined
  readonly gitVersion?: string | undefined
}

export interface KubernetesVersion {
  readonly major: number
  readonly minor: number
}

/**
 * The major and minor version of a server, or `undefined` when it does not say. Reads `major` and
 * `minor` (managed services append `+`: `"33+"`), else `gitVersion` (`v1.33.5-eks-4f2a1c`). An
 * unstamped build (`v0.0.0-master`) counts as unknown.
 */
export function parseServerVersion(info: ServerVersionInfo): KubernetesVersion | undefined {
  const leading = (text: string | undefined) => /^(\d+)/.exec(text?.trim() ?? '')?.[1]
  let major = leading(info.major)
  let minor = leading(info.minor)
  if (major === undefined || minor === undefined) {
    const git = /^v?(\d+)\.(\d+)(?:[.+-]|$)/.exec(info.gitVersion?.trim() ?? '')
    major = git?.[1]
    minor = git?.[2]
  }
  if (major === undefined || minor === undefined || Number(major) === 0) return undefined
  return { major: Number(major), minor: Number(minor) }
}

/** Negative if `a` is older than `b`, 0 if the same minor, positive if newer. */
export function compareVersions(a: KubernetesVersion, b: KubernetesVersion): number {
  return a.major - b.major || a.minor - b.minor
}

/** Whether the API promises that resourceVersions, and so fencing tokens, compare as integers. */
export function promisesComparableResourceVersions(version: KubernetesVersion): boolean {
  return compareVersions(version, COMPARABLE_RESOURCE_VERSIONS_SINCE) >= 0
}

/** The warning logged once per lock client on a server older than 1.35. */
export function olderServerWarning(server: string, reported: string): string {
  const since = COMPARABLE_RESOURCE_VERSIONS_SINCE
  return (
    `the API server at ${server} runs Kubernetes ${reported}, older than ${since.major}.${since.minor}: ` +
    'fencing tokens are etcd revisions, which increase with every write while the API server keeps ' +
    `leases in its own etcd, but the Kubernetes API promises comparable resourceVersions only from ` +
    `${since.major}.${since.minor} (KEP-5504); behind an aggregated API or a storage other than etcd ` +
    'they may not increase. See "Fencing before Kubernetes 1.35" in docs/guarantees.md'
  )
}

/**
 * Asks the store for the server's version and warns through `logger` if it is older than 1.35.
 * Never throws: a store that cannot tell (or fails to answer) is logged at debug level only.
 */
export async function checkServerVersion(
  store: LeaseStore,
  logger: Logger,
  options: RequestOptions = {},
): Promise<void> {
  if (store.serverVersion === undefined) return
  let info: ServerVersionInfo
  try {
    info = await store.serverVersion(options)
  } catch (error) {
    logger.debug?.('could not read the API server version', { server: store.server, error })
    return
  }
  const version = parseServerVersion(info)
  const reported = info.gitVersion || (version ? `${version.major}.${version.minor}` : 'unknown')
  if (version === undefined) {
    logger.debug?.('the API server does not report its version', {
      server: store.server,
      serverVersion: reported,
    })
  } else if (!promisesComparableResourceVersions(version)) {
    logger.warn?.(olderServerWarning(store.server, reported), {
      server: store.server,
      serverVersion: reported,
    })
  }
}
