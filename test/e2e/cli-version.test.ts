/** `locks version` and `locks --version` against the real API server. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { locks } from './cli-helpers.ts'
import { adminKubeConfig, apiRequest } from './support.ts'

const PACKAGE = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string
}
const dir = mkdtempSync(join(tmpdir(), 'cli-version-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

async function serverGitVersion(): Promise<string> {
  const response = await apiRequest('GET', '/version', undefined, adminKubeConfig())
  expect(response.status).toBe(200)
  return (response.body as { gitVersion: string }).gitVersion
}

describe('locks version', () => {
  it('prints the client version and the server version of the cluster', async () => {
    const gitVersion = await serverGitVersion()
    const result = await locks(['version'])
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(result.stdout).toBe(`Client Version: v${PACKAGE.version}\nServer Version: ${gitVersion}\n`)
  })

  it('prints clientVersion and serverVersion objects with -o json', async () => {
    const gitVersion = await serverGitVersion()
    const result = await locks(['version', '-o', 'json'])
    expect(result.code).toBe(0)
    const json = JSON.parse(result.stdout)
    expect(json.clientVersion.gitVersion).toBe(`v${PACKAGE.version}`)
    expect(json.serverVersion.gitVersion).toBe(gitVersion)
    expect(json.serverVersion.major).toMatch(/^\d+$/)
  })

  it('prints the client version, then an error, and exits 1 when the cluster cannot be reached', async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const address = probe.address()
        probe.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
      })
    })
    const kubeconfig = join(dir, 'down')
    writeFileSync(
      kubeconfig,
      `apiVersion: v1
kind: Config
clusters: [{ name: c, cluster: { server: "https://127.0.0.1:${port}", insecure-skip-tls-verify: true } }]
users: [{ name: u, user: { token: t } }]
contexts: [{ name: down, context: { cluster: c, user: u } }]
current-context: down
`,
    )
    const result = await locks(['version'], { kubeconfig })
    expect(result.code).toBe(1)
    expect(result.stdout).toBe(`Client Version: v${PACKAGE.version}\n`)
    expect(result.stderr).toMatch(
      /^error: cannot reach the Kubernetes API server at https:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/,
    )
  })

  it('--version prints the client version alone', async () => {
    const result = await locks(['--version'])
    expect(result).toMatchObject({ code: 0, stdout: `Client Version: v${PACKAGE.version}\n`, stderr: '' })
  })
})
