import { describe, expect, it } from 'vitest'
import { InvalidLockOptionsError } from './errors.ts'
import type { Environment } from './options.ts'
import {
  DEFAULTS,
  nearestName,
  rejectUnknownKeys,
  resolveAcquireOptions,
  resolveLocksOptions,
} from './options.ts'

const env = (vars: Record<string, string> = {}, kubeConfigNamespace?: string): Environment => ({
  env: vars,
  hostname: 'host-1',
  kubeConfigNamespace,
})

describe('resolveLocksOptions', () => {
  it('defaults from the downward API, then the kubeconfig, then `default`', () => {
    const fromPod = resolveLocksOptions(
      {},
      env({ POD_NAME: 'web-1', POD_NAMESPACE: 'shop', NODE_NAME: 'n1' }, 'from-kubeconfig'),
    )
    expect(fromPod).toMatchObject({ namespace: 'shop', identity: 'web-1', pod: 'web-1', node: 'n1' })
    expect(resolveLocksOptions({}, env({}, 'from-kubeconfig'))).toMatchObject({
      namespace: 'from-kubeconfig',
      identity: 'host-1',
      pod: undefined,
      node: undefined,
    })
    expect(resolveLocksOptions(undefined, env()).namespace).toBe('default')
  })

  it('lets explicit options win over the environment', () => {
    const resolved = resolveLocksOptions(
      { namespace: 'explicit', identity: 'me', pod: 'p', node: 'n' },
      env({ POD_NAME: 'web-1', POD_NAMESPACE: 'shop', NODE_NAME: 'n1' }),
    )
    expect(resolved).toMatchObject({ namespace: 'explicit', identity: 'me', pod: 'p', node: 'n' })
  })

  it('converts seconds to milliseconds over frozen defaults', () => {
    expect(Object.isFrozen(DEFAULTS)).toBe(true)
    const resolved = resolveLocksOptions({ requestTimeout: 2.5 }, env())
    expect(resolved).toMatchObject({
      requestTimeoutMs: 2500,
      expiryGraceMs: DEFAULTS.expiryGrace * 1000,
      retryIntervalMs: DEFAULTS.retryInterval * 1000,
    })
    expect(Object.isFrozen(resolved)).toBe(true)
  })

  it('does not touch the caller object', () => {
    const options = Object.freeze({ service: 'svc' })
    expect(resolveLocksOptions(options, env()).service).toBe('svc')
  })

  it.each([
    [
      { namespace: 'Shop' },
      'Expected `namespace` to be a DNS-1123 label (lowercase, at most 63 characters), got `Shop` (string)',
    ],
    [{ service: '' }, 'Expected `service` to be a non-empty string, got `` (string)'],
    [
      { requestTimeout: 0 },
      'Expected `requestTimeout` to be a finite number of seconds >= 0.001 and <= 3600, got `0` (number)',
    ],
    [
      { expiryGrace: -1 },
      'Expected `expiryGrace` to be a finite number of seconds >= 0 and <= 3600, got `-1` (number)',
    ],
    [
      { clock: {} },
      'Expected `clock` to be an object with now() and wallNow() methods, got an object (Object)',
    ],
    [{ identity: 5 }, 'Expected `identity` to be a string, got `5` (number)'],
  ])('rejects %j with a message saying what was expected', (options, message) => {
    expect(() => resolveLocksOptions(options as never, env())).toThrow(InvalidLockOptionsError)
    expect(() => resolveLocksOptions(options as never, env())).toThrow(message)
  })
})

describe('resolveAcquireOptions', () => {
  it('defaults like the seed design: expires 20 s, timeout 10 s, no renewal', () => {
    expect(resolveAcquireOptions(undefined)).toEqual({
      expires: 20,
      timeout: 10,
      fair: true,
      renew: false,
      safetyMargin: 2,
      signal: undefined,
    })
  })

  it('makes the safety margin 10 % of expires, at most 2 s', () => {
    expect(resolveAcquireOptions({ expires: 5 }).safetyMargin).toBe(0.5)
    expect(resolveAcquireOptions({ expires: 180 }).safetyMargin).toBe(2)
  })

  it('accepts fractions, timeout 0 and Infinity', () => {
    expect(resolveAcquireOptions({ expires: 0.5, timeout: 0 })).toMatchObject({ expires: 0.5, timeout: 0 })
    expect(resolveAcquireOptions({ timeout: Number.POSITIVE_INFINITY }).timeout).toBe(
      Number.POSITIVE_INFINITY,
    )
  })

  it.each([
    [
      { expires: 0 },
      'Expected `expires` to be a finite number of seconds >= 0.001 and <= 2147483647, got `0` (number)',
    ],
    [{ expires: Number.NaN }, 'got `NaN` (number)'],
    [
      { expires: '20' },
      'Expected `expires` to be a finite number of seconds >= 0.001 and <= 2147483647, got `20` (string)',
    ],
    [{ timeout: -1 }, 'Expected `timeout` to be a number (or Infinity) of seconds >= 0, got `-1` (number)'],
    [
      { expires: 10, safetyMargin: 10 },
      'Expected `safetyMargin` to be a number of seconds below `expires` (10), got `10` (number)',
    ],
    [{ signal: {} }, 'Expected `signal` to be an AbortSignal, got an object (Object)'],
  ])('rejects %j', (options, message) => {
    expect(() => resolveAcquireOptions(options as never)).toThrow(message)
  })
})

describe('rejectUnknownKeys', () => {
  it('names the unknown key, the nearest accepted one and all accepted ones', () => {
    expect(() => rejectUnknownKeys({ namspaces: [] }, ['namespaces', 'grace'], 'test')).toThrow(
      'unknown option `namspaces` of test; did you mean `namespaces`? (accepted: namespaces, grace)',
    )
  })

  it('suggests nothing for a key that is no near miss, and ignores undefined values', () => {
    expect(() => rejectUnknownKeys({ colour: 'red' }, ['namespaces'], 'test')).toThrow(
      /unknown option `colour` of test \(accepted: namespaces\)/,
    )
    expect(() => rejectUnknownKeys({ other: undefined }, ['namespaces'], 'test')).not.toThrow()
  })

  it('finds near misses by edit distance', () => {
    expect(nearestName('expire', ['expires', 'timeout'])).toBe('expires')
    expect(nearestName('retension', ['retention', 'grace'])).toBe('retention')
    expect(nearestName('zzz', ['expires', 'timeout'])).toBeUndefined()
  })
})
