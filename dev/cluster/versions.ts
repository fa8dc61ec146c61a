/**
 * Versions of the test control plane. Each release's Go modules under `go/` pin the same
 * versions; change both together (the cache key below makes a changed version build afresh).
 */
export interface Release {
  /** The Kubernetes minor, as `KUBE_LOCKS_K8S_VERSION` names it: `'1.36'`. */
  readonly minor: string
  /** kube-apiserver and kubectl. */
  readonly kubernetes: string
  /** The etcd minor that Kubernetes release ships with, at its newest patch. */
  readonly etcd: string
  /** Helm does not follow the server: one version for every release. */
  readonly helm: string
  /** Folders under `go/` of the wrapper modules that pin `kubernetes` and `etcd`. */
  readonly modules: { readonly kubernetes: string; readonly etcd: string }
}

const HELM = 'v3.22.0'

/**
 * The supported Kubernetes versions (docs/install.md): the minor the test suite runs against by
 * default and the three before it. `npm run test:compat` runs the suite against the newest and
 * the oldest; the minors between them are covered by the two ends (nothing kube-locks uses
 * changed in between).
 */
export const RELEASES: Readonly<Record<string, Release>> = Object.freeze({
  '1.36': {
    minor: '1.36',
    kubernetes: 'v1.36.3',
    etcd: 'v3.6.8',
    helm: HELM,
    modules: { kubernetes: 'kubernetes', etcd: 'etcd' },
  },
  '1.33': {
    minor: '1.33',
    kubernetes: 'v1.33.13',
    etcd: 'v3.5.35',
    helm: HELM,
    modules: { kubernetes: 'kubernetes-v1.33', etcd: 'etcd-v3.5' },
  },
})

/** The release `npm test` uses. */
export const DEFAULT_MINOR = '1.36'

/** The ends of the support window, oldest first: what `npm run test:compat` runs. */
export const SUPPORT_WINDOW = Object.freeze({ oldest: '1.33', newest: DEFAULT_MINOR })

/** Selects the release of the test control plane; unset means {@link DEFAULT_MINOR}. */
export const VERSION_ENV = 'KUBE_LOCKS_K8S_VERSION'

/** The release named by `KUBE_LOCKS_K8S_VERSION` (`1.33`, `v1.33` or `v1.33.13`), else the default. */
export function selectRelease(env: NodeJS.ProcessEnv = process.env): Release {
  const wanted = env[VERSION_ENV]?.trim()
  if (!wanted) return RELEASES[DEFAULT_MINOR] as Release
  const minor = /^v?(\d+\.\d+)(?:\.\d+)?$/.exec(wanted)?.[1]
  const release = minor === undefined ? undefined : RELEASES[minor]
  if (!release || (wanted.split('.').length === 3 && release.kubernetes !== `v${wanted.replace(/^v/, '')}`)) {
    const known = Object.values(RELEASES)
      .map((r) => `${r.minor} (${r.kubernetes})`)
      .join(', ')
    throw new Error(`${VERSION_ENV}=${wanted} names no release the test harness pins: use one of ${known}`)
  }
  return release
}

/** The versions of the release this process runs against (`KUBE_LOCKS_K8S_VERSION`, else the default). */
export const VERSIONS: Release = selectRelease()

/** Bumped when the way the binaries are built changes, so that caches are rebuilt. */
const BUILD_REVISION = 2

export function cacheKey(release: Release): string {
  return `r${BUILD_REVISION}_k8s-${release.kubernetes}_etcd-${release.etcd}_helm-${release.helm}`
}
