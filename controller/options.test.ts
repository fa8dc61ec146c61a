import { describe, expect, it } from 'vitest'
import { DEFAULTS, parseNamespaces, parseSeconds, resolveControllerOptions } from './options.ts'

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
