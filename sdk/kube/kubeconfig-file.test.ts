import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  isLean,
  leanConnection,
  readKubeConfigFiles,
  select,
  UnreadableKubeConfig,
} from './kubeconfig-file.ts'

const dir = mkdtempSync(join(tmpdir(), 'kube-locks-kubeconfig-file-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function file(path: string, text: string): string {
  const full = join(dir, path)
  mkdirSync(join(full, '..'), { recursive: true })
  writeFileSync(full, text)
  return full
}

const b64 = (text: string) => Buffer.from(text).toString('base64')

describe('kubeconfig files without the generated client', () => {
  it('reads a CA, a client certificate and key inline or from files relative to their kubeconfig', () => {
    file('certs/ca.crt', 'CA FILE')
    file('certs/client.key', 'KEY FILE')
    const path = file(
      'files.yaml',
      `clusters:
- name: c
  cluster: { server: "https://a:6443", certificate-authority: certs/ca.crt, tls-server-name: api.internal }
users:
- name: u
  user: { client-certificate-data: ${b64('CERT DATA')}, client-key: certs/client.key }
contexts:
- name: x
  context: { cluster: c, user: u, namespace: " shop " }
current-context: x
`,
    )
    const config = readKubeConfigFiles([path])
    const selected = select(config, config.currentContext)
    expect(isLean(selected)).toBe(true)
    const connection = leanConnection(selected, 'https://a:6443')
    expect(connection.tls.ca?.toString()).toBe('CA FILE')
    expect(connection.tls.cert?.toString()).toBe('CERT DATA')
    expect(connection.tls.key?.toString()).toBe('KEY FILE')
    expect(connection.tls.servername).toBe('api.internal')
    expect(connection.tls.rejectUnauthorized).toBeUndefined()
    expect(connection.namespace).toBe('shop')
    expect(connection.headers()).toEqual({})
  })

  it('sends a token, a token file (read again as it rotates) or basic auth', () => {
    const tokenFile = file('token', 'first\n')
    const path = file(
      'users.yaml',
      `clusters:
- name: c
  cluster: { server: "https://a:6443", insecure-skip-tls-verify: true }
users:
- { name: token, user: { token: abc } }
- { name: file, user: { tokenFile: token } }
- { name: basic, user: { username: ann, password: "p:w" } }
contexts:
- { name: token, context: { cluster: c, user: token } }
- { name: file, context: { cluster: c, user: file } }
- { name: basic, context: { cluster: c, user: basic } }
`,
    )
    const config = readKubeConfigFiles([path])
    const connect = (context: string) => leanConnection(select(config, context), 'https://a:6443')
    expect(connect('token').headers()).toEqual({ Authorization: 'Bearer abc' })
    expect(connect('token').tls.rejectUnauthorized).toBe(false)
    expect(connect('basic').headers()).toEqual({ Authorization: `Basic ${b64('ann:p:w')}` })
    const fromFile = connect('file')
    expect(fromFile.headers()).toEqual({ Authorization: 'Bearer first' })
    writeFileSync(tokenFile, 'second\n')
    // Within its reuse period the token read last is sent; a new connection reads the file again.
    expect(fromFile.headers()).toEqual({ Authorization: 'Bearer first' })
    expect(connect('file').headers()).toEqual({ Authorization: 'Bearer second' })
  })

  it('leaves exec plugins, auth providers, proxies and impersonation to the generated client', () => {
    const path = file(
      'plugins.yaml',
      `clusters:
- { name: plain, cluster: { server: "https://a:6443" } }
- { name: proxied, cluster: { server: "https://a:6443", proxy-url: "http://proxy:3128" } }
users:
- { name: exec, user: { exec: { apiVersion: client.authentication.k8s.io/v1, command: aws } } }
- { name: provider, user: { auth-provider: { name: oidc } } }
- { name: as, user: { token: t, as: admin } }
- { name: token, user: { token: t } }
contexts:
- { name: exec, context: { cluster: plain, user: exec } }
- { name: provider, context: { cluster: plain, user: provider } }
- { name: as, context: { cluster: plain, user: as } }
- { name: proxied, context: { cluster: proxied, user: token } }
- { name: plain, context: { cluster: plain, user: token } }
`,
    )
    const config = readKubeConfigFiles([path])
    const lean = (context: string) => isLean(select(config, context))
    expect(['exec', 'provider', 'as', 'proxied', 'plain'].map(lean)).toEqual([
      false,
      false,
      false,
      false,
      true,
    ])
  })

  it('merges files as kubectl does: the first to name an entry or a current context wins', () => {
    const first = file(
      'first.yaml',
      `clusters: [{ name: c, cluster: { server: "https://first" } }]
contexts: [{ name: a, context: { cluster: c } }]
`,
    )
    const second = file(
      'second.yaml',
      `clusters: [{ name: c, cluster: { server: "https://second" } }, { name: d, cluster: { server: "https://d" } }]
contexts: [{ name: a, context: { cluster: d } }, { name: b, context: { cluster: c } }]
current-context: b
`,
    )
    const config = readKubeConfigFiles([first, second])
    expect(config.currentContext).toBe('b')
    expect(select(config, 'b').cluster?.entry.server).toBe('https://first')
    expect(select(config, 'a').cluster?.entry.server).toBe('https://first')
    expect(config.clusters.map((c) => c.name)).toEqual(['c', 'd'])
  })

  it('names the file that is not a kubeconfig', () => {
    const broken = file('broken.yaml', 'clusters: [')
    const list = file('list.yaml', '- a\n- b\n')
    const noName = file('noname.yaml', 'users: [{ user: { token: t } }]\n')
    for (const path of [broken, list, noName]) {
      const error = (() => {
        try {
          readKubeConfigFiles([path])
        } catch (caught) {
          return caught
        }
      })()
      expect(error).toBeInstanceOf(UnreadableKubeConfig)
      expect((error as UnreadableKubeConfig).path).toBe(path)
    }
  })
})
