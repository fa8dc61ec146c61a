import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { cacheKey, DEFAULT_MINOR, RELEASES, SUPPORT_WINDOW, selectRelease } from '../dev/cluster/versions.ts'

const GO = join(import.meta.dirname, '..', 'dev', 'cluster', 'go')

describe('test control plane releases', () => {
  it.each([
    [undefined, '1.36'],
    ['', '1.36'],
    ['1.33', '1.33'],
    ['v1.33', '1.33'],
    ['v1.33.13', '1.33'],
    [' 1.36 ', '1.36'],
  ])('KUBE_LOCKS_K8S_VERSION=%j selects %s', (value, minor) => {
    expect(selectRelease({ KUBE_LOCKS_K8S_VERSION: value }).minor).toBe(minor)
  })

  it.each(['1.30', '1.33.12', 'latest', '1'])(
    'refuses KUBE_LOCKS_K8S_VERSION=%s, naming the pinned ones',
    (value) => {
      expect(() => selectRelease({ KUBE_LOCKS_K8S_VERSION: value })).toThrow(
        `KUBE_LOCKS_K8S_VERSION=${value} names no release the test harness pins: use one of 1.36 (v1.36.3), 1.33 (v1.33.13)`,
      )
    },
  )

  it('keeps the default cache key, so that npm test never rebuilds for another version', () => {
    expect(cacheKey(selectRelease({}))).toBe('r2_k8s-v1.36.3_etcd-v3.6.8_helm-v3.22.0')
    expect(SUPPORT_WINDOW).toEqual({ oldest: '1.33', newest: DEFAULT_MINOR })
  })

  it.each(Object.values(RELEASES))('pins $kubernetes and etcd $etcd in its Go modules', (release) => {
    const kubernetes = readFileSync(join(GO, release.modules.kubernetes, 'go.mod'), 'utf8')
    expect(kubernetes).toContain(`require k8s.io/kubernetes ${release.kubernetes}\n`)
    // Every staging module at the matching v0 tag: v1.33.13 goes with v0.33.13.
    const staging = release.kubernetes.replace(/^v1\./, 'v0.')
    const replaced = [...kubernetes.matchAll(/^\t(k8s\.io\/[\w-]+) => \1 (v\S+)$/gm)]
    expect(replaced.length).toBeGreaterThan(25)
    expect(new Set(replaced.map((m) => m[2]))).toEqual(new Set([staging]))
    const etcd = readFileSync(join(GO, release.modules.etcd, 'go.mod'), 'utf8')
    expect(etcd).toContain(`require go.etcd.io/etcd/server/v3 ${release.etcd}\n`)
    expect(cacheKey(release)).toContain(`k8s-${release.kubernetes}_etcd-${release.etcd}`)
  })
})
