/**
 * Versions of the test control plane. The Go modules under `go/` pin the same versions;
 * change both together (the cache key below makes a changed version build afresh).
 */
export const VERSIONS = Object.freeze({
  kubernetes: 'v1.36.3',
  etcd: 'v3.6.8',
  helm: 'v3.22.0',
})

export const CACHE_KEY = `k8s-${VERSIONS.kubernetes}_etcd-${VERSIONS.etcd}_helm-${VERSIONS.helm}`
