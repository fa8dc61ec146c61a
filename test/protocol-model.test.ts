/**
 * Checks the Promela model of the lock protocol (model/lease-lock.pml) exhaustively with SPIN: the
 * correct model must pass every assertion with a complete search, and each mutation — the model with
 * one of the rules the safety argument rests on taken away — must yield a counterexample. A model that
 * cannot fail would prove nothing.
 */
import { execFile } from 'node:child_process'
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const run = promisify(execFile)
const MODEL = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'model', 'lease-lock.pml')
const MINUTE = 60_000

/** The bounds every run shares (see docs/safety.md, "What the protocol model covers"). */
const BOUNDS = ['-DLEASE=3', '-DRETAIN=0']

interface Verdict {
  readonly errors: number
  readonly states: number
  readonly seconds: number
  readonly depthTooSmall: boolean
  readonly violated: string | undefined
  readonly output: string
}

async function tool(name: string): Promise<void> {
  try {
    await run('sh', ['-c', `command -v ${name}`])
  } catch {
    throw new Error(
      `\`${name}\` is not installed: the protocol model needs SPIN and a C compiler (\`apt-get install spin gcc\`)`,
    )
  }
}

let work: string

beforeAll(async () => {
  await tool('spin')
  await tool('cc')
  work = mkdtempSync(join(tmpdir(), 'kube-locks-model-'))
})

afterAll(() => {
  if (work !== undefined) rmSync(work, { recursive: true, force: true })
})

/**
 * Generates the verifier for `defines`, compiles it and runs it: a depth-first search of every
 * reachable state, with collapse compression and no bitstate hashing (so a pass is exhaustive).
 */
async function check(
  name: string,
  defines: readonly string[],
  options: { optimise: boolean },
): Promise<Verdict> {
  const dir = join(work, name)
  await run('mkdir', ['-p', dir])
  copyFileSync(MODEL, join(dir, 'lease-lock.pml'))
  await run('spin', [...BOUNDS, ...defines, '-a', 'lease-lock.pml'], { cwd: dir, timeout: MINUTE })
  // A mutation's search stops at its first counterexample: compiling the verifier without optimisation
  // is then faster than the search it would speed up.
  const flags = options.optimise ? ['-O2', '-DCOLLAPSE'] : ['-O0', '-DCOLLAPSE']
  await run('cc', [...flags, '-w', '-DSAFETY', '-o', 'pan', 'pan.c'], { cwd: dir, timeout: 2 * MINUTE })
  // pan exits non-zero when it finds an error; its verdict is in the output either way.
  const { stdout, stderr } = await run('./pan', ['-m2000000', '-w24', '-c1'], {
    cwd: dir,
    timeout: 3 * MINUTE,
    maxBuffer: 64 * 1024 * 1024,
  }).catch((error: { stdout?: string; stderr?: string }) => ({
    stdout: error.stdout ?? '',
    stderr: error.stderr ?? '',
  }))
  const output = `${stdout}\n${stderr}`
  const errors = /errors:\s*(\d+)/.exec(output)
  if (errors === null) throw new Error(`pan printed no verdict for ${name}:\n${output}`)
  return {
    errors: Number(errors[1]),
    states: Number(/([\d.e+]+) states, stored/.exec(output)?.[1] ?? Number.NaN),
    seconds: Number(/elapsed time ([\d.e+]+) seconds/.exec(output)?.[1] ?? Number.NaN),
    depthTooSmall: output.includes('max search depth too small'),
    violated: /assertion violated (.*)/.exec(output)?.[1]?.trim(),
    output,
  }
}

describe('protocol model', () => {
  it(
    'the correct model satisfies P1–P3 in every reachable state',
    async () => {
      const verdict = await check('correct', ['-DNREN=1', '-DRVMAX=6', '-DCONTROLLER=0'], {
        optimise: true,
      })
      expect(verdict.depthTooSmall, verdict.output).toBe(false)
      expect(verdict.errors, verdict.output).toBe(0)
      console.info(`protocol model: ${verdict.states} states, ${verdict.seconds} s`)
    },
    4 * MINUTE,
  )

  const mutations: readonly (readonly [string, string, readonly string[]])[] = [
    ['MUTATION_NO_MARGIN', 'no safety margin', []],
    ['MUTATION_RENEWTIME', "expiry judged from the writer's renewTime", ['-DCONTROLLER=0']],
    ['MUTATION_DEADLINE_ANSWER', 'the deadline counted from the answer', []],
    ['MUTATION_PENDING_LATEST', 'the latest pending send time instead of the earliest', []],
    ['MUTATION_READBACK_NOW', 'a read-back counted from the read', []],
    ['MUTATION_RV_PER_OBJECT', 'resourceVersion restarting with each lease', []],
    ['MUTATION_CONTROLLER_BLIND', 'the controller writing without preconditions', []],
    ['MUTATION_SKEW', 'clocks drifting beyond margin + grace', []],
    ['WITH_FORCE', '`locks release --force` on a valid holder', ['-DCONTROLLER=0']],
  ]
  for (const [define, what, extra] of mutations) {
    it(
      `${define} (${what}) has a counterexample`,
      async () => {
        const verdict = await check(define, [`-D${define}`, '-DNREN=1', '-DRVMAX=6', ...extra], {
          optimise: false,
        })
        expect(verdict.errors, verdict.output).toBeGreaterThan(0)
        console.info(`${define}: ${verdict.violated ?? 'error'} after ${verdict.states} states`)
      },
      4 * MINUTE,
    )
  }
})
