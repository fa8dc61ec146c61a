/**
 * Checks the Promela models of the protocol exhaustively with SPIN: model/lease-lock.pml (one lock's
 * lease), model/fair-queue.pml (the line of a fair lock) and model/shared-lock.pml (semaphores and
 * shared locks beside exclusive holders). Each correct model must pass every
 * assertion with a complete search, and each mutation — the model with one of the rules the argument
 * rests on taken away — must yield a counterexample. A model that cannot fail would prove nothing.
 *
 * At most two verifiers run at a time (this is meant for a 2-core machine beside the other unit tests).
 */
import { execFile } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const run = promisify(execFile)
const MODELS = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'model')
const MINUTE = 60_000
const PARALLEL = 2
/** Per test, including the wait for a free slot. */
const TIMEOUT = 10 * MINUTE

/** The bounds every run of the lease model shares (see docs/safety.md, "What the protocol model covers"). */
const LEASE_BOUNDS = ['-DLEASE=3', '-DRETAIN=0']

type Model = 'lease-lock.pml' | 'fair-queue.pml' | 'shared-lock.pml'

interface Verdict {
  readonly errors: number
  readonly states: number
  readonly seconds: number
  /** The search was cut short (depth limit or memory): a pass would not be exhaustive. */
  readonly incomplete: boolean
  readonly violated: string | undefined
  readonly output: string
}

interface CheckOptions {
  /** A complete search is worth an optimised verifier; a search that stops at its first error is not. */
  readonly optimise: boolean
  /** Compile for acceptance cycles and search with weak fairness (`pan -a -f`) instead of safety. */
  readonly liveness?: boolean
  /** Store states compressed (`-DCOLLAPSE`): less memory, slower. */
  readonly collapse?: boolean
}

async function tool(name: string): Promise<void> {
  try {
    await run('sh', ['-c', `command -v ${name}`])
  } catch {
    throw new Error(
      `\`${name}\` is not installed: the protocol models need SPIN and a C compiler (\`apt-get install spin gcc\`)`,
    )
  }
}

/** Runs `task` once fewer than `PARALLEL` others are running. */
const slots: (() => void)[] = []
let running = 0
async function inSlot<T>(task: () => Promise<T>): Promise<T> {
  if (running >= PARALLEL) await new Promise<void>((wake) => slots.push(wake))
  running++
  try {
    return await task()
  } finally {
    running--
    slots.shift()?.()
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
 * Generates the verifier of `model` for `defines`, compiles it and runs it: a depth-first search of
 * every reachable state, with no bitstate hashing (so a pass is exhaustive).
 */
function check(
  name: string,
  model: Model,
  defines: readonly string[],
  options: CheckOptions,
): Promise<Verdict> {
  return inSlot(async () => {
    const dir = join(work, name)
    mkdirSync(dir, { recursive: true })
    copyFileSync(join(MODELS, model), join(dir, model))
    await run('spin', [...defines, '-a', model], { cwd: dir, timeout: MINUTE })
    const flags = [
      options.optimise ? '-O2' : '-O0',
      options.liveness ? '-DNOREDUCE' : '-DSAFETY',
      ...(options.collapse ? ['-DCOLLAPSE'] : []),
    ]
    await run('cc', [...flags, '-w', '-o', 'pan', 'pan.c'], { cwd: dir, timeout: 2 * MINUTE })
    const search = options.liveness ? ['-a', '-f'] : []
    // pan exits non-zero when it finds an error; its verdict is in the output either way.
    const { stdout, stderr } = await run('./pan', ['-m2000000', '-w24', '-c1', ...search], {
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
      incomplete: /max search depth too small|out of memory|search not completed/i.test(output),
      violated: /(assertion violated .*|acceptance cycle.*|invalid end state.*)/.exec(output)?.[1]?.trim(),
      output,
    }
  })
}

async function holds(
  name: string,
  model: Model,
  defines: readonly string[],
  options?: Partial<CheckOptions>,
) {
  const verdict = await check(name, model, defines, { optimise: true, ...options })
  expect(verdict.incomplete, verdict.output).toBe(false)
  expect(verdict.errors, verdict.output).toBe(0)
  console.info(`${name}: ${verdict.states} states, complete, ${verdict.seconds} s`)
}

async function fails(
  name: string,
  model: Model,
  defines: readonly string[],
  options?: Partial<CheckOptions>,
) {
  const verdict = await check(name, model, defines, { optimise: false, ...options })
  expect(verdict.errors, verdict.output).toBeGreaterThan(0)
  console.info(`${name}: ${verdict.violated ?? 'error'} after ${verdict.states} states`)
}

type Case = readonly [define: string, what: string, extra: readonly string[]]

describe.concurrent('lease model', () => {
  const bounds = [...LEASE_BOUNDS, '-DNREN=1', '-DRVMAX=6']
  it(
    'the correct model satisfies P1–P3 in every reachable state (2 clients)',
    () => holds('lease-correct', 'lease-lock.pml', [...bounds, '-DCONTROLLER=0'], { collapse: true }),
    TIMEOUT,
  )
  // Two clients with the controller are beyond the budget (more than 15 million states): the
  // controller is checked against one client that acquires twice, across delete and re-create.
  it(
    'the correct model with the controller satisfies P1–P3 (1 client, 2 acquisitions)',
    () => holds('lease-controller', 'lease-lock.pml', [...bounds, '-DNC=1', '-DNACQ=2'], { collapse: true }),
    TIMEOUT,
  )
  // Three clients with clock skew are beyond the budget too: here their clocks agree (SKEW 0).
  it(
    'the correct model satisfies P1–P3 with 3 clients (clocks in step)',
    () =>
      holds('lease-3-clients', 'lease-lock.pml', [...bounds, '-DCONTROLLER=0', '-DNC=3', '-DSKEW=0'], {
        collapse: true,
      }),
    TIMEOUT,
  )
  it(
    'P4: a lock whose holder died is acquired by the waiter (weak fairness)',
    () =>
      holds('lease-liveness', 'lease-lock.pml', [...bounds, '-DCONTROLLER=0', '-DLIVENESS'], {
        liveness: true,
      }),
    TIMEOUT,
  )
  it(
    'P4 fails when an unchanged lease restarts its observation with every read',
    () =>
      fails(
        'lease-liveness-MUTATION_OBSERVE_RESET',
        'lease-lock.pml',
        [...bounds, '-DCONTROLLER=0', '-DLIVENESS', '-DMUTATION_OBSERVE_RESET'],
        { liveness: true },
      ),
    TIMEOUT,
  )

  // MUTATION_NO_UID is not among them: within the model it cannot fail (see the model's header).
  const mutations: readonly Case[] = [
    ['MUTATION_NO_MARGIN', 'no safety margin', []],
    ['MUTATION_RENEWTIME', "expiry judged from the writer's renewTime", ['-DCONTROLLER=0']],
    ['MUTATION_DEADLINE_ANSWER', 'the deadline counted from the answer', []],
    ['MUTATION_PENDING_LATEST', 'the latest pending send time instead of the earliest', []],
    ['MUTATION_READBACK_NOW', 'a read-back counted from the read', []],
    ['MUTATION_RV_PER_OBJECT', 'resourceVersion restarting with each lease', []],
    ['MUTATION_CONTROLLER_BLIND', 'the controller writing without preconditions', []],
    ['MUTATION_SKEW', 'clocks drifting beyond margin + grace', []],
    ['WITH_FORCE', '`locks release --force` on a valid holder', ['-DCONTROLLER=0', '-DNLATE=0']],
  ]
  for (const [define, what, extra] of mutations) {
    it(
      `${define} (${what}) has a counterexample`,
      () =>
        fails(`lease-${define}`, 'lease-lock.pml', [...bounds, `-D${define}`, ...extra], { collapse: true }),
      TIMEOUT,
    )
  }
})

describe.concurrent('fair queue model', () => {
  it(
    'the correct model satisfies Q1 (exclusion) and Q2 (order) in every reachable state',
    () => holds('queue-correct', 'fair-queue.pml', ['-DNJOIN=1']),
    TIMEOUT,
  )
  it(
    'the correct model keeps order when waiters rejoin at the back',
    () => holds('queue-rejoin', 'fair-queue.pml', ['-DNJOIN=2', '-DNREN=0']),
    TIMEOUT,
  )

  const mutations: readonly Case[] = [
    ['MUTATION_NOT_HEAD', 'a waiter takes the lock whoever is ahead of it', []],
    ['MUTATION_RENEW_LATE', 'a waiter past its deadline renews in place instead of rejoining', []],
    ['MUTATION_WALL_CLOCK', "tickets judged dead from renewTime on the reader's wall clock", []],
    ['MUTATION_NO_CAS', 'the first in line writes the lock without compare-and-swap', []],
    ['MUTATION_STALE_JUDGE', 'a ticket passed as dead on an observation no read confirmed', []],
    ['MUTATION_ANSWER_LATE', 'a renewal answered after the deadline restores the place', []],
    ['MUTATION_FRESH_ONLY_PASSING', 'a view showing nobody ahead decides however old it is', []],
  ]
  for (const [define, what, extra] of mutations) {
    it(
      `${define} (${what}) has a counterexample`,
      () => fails(`queue-${define}`, 'fair-queue.pml', ['-DNJOIN=1', `-D${define}`, ...extra]),
      TIMEOUT,
    )
  }
})

describe.concurrent('shared-lock model', () => {
  const model: Model = 'shared-lock.pml'
  // Semaphore-only runs leave the controller out: it only deletes a free L, which matters to writers.
  const semaphore = ['-DNWR=0', '-DLIMIT=1', '-DNRD=2', '-DGC=0']
  // Small searches: a verifier compiled without optimisation is done before an optimised one is built.
  const quick = { optimise: false }
  it(
    'S2, S3 hold for shared holders: a writer acquiring twice, a reader, the controller',
    () => holds('shared-writer-twice', model, ['-DNACQ=2'], quick),
    TIMEOUT,
  )
  // With a second record after a back-off as well, two writers take more than 8 million states.
  it(
    'S2, S3 hold for shared holders with two writers (one record)',
    () => holds('shared-two-writers', model, ['-DNWR=2', '-DNANN=1']),
    TIMEOUT,
  )
  // Three clients with renewals of the records are beyond the budget: here the readers do not renew.
  it(
    'S2, S3 hold for shared holders with two readers (no renewals)',
    () => holds('shared-two-readers', model, ['-DNRD=2', '-DNREN=0']),
    TIMEOUT,
  )
  it(
    'S2, S3 hold when the controller also frees leases and deletes records it judged expired',
    () => holds('shared-controller-frees', model, ['-DGC_FREE=1']),
    TIMEOUT,
  )
  it(
    'S1 holds for a semaphore of 1 with two waiters',
    () => holds('shared-semaphore-1', model, semaphore),
    TIMEOUT,
  )
  it(
    'S1 holds for a semaphore of 2 with three waiters (one record each, no renewals)',
    () =>
      holds(
        'shared-semaphore-2',
        model,
        ['-DNWR=0', '-DNRD=3', '-DLIMIT=2', '-DGC=0', '-DNANN=1', '-DNREN=0'],
        quick,
      ),
    TIMEOUT,
  )
  it(
    'S1–S3 hold for a semaphore of 1 with a writer (one record each, no renewals)',
    () => holds('shared-semaphore-writer', model, ['-DNRD=2', '-DLIMIT=1', '-DNANN=1', '-DNREN=0'], quick),
    TIMEOUT,
  )
  it(
    'S4: without pauses past a deadline, writers and shared holders never deadlock',
    () => holds('shared-untimed', model, ['-DUNTIMED', '-DNWR=2', '-DNRD=2'], quick),
    TIMEOUT,
  )
  it(
    'S4: without pauses past a deadline, a writer and semaphore waiters never deadlock',
    () => holds('shared-untimed-semaphore', model, ['-DUNTIMED', '-DNRD=2', '-DLIMIT=1'], quick),
    TIMEOUT,
  )

  const mutations: readonly Case[] = [
    ['MUTATION_CHECK_FIRST', 'a reader checks L before it creates its record', []],
    ['MUTATION_NO_DRAIN_ON_CREATE', 'a writer whose write was a create does not drain', []],
    ['MUTATION_CREATE_UNMARKED', 'a writer creates L without the marker (M1)', ['-DNACQ=2']],
    ['MUTATION_DROP_UNDRAINED', 'a writer that gives up while draining drops the marker (M3)', ['-DNACQ=2']],
    ['MUTATION_TOKEN_RECORD_ONLY', "a reader's token from its record alone", ['-DNACQ=2']],
    ['MUTATION_DEADLINE_FROM_CHECK', 'a deadline counted from the passing check', semaphore],
    ['MUTATION_COUNT_HOLDERS', 'the count skips waiters ahead', semaphore],
    ['MUTATION_WAITER_REVIVES', 'a waiter renews past its deadline and keeps its place (M2)', semaphore],
    ['MUTATION_NO_BACKOFF', 'a reader that finds L held keeps its record and waits', ['-DUNTIMED']],
    ['MUTATION_SKEW', 'clocks drifting beyond margin + grace', semaphore],
  ]
  for (const [define, what, extra] of mutations) {
    it(
      `${define} (${what}) has a counterexample`,
      () => fails(`shared-${define}`, model, [`-D${define}`, ...extra]),
      TIMEOUT,
    )
  }
})
