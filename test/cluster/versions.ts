/**
 * Versions of the test control plane. The Go modules under `go/` pin the same versions;
 * change both together (the cache key below makes a changed version build afresh).
 */
export const VERSIONS = Object.freeze({
  kubernetes: 'v1.36.3',
  etcd: 'v3.6.8',
  helm: 'v3.22.0',
})

/** Bumped when the way the binaries are built changes, so that caches are rebuilt. */
const BUILD_REVISION = 2

export const CACHE_KEY = `r${BUILD_REVISION}_k8s-${VERSIONS.kubernetes}_etcd-${VERSIONS.etcd}_helm-${VERSIONS.helm}`
