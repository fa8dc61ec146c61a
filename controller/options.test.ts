import { spawn } from 'node:child_process'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { InvalidLockOptionsError } from '../sdk/internal.ts'
import {
  CONTROLLER_OPTION_KEYS,
  checkEnvironment,
  DEFAULTS,
  parseNamespaces,
  parseSeconds,
  resolveControllerOptions,
} from './options.ts'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')

describe('controller options', () => {
  it('applies the documented defaults', () => {
    const resolved = resolveControllerOptions()
    expect(resolved).toMatchObject({ namespaces: [], retentionMs: 300_000, graceMs: 2_000, workers: 8 })
    expect(DEFAULTS).toMatchObject({ retention: 300, grace: 2, listen: ':8080', logLevel: 'info' })
  })

  it('never mutates the caller’s options', () => {
    const options = Object.freeze({ namespaces: Object.freeze(['a', 'a', 'b']) })
    expect(resolveControllerOptions(options).namespaces).toEqual(['a', 'b'])
  })

  it.each([
    [{ retention: -1 }, 'Expected `retention` to be a finite number of seconds >= 0, got `-1` (number)'],
    [{ grace: Number.NaN }, 'Expected `grace` to be a finite number of seconds >= 0, got `NaN` (number)'],
    [{ workers: 0 }, 'Expected `workers` to be an integer from 1 to 1000, got `0` (number)'],
    [{ namespaces: ['Shop'] }, 'Expected `namespaces` to be a list of DNS-1123 labels'],
  ])('rejects %o', (options, message) => {
    expect(() => resolveControllerOptions(options)).toThrow(message)
  })

  it('parses flag values', () => {
    expect(parseSeconds('--grace', '0.5')).toBe(0.5)
    expect(() => parseSeconds('--grace', '')).toThrow('`--grace`')
    expect(() => parseSeconds('--retention', '5m')).toThrow('finite number of seconds')
    expect(parseNamespaces('')).toEqual([])
    expect(parseNamespaces(' shop, billing ,')).toEqual(['shop', 'billing'])
    expect(() => parseNamespaces('shop,Billing')).toThrow('DNS-1123')
  })
})

describe('unknown option keys', () => {
  it('rejects a misspelt key with InvalidLockOptionsError, naming it, the nearest name and the accepted ones', () => {
    const options = { retension: 600 } as unknown as Parameters<typeof resolveControllerOptions>[0]
    const error = (() => {
      try {
        resolveControllerOptions(options)
      } catch (e) {
        return e
      }
    })()
    expect(error).toBeInstanceOf(InvalidLockOptionsError)
    expect((error as InvalidLockOptionsError).option).toBe('retension')
    expect((error as Error).message).toBe(
      'Expected `retension` to be absent: unknown option `retension` of the controller options; did you ' +
        'mean `retention`? (accepted: namespaces, retention, grace, workers, requestTimeout, clock), got ' +
        '`600` (number)',
    )
  })

  it('suggests nothing for a key that is not close to any accepted name', () => {
    expect(() => resolveControllerOptions({ verbose: true } as never)).toThrow(
      /^Expected `verbose` to be absent: unknown option `verbose` of the controller options \(accepted: /,
    )
  })

  it('accepts every documented key, and keys set to undefined', () => {
    expect(CONTROLLER_OPTION_KEYS).toEqual([
      'namespaces',
      'retention',
      'grace',
      'workers',
      'requestTimeout',
      'clock',
    ])
    expect(() =>
      resolveControllerOptions({
        namespaces: [],
        retention: 1,
        grace: 1,
        workers: 1,
        requestTimeout: 1,
        clock: undefined,
        ...({ typo: undefined } as object),
      }),
    ).not.toThrow()
  })
})

describe('environment variables', () => {
  const accepted = ['KUBE_LOCKS_NAMESPACES', 'KUBE_LOCKS_RETENTION', 'KUBE_LOCKS_GRACE']

  it('rejects a KUBE_LOCKS_ variable that is a near miss of an accepted one', () => {
    const { errors, warnings } = checkEnvironment(
      { KUBE_LOCKS_RETENSION: '600', KUBE_LOCKS_NAMESPACE: 'shop', KUBE_LOCKS_GRACE: '1', PATH: '/bin' },
      accepted,
    )
    expect(errors).toEqual([
      'unknown environment variable KUBE_LOCKS_RETENSION; did you mean KUBE_LOCKS_RETENTION? ' +
        '(accepted: KUBE_LOCKS_NAMESPACES, KUBE_LOCKS_RETENTION, KUBE_LOCKS_GRACE)',
      'unknown environment variable KUBE_LOCKS_NAMESPACE; did you mean KUBE_LOCKS_NAMESPACES? ' +
        '(accepted: KUBE_LOCKS_NAMESPACES, KUBE_LOCKS_RETENTION, KUBE_LOCKS_GRACE)',
    ])
    expect(warnings).toEqual([])
  })

  it('only warns about other KUBE_LOCKS_ variables: they may be meant for other kube-locks programs', () => {
    const { errors, warnings } = checkEnvironment(
      { KUBE_LOCKS_CACHE_DIR: '/tmp', KUBE_LOCKS_FENCING_TOKEN: '5', KUBE_LOCKSMITH: 'x' },
      accepted,
    )
    expect(errors).toEqual([])
    expect(warnings).toEqual(['KUBE_LOCKS_CACHE_DIR', 'KUBE_LOCKS_FENCING_TOKEN'])
  })
})

describe('the command line', () => {
  function run(args: readonly string[], env: Record<string, string> = {}) {
    const child = spawn(process.execPath, ['controller/main.ts', ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', KUBECONFIG: '/nonexistent/kubeconfig', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk
    })
    child.stdout.resume()
    // A controller that got past its checks would run until stopped: bound it.
    const deadline = setTimeout(() => child.kill('SIGKILL'), 15_000)
    return new Promise<{ code: number | null; stderr: string }>((done) => {
      child.once('exit', (code) => {
        clearTimeout(deadline)
        done({ code, stderr })
      })
    })
  }

  it('rejects an unknown flag as a usage error, suggesting the nearest one', async () => {
    const { code, stderr } = await run(['--retension', '600'])
    expect(code).toBe(1)
    expect(stderr).toContain("error: unknown option '--retension'")
    expect(stderr).toContain('Did you mean --retention?')
  }, 20_000)

  it('rejects a misspelt KUBE_LOCKS_ variable before doing anything', async () => {
    const { code, stderr } = await run([], { KUBE_LOCKS_RETENSION: '600' })
    expect(code).toBe(1)
    expect(stderr).toContain(
      'error: unknown environment variable KUBE_LOCKS_RETENSION; did you mean KUBE_LOCKS_RETENTION?',
    )
  }, 20_000)
})
