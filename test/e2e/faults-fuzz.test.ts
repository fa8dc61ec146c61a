import { spawn } from 'node:child_process'
import { EventEmitter } from 'node:events'
import { KubeConfig } from '@kubernetes/client-node'
import fc from 'fast-check'
import { afterEach, describe, expect, it, onTestFailed } from 'vitest'
import { runCli } from '../../cli/program.ts'
import {
  createKubernetesLeaseStore,
  createLocks,
  type LeaseStore,
  LOCK_NAME_ANNOTATION,
  LockError,
  type Locks,
  leaseNameFor,
  MAX_LOCK_NAME_BYTES,
} from '../../sdk/internal.ts'
import { recordSummary, scaled } from '../faults/coordinator.ts'
import { deriveSeed, faultsSeed } from '../faults/random.ts'
import { adminKubeConfig, createNamespace, kubeconfigPath } from './support.ts'

// Names and options, valid and not, through the public API and the CLI. Every call ends
// in a lock or a LockError with a message (never another exception); a call refused for its input
// creates no lease; and a non-empty name with valid options always works.

// fast-check prints its seed and path on failure; both runs derive theirs from FAULTS_SEED.
const seed = faultsSeed()

let locks: Locks | undefined
let store: LeaseStore | undefined

function printSeed(): void {
  onTestFailed(() => console.error(`fuzz seed: FAULTS_SEED=${seed} replays it`))
}

afterEach(async () => {
  await locks?.close()
  await store?.close?.()
  locks = undefined
  store = undefined
})

/** A value of an option and whether the SDK must accept it. */
type Choice = readonly [value: unknown, valid: boolean]

const choice = (valid: fc.Arbitrary<unknown>, invalid: fc.Arbitrary<unknown>): fc.Arbitrary<Choice> =>
  fc.oneof(
    { weight: 9, arbitrary: valid.map((v) => [v, true] as const) },
    { weight: 1, arbitrary: invalid.map((v) => [v, false] as const) },
  )

const notANumber = fc.constantFrom(Number.NaN, '5', null, {}, true, [1], -1)

const nameChoice = choice(
  fc.oneof(
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 120 }),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 60 }),
    fc.constantFrom('a', 'UPPER', '.', '-', '..', 'x'.repeat(300), 'a/b\\c', '\u0000', '💥', ' '),
  ),
  fc.constantFrom('', 42, null, {}, ['a'], 'x'.repeat(MAX_LOCK_NAME_BYTES + 1)),
)

const optionsChoice = fc.record({
  // Valid expiries start at 5 s: this fuzzes validation, and a sub-second lock may really be lost
  // before its acquiring write is answered on a loaded machine.
  expires: choice(
    fc.oneof(fc.constant(undefined), fc.double({ min: 5, max: 1e6, noNaN: true })),
    fc.oneof(notANumber, fc.constantFrom(0, Infinity, 2 ** 31, -0.5)),
  ),
  timeout: choice(
    fc.oneof(fc.constant(undefined), fc.constantFrom(0, 0.5, 5, Infinity)),
    fc.oneof(notANumber, fc.constant(-Infinity)),
  ),
  renew: choice(fc.constantFrom(undefined, true, false), fc.constantFrom('yes', 1, 0, 'false')),
  safetyMargin: choice(fc.constantFrom(undefined, 0, 0.1), fc.oneof(notANumber, fc.constant(2 ** 31))),
})

type Options = { [K in 'expires' | 'timeout' | 'renew' | 'safetyMargin']: Choice }

function build(options: Options): { value: Record<string, unknown>; valid: boolean } {
  const value: Record<string, unknown> = {}
  let valid = true
  for (const [key, [v, ok]] of Object.entries(options)) {
    if (v !== undefined) value[key] = v
    valid &&= ok
  }
  return { value, valid }
}

function leaseName(name: unknown): string | undefined {
  if (typeof name !== 'string' || name === '') return undefined
  try {
    return leaseNameFor(name)
  } catch {
    return undefined
  }
}

describe('faults: bad input', () => {
  it('fuzzed names and options through acquire() and withLock()', async () => {
    printSeed()
    const ns = await createNamespace('faults-fuzz')
    const config = new KubeConfig()
    config.loadFromFile(kubeconfigPath())
    const client = createLocks({ kubeConfig: config, namespace: ns, requestTimeout: 10 })
    locks = client
    const leases = createKubernetesLeaseStore(adminKubeConfig())
    store = leases
    const taken = new Set<string>()
    let calls = 0
    let refused = 0
    await fc.assert(
      fc.asyncProperty(nameChoice, optionsChoice, fc.boolean(), async ([name, nameOk], options, scoped) => {
        calls++
        const { value, valid } = build(options)
        const call = scoped
          ? client.withLock(
              name as string,
              value,
              async (signal, lock) => lock.fencingToken + String(signal.aborted),
            )
          : client.acquire(name as string, value).then(async (lock) => {
              await lock.release()
              return lock.fencingToken
            })
        const outcome = await call.then(
          (token) => ({ ok: true as const, token }),
          (error: unknown) => ({ ok: false as const, error }),
        )
        if (outcome.ok) {
          expect(nameOk && valid, `accepted ${JSON.stringify([name, value])}`).toBe(true)
          taken.add(name as string)
          return
        }
        const error = outcome.error
        expect(error, `not a LockError: ${String(error)}`).toBeInstanceOf(LockError)
        const lockError = error as LockError
        expect(lockError.message.length).toBeGreaterThan(10)
        // A non-empty name with valid options must work: any string is a lock name.
        expect(nameOk && valid, `refused ${JSON.stringify([name, value])}: ${lockError.message}`).toBe(false)
        expect(lockError.code).toBe('INVALID_OPTIONS')
        refused++
        const lease = leaseName(name)
        if (lease !== undefined && !taken.has(name as string)) {
          expect(
            await leases.get(ns, lease),
            `lease created for refused ${JSON.stringify(name)}`,
          ).toBeUndefined()
        }
      }),
      { numRuns: scaled(60, 600), seed: deriveSeed(seed, 'sdk') },
    )
    // Nothing else appeared: every lease belongs to an accepted call.
    const list = await leases.list(ns)
    for (const lease of list.items)
      expect(taken.has(lease.annotations[LOCK_NAME_ANNOTATION] ?? '')).toBe(true)
    recordSummary({ test: 'fuzz: SDK', calls, refused, acquisitions: calls - refused, violations: 0, seed })
  }, 300_000)

  it('fuzzed names and options through the CLI: usage errors, no crash, no lease', async () => {
    printSeed()
    const ns = await createNamespace('faults-fuzz-cli')
    const leases = createKubernetesLeaseStore(adminKubeConfig())
    store = leases
    const taken = new Set<string>()
    let calls = 0
    let accepted = 0
    const cli = async (argv: string[]) => {
      let stdout = ''
      let stderr = ''
      const code = await runCli(argv, {
        stdout: (text) => {
          stdout += text
        },
        stderr: (text) => {
          stderr += text
        },
        env: {},
        home: undefined,
        now: () => Date.now(),
        signal: new AbortController().signal,
        signals: new EventEmitter() as unknown as Pick<NodeJS.Process, 'on' | 'off'>,
      })
      return { code, stdout, stderr }
    }
    // Each value with whether the CLI must accept it: decimal seconds (`--expires` above 0, long enough
    // for a lock on a loaded machine; `--timeout` from 0, or `inf`).
    const junk = fc.oneof(
      fc.constantFrom('-1', 'NaN', '', 'abc', '1e400', '0x10', '-0', '1e3', 'Infinity', '+2'),
      fc
        .double({ noNaN: false })
        .map(String)
        .filter((text) => !/^[0-9]+(\.[0-9]+)?$/.test(text.trim())),
    )
    const decimal = (min: number, max: number) =>
      fc.double({ min, max, noNaN: true }).map((value) => String(Number(value.toFixed(3))))
    const expiresChoice = choice(
      fc.oneof(decimal(5, 1e5), fc.constantFrom('5', '20', ' 30 ', '600')),
      fc.oneof(junk, fc.constant('0')),
    )
    // `--timeout` also takes `inf` or `infinity`, in any case (see cli/duration.ts). A positive
    // timeout must leave room for one read on a loaded machine to be sure of success (`0` always
    // gets a full request), so the values that must succeed are 0 or at least 1 s.
    const timeoutChoice = choice(
      fc.oneof(decimal(1, 30), fc.constantFrom('0', '2.5', 'inf', 'INF', 'Infinity')),
      junk.filter((text) => !/^(inf|infinity)$/i.test(text.trim())),
    )
    const nameChoice = fc.oneof(
      {
        weight: 9,
        arbitrary: fc
          .string({ unit: 'grapheme', minLength: 1, maxLength: 80 })
          .filter((text) => !text.startsWith('-'))
          .map((text) => [text, true] as const),
      },
      { weight: 1, arbitrary: fc.constant(['', false] as const) },
    )
    await fc.assert(
      fc.asyncProperty(
        nameChoice,
        expiresChoice,
        timeoutChoice,
        async ([name, nameOk], [expires, expiresOk], [timeout, timeoutOk]) => {
          calls++
          const argv = [
            'run',
            name,
            '--kubeconfig',
            kubeconfigPath(),
            '-n',
            ns,
            '--expires',
            String(expires),
            '--timeout',
            String(timeout),
            '--',
            'true',
          ]
          const result = await cli(argv)
          expect([0, 1, 2, 75], `${JSON.stringify(argv)} → ${result.code}\n${result.stderr}`).toContain(
            result.code,
          )
          expect(result.stderr).not.toMatch(/\n\s+at /)
          // Recorded before judging the input: a call that succeeded made the lease, whatever else fails.
          if (result.code === 0) taken.add(name)
          // Valid input must work: any non-empty name, valid seconds.
          const valid = nameOk && expiresOk && timeoutOk
          expect(
            result.code === 0,
            `${valid ? 'refused valid' : 'accepted invalid'} ${JSON.stringify(argv)} → ${result.code}\n${result.stderr}`,
          ).toBe(valid)
          if (valid) accepted++
          if (result.code === 0) return
          expect(result.stderr.trim().length).toBeGreaterThan(0)
          const lease = leaseName(name)
          if (result.code === 2 && lease !== undefined && !taken.has(name)) {
            expect(await leases.get(ns, lease)).toBeUndefined()
          }
        },
      ),
      { numRuns: scaled(40, 300), seed: deriveSeed(seed, 'cli') },
    )
    // Most generated inputs are valid: the property above did require them to succeed.
    expect(accepted).toBeGreaterThan(calls / 3)
    // One real process: a bad option is a usage error with a message, not a stack trace.
    const child = spawn(process.execPath, ['cli/main.ts', 'run', 'x', '--expires', '-5', '--', 'true'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, KUBECONFIG: kubeconfigPath() },
    })
    let stderr = ''
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk
    })
    const code = await new Promise<number | null>((resolve) =>
      child.once('exit', (exitCode) => resolve(exitCode)),
    )
    expect(code).toBe(2)
    expect(stderr).toMatch(/--expires/)
    expect(stderr).not.toMatch(/\n\s+at /)
    expect(await leases.get('default', leaseNameFor('x'))).toBeUndefined()
    recordSummary({ test: 'fuzz: CLI', calls, accepted, violations: 0, seed })
  }, 300_000)
})
