import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { ServerProcess } from './process.ts'

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

function logFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'server-process-'))
  dirs.push(dir)
  return join(dir, 'server.log')
}

async function waitUntil(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

describe('ServerProcess', () => {
  it('logs what the server writes on stdout and stderr, and stops it with SIGKILL after the grace', async () => {
    const file = logFile()
    const server = new ServerProcess(
      'stubborn',
      process.execPath,
      [
        '-e',
        "process.on('SIGTERM', () => console.log('term ignored')); console.log('out'); console.error('err'); setInterval(() => {}, 1000)",
      ],
      file,
    )
    server.start()
    expect(server.running).toBe(true)
    expect(server.pid).toBeGreaterThan(0)
    expect(() => server.start()).toThrow('stubborn is already running')
    await waitUntil(() => server.logTail().includes('err') && server.logTail().includes('out'))
    await server.stop(300)
    expect(server.running).toBe(false)
    expect(readFileSync(file, 'utf8')).toContain('term ignored')
  })

  it('appends to its log when started again, and is killed at once by kill()', async () => {
    const file = logFile()
    const server = new ServerProcess(
      'again',
      process.execPath,
      ['-e', "console.log('started'); setInterval(() => {}, 1000)"],
      file,
    )
    server.start()
    await waitUntil(() => server.logTail().includes('started'))
    await server.kill()
    expect(server.running).toBe(false)
    server.start()
    await waitUntil(
      () =>
        server
          .logTail()
          .split('\n')
          .filter((line) => line === 'started').length === 2,
    )
    await server.stop()
    expect(server.running).toBe(false)
    await server.stop()
  })
})
