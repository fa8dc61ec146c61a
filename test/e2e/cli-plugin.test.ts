/** The CLI as a kubectl plugin: `kubectl locks …` finds `kubectl-locks` on PATH and passes everything on. */
import { execFile } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { createNamespace, kubeconfigPath } from './support.ts'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const bin = mkdtempSync(join(tmpdir(), 'kubectl-plugins-'))
afterAll(() => rmSync(bin, { recursive: true, force: true }))

function kubectlPlugin(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  // What `npm install -g` links: an executable named kubectl-locks that runs the CLI.
  const plugin = join(bin, 'kubectl-locks')
  writeFileSync(plugin, `#!/bin/sh\nexec "${process.execPath}" "${join(ROOT, 'cli', 'main.ts')}" "$@"\n`)
  chmodSync(plugin, 0o755)
  const env = { PATH: `${bin}:${process.env.PATH}`, KUBECONFIG: kubeconfigPath(), HOME: '/nonexistent' }
  return new Promise((resolve) => {
    execFile(inject('kubectlPath'), [...args], { env }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr })
    })
  })
}

describe('kubectl locks', () => {
  it('runs the CLI with its arguments, reading KUBECONFIG like kubectl', async () => {
    const namespace = await createNamespace('cli-plugin')
    const result = await kubectlPlugin([
      'locks',
      'run',
      'via-kubectl',
      '-n',
      namespace,
      '--',
      'sh',
      '-c',
      'exit 4',
    ])
    expect(result.code).toBe(4)
    const list = await kubectlPlugin(['locks', 'list', '-n', namespace, '-o', 'name'])
    expect(list).toMatchObject({ code: 0, stdout: 'lease.coordination.k8s.io/via-kubectl\n', stderr: '' })
  })
})
