import { describe, expect, it } from 'vitest'
import { DEFAULTS, RECLAIM_DEFAULTS, MAX_LIMIT as SDK_MAX_LIMIT } from '../sdk/internal.ts'
import { GC_DEFAULTS, MAX_LIMIT, RUN_DEFAULTS } from './flags.ts'
import { type CliContext, runCli } from './program.ts'

// Help shows the SDK's defaults from flags.ts, which loads without the SDK: they must be the SDK's.

async function help(command: string): Promise<string> {
  let stdout = ''
  const ctx: CliContext = {
    stdout: (text) => {
      stdout += text
    },
    stderr: () => {},
    env: {},
    home: undefined,
    now: () => Date.now(),
    signal: new AbortController().signal,
    signals: process,
  }
  await runCli([command, '--help'], ctx)
  // Commander wraps descriptions to the terminal's width.
  return stdout.replace(/\s+/g, ' ')
}

describe('the defaults help shows', () => {
  it("are the controller's reclaim defaults of the SDK", () => {
    expect(GC_DEFAULTS).toEqual(RECLAIM_DEFAULTS)
  })

  it("are the SDK's expires and timeout", () => {
    expect(RUN_DEFAULTS).toEqual({ expires: DEFAULTS.expires, timeout: DEFAULTS.timeout })
  })

  it("are the SDK's largest limit", () => {
    expect(MAX_LIMIT).toBe(SDK_MAX_LIMIT)
  })

  it.each([
    ['run', '--limit <n>', `from 1 to ${SDK_MAX_LIMIT}`],
    ['run', '--expires <seconds>', `(default: ${DEFAULTS.expires})`],
    ['run', '--timeout <seconds>', `(default: ${DEFAULTS.timeout})`],
    ['gc', '--reclaim-grace <seconds>', `(default: ${RECLAIM_DEFAULTS.grace})`],
    ['gc', '--retention <seconds>', `(default: ${RECLAIM_DEFAULTS.retention})`],
    ['release', '--expiry-grace <seconds>', `(default: ${RECLAIM_DEFAULTS.grace},`],
  ])('in %s %s', async (command, flag, shown) => {
    const text = await help(command)
    const start = text.indexOf(flag)
    expect(start).toBeGreaterThanOrEqual(0)
    const description = text.slice(start, text.indexOf(' --', start + flag.length))
    expect(description).toContain(shown)
  })
})
