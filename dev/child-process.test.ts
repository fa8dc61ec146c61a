import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { type Exit, runToCompletion, startChild } from './child-process.ts'

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

describe('Child', () => {
  it('resolves closed once all of its output has been read', async () => {
    const child = startChild('talker', process.execPath, node("process.stdout.write('a'.repeat(200000))"))
    let stdout = ''
    child.process.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk
    })
    expect(await child.closed).toEqual({ code: 0, signal: null })
    expect(stdout.length).toBe(200_000)
  })

  it('with killOnExit, does not outlive the process that started it', async () => {
    // A parent that starts a long-lived child with killOnExit and exits without stopping it.
    const script = [
      `const { startChild } = await import(${JSON.stringify(new URL('./child-process.ts', import.meta.url).href)})`,
      "const child = startChild('sleeper', process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { killOnExit: true })",
      'console.log(child.pid)',
      'setTimeout(() => process.exit(0), 200)',
    ].join('\n')
    const parent = startChild('parent', process.execPath, ['--input-type=module', '-e', script])
    let stdout = ''
    parent.process.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk
    })
    expect(await parent.closed).toEqual({ code: 0, signal: null })
    const pid = Number(stdout.trim())
    expect(pid).toBeGreaterThan(0)
    await waitUntil(() => !runs(pid))
  })

  it.runIf(existsSync('/proc/self/task'))(
    'has stopped every thread when pause() resolves, and runs them again when resume() does',
    async () => {
      // Worker threads that never yield: each is a kernel thread that the stop must reach.
      const script = [
        "const { Worker } = require('node:worker_threads')",
        "for (let i = 0; i < 3; i++) new Worker('for (;;) {}', { eval: true })",
        "console.log('ready')",
        'setInterval(() => {}, 1000)',
      ].join('\n')
      const child = startChild('spinner', process.execPath, node(script))
      try {
        await new Promise((resolve) => child.process.stdout?.once('data', resolve))
        const pid = child.pid as number
        await child.pause()
        expect(threadStates(pid).length).toBeGreaterThan(3)
        expect(new Set(threadStates(pid))).toEqual(new Set(['T']))
        await child.resume()
        expect(threadStates(pid)).not.toContain('T')
      } finally {
        await child.stop('SIGKILL')
      }
    },
  )
})

describe('runToCompletion', () => {
  it('resolves with stdout, trimmed, and hands over each stderr line', async () => {
    const lines: string[] = []
    const stdout = await runToCompletion(
      process.execPath,
      node("process.stderr.write('one\\ntw'); process.stderr.write('o\\nthree'); console.log('  result  ')"),
      { onStderrLine: (line) => lines.push(line) },
    )
    expect(stdout).toBe('result')
    expect(lines).toEqual(['one', 'two', 'three'])
  })

  it('rejects a non-zero exit with the last lines of stderr', async () => {
    const run = runToCompletion(
      process.execPath,
      node("for (let i = 1; i <= 5; i++) console.error('line ' + i); process.exit(4)"),
      { stderrLines: 2 },
    )
    await expect(run).rejects.toThrow(/exited with 4:\nline 4\nline 5$/)
  })

  it('rejects a command that is not installed with the spawn error as cause', async () => {
    const error = await runToCompletion('kube-locks-no-such-command', []).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(Error)
    expect(((error as Error).cause as NodeJS.ErrnoException).code).toBe('ENOENT')
  })
})

/** Whether a process runs: one that is gone or a zombie does not. */
function runs(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

async function waitUntil(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** The scheduler state of each thread of `pid` (`R` running, `S` sleeping, `T` stopped, …). */
function threadStates(pid: number): string[] {
  return readdirSync(`/proc/${pid}/task`).map(
    (tid) => readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').replace(/^.*\) /s, '')[0] as string,
  )
}
