import { describe, expect, it } from 'vitest'
import { type Exit, startChild } from './child-process.ts'

const node = (script: string) => ['-e', script]

describe('startChild', () => {
  it('reports the exit, keeps the tail of stderr and calls onExit before exited resolves', async () => {
    const seen: Exit[] = []
    const child = startChild(
      'writer',
      process.execPath,
      node("process.stderr.write('x'.repeat(50) + 'end'); process.exit(3)"),
      {
        stderrLimit: 10,
        onExit: (exit) => seen.push(exit),
      },
    )
    expect(child.alive).toBe(true)
    const exit = await child.exited
    expect(exit).toEqual({ code: 3, signal: null })
    expect(seen).toEqual([exit])
    expect(child.alive).toBe(false)
    expect(child.exit).toEqual(exit)
    // The stream may close after the exit event: wait for it with a deadline.
    await waitUntil(() => child.stderr.endsWith('end'))
    expect(child.stderr).toBe('xxxxxxxend')
  })

  it('stops with SIGKILL a process that ignores the first signal', async () => {
    const child = startChild(
      'stubborn',
      process.execPath,
      node("process.on('SIGTERM', () => {}); console.log('ready'); setInterval(() => {}, 1000)"),
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    await new Promise((resolve) => child.process.stdout?.once('data', resolve))
    expect(await child.stop('SIGTERM', 200)).toEqual({ code: null, signal: 'SIGKILL' })
    expect(await child.stop()).toEqual({ code: null, signal: 'SIGKILL' })
  })
})

async function waitUntil(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
