/**
 * The published package works for a consumer: `npm pack` builds it, a fresh project installs
 * the tarball, imports `kube-locks` and runs the three commands it ships.
 */
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const run = promisify(execFile)
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
// npm scripts run on the project's pinned Node; the consumer's commands must too.
const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}` }

let work: string
let consumer: string

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'kube-locks-pack-'))
  await run('npm', ['pack', '--silent', '--pack-destination', work], { cwd: ROOT, env })
  const tarball = (await readdir(work)).find((file) => file.endsWith('.tgz'))
  if (!tarball) throw new Error(`npm pack wrote no tarball into ${work}`)
  consumer = join(work, 'consumer')
  await mkdir(consumer)
  await writeFile(
    join(consumer, 'package.json'),
    JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
  )
  await run('npm', ['install', '--no-audit', '--no-fund', '--silent', join(work, tarball)], {
    cwd: consumer,
    env,
  })
}, 300_000)

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true })
})

describe('the npm package', () => {
  it('is imported as kube-locks, with its type declarations', async () => {
    const script =
      "import('kube-locks').then((m) => console.log(typeof m.createLocks, typeof m.LockTimeoutError))"
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
      cwd: consumer,
      env,
    })
    expect(stdout.trim()).toBe('function function')
    const declarations = await readdir(join(consumer, 'node_modules/kube-locks/dist/sdk'))
    expect(declarations).toContain('index.d.ts')
    expect(declarations.some((file) => file.endsWith('.test.js'))).toBe(false)
  })

  it.each(['locks', 'kubectl-locks', 'kube-locks-controller'])('installs the %s command', async (bin) => {
    const { stdout } = await run(join(consumer, 'node_modules/.bin', bin), ['--help'], { cwd: consumer, env })
    expect(stdout).toMatch(/Usage:/)
  })
})
