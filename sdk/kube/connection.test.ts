import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { KubeConfigError, loadCluster } from './connection.ts'

const dir = mkdtempSync(join(tmpdir(), 'kube-locks-kubeconfig-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function file(name: string, text: string): string {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}

function config(options: {
  cluster: string
  server: string
  context: string
  namespace?: string
  current?: string
}) {
  return `apiVersion: v1
kind: Config
clusters:
- name: ${options.cluster}
  cluster: { server: "${options.server}" }
users:
- name: u
  user: { token: t }
contexts:
- name: ${options.context}
  context: { cluster: ${options.cluster}, user: u${options.namespace ? `, namespace: ${options.namespace}` : ''} }
${options.current === undefined ? '' : `current-context: ${options.current}`}
`
}

const noPod = { KUBERNETES_SERVICE_HOST: undefined, KUBERNETES_SERVICE_PORT: undefined }
const empty = join(dir, 'no-home')

function problem(load: () => unknown): string | undefined {
  try {
    load()
  } catch (error) {
    if (error instanceof KubeConfigError) return error.problem
    throw error
  }
  return undefined
}

describe('loadCluster follows kubectl', () => {
  const a = file(
    'a',
    config({ cluster: 'one', server: 'https://one:6443', context: 'dev', namespace: 'shop', current: 'dev' }),
  )
  const b = file(
    'b',
    config({ cluster: 'one', server: 'https://other:6443', context: 'prod', current: 'prod' }),
  )

  it('reads --kubeconfig alone, and the context it names', () => {
    const cluster = loadCluster({ kubeconfig: a, env: { ...noPod, KUBECONFIG: b }, home: empty })
    expect(cluster).toMatchObject({ server: 'https://one:6443', namespace: 'shop', context: 'dev' })
  })

  it('merges the files of KUBECONFIG, skipping missing ones; the first to name an entry or the current context wins', () => {
    const env = { ...noPod, KUBECONFIG: [join(dir, 'missing'), a, b].join(delimiter) }
    expect(loadCluster({ env, home: empty })).toMatchObject({ server: 'https://one:6443', context: 'dev' })
    // `prod` comes from the second file, and its cluster `one` from the first.
    expect(loadCluster({ env, home: empty, context: 'prod' })).toMatchObject({
      server: 'https://one:6443',
      namespace: undefined,
      context: 'prod',
    })
  })

  it('falls back to ~/.kube/config', () => {
    const home = join(dir, 'home')
    mkdirSync(join(home, '.kube'), { recursive: true })
    writeFileSync(
      join(home, '.kube', 'config'),
      config({ cluster: 'h', server: 'https://home:6443', context: 'h', current: 'h' }),
    )
    expect(loadCluster({ env: noPod, home }).server).toBe('https://home:6443')
  })

  it('says what is wrong instead of falling back to localhost:8080', () => {
    const none = file('none', config({ cluster: 'x', server: 'https://x:6443', context: 'x' }))
    const serverless = file(
      'serverless',
      'apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts:\n- name: c\n  context: { cluster: gone, user: u }\ncurrent-context: c\n',
    )
    const broken = file('broken', 'clusters: [')
    expect(problem(() => loadCluster({ kubeconfig: join(dir, 'missing'), env: noPod }))).toBe(
      'file-not-found',
    )
    expect(problem(() => loadCluster({ env: { ...noPod, KUBECONFIG: join(dir, 'missing') } }))).toBe(
      'env-files-not-found',
    )
    expect(problem(() => loadCluster({ env: noPod, home: empty }))).toBe('not-configured')
    expect(problem(() => loadCluster({ kubeconfig: broken, env: noPod }))).toBe('unreadable')
    expect(problem(() => loadCluster({ kubeconfig: none, env: noPod }))).toBe('no-current-context')
    expect(problem(() => loadCluster({ kubeconfig: serverless, env: noPod }))).toBe('no-server')
    const unknown = (() => {
      try {
        loadCluster({ kubeconfig: a, env: noPod, context: 'stage' })
      } catch (error) {
        return error
      }
    })()
    expect(unknown).toMatchObject({ problem: 'unknown-context', context: 'stage', contexts: ['dev'] })
  })

  it('uses the service account in a pod without a kubeconfig, without a kubeconfig object', () => {
    const root = join(dir, 'sa')
    mkdirSync(root, { recursive: true })
    writeFileSync(join(root, 'token'), 'token')
    writeFileSync(join(root, 'ca.crt'), '')
    writeFileSync(join(root, 'namespace'), 'payments')
    const env = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }
    expect(loadCluster({ env, home: empty, root })).toMatchObject({
      server: 'https://10.96.0.1:443',
      namespace: 'payments',
      context: undefined,
      kubeConfig: undefined,
    })
    // A kubeconfig file still wins, as with kubectl.
    expect(loadCluster({ env: { ...env, KUBECONFIG: a }, home: empty, root }).server).toBe('https://one:6443')
  })
})
