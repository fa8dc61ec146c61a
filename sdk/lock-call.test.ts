import { describe, expect, it } from 'vitest'
import { InvalidLockOptionsError } from './errors.ts'
import { parseAcquireArgs, parseWithLockArgs } from './lock-call.ts'

const fn = () => 1
const options = { timeout: 0 }

describe('parseAcquireArgs', () => {
  it.each([
    ['acquire()', [], undefined, undefined],
    ['acquire(name)', ['orders'], 'orders', undefined],
    ['acquire(undefined)', [undefined], undefined, undefined],
    ['acquire(options)', [options], undefined, options],
    ['acquire(name, options)', ['orders', options], 'orders', options],
    ['acquire(name, undefined)', ['orders', undefined], 'orders', undefined],
    ['acquire(undefined, options)', [undefined, options], undefined, options],
    // The name's own rules (non-empty, well-formed) are checked where the lock is taken.
    ["acquire('')", [''], '', undefined],
  ])('%s', (_form, args, name, parsedOptions) => {
    const call = parseAcquireArgs(args)
    expect(call).toEqual({ name, options: parsedOptions, fn: undefined })
    if (parsedOptions !== undefined) expect(call.options).toBe(parsedOptions)
  })

  it.each([
    ['a number for the name', [42], 'acquire(number)', '`42` (number)'],
    ['null', [null], 'acquire(null)', '`null`'],
    ['an array for the options', ['orders', ['x']], 'acquire(string, array)', 'an array'],
    ['options before the name', [options, 'orders'], 'acquire(object, string)', 'an object (Object)'],
    ['a string for the options', ['orders', 'fast'], 'acquire(string, string)', '`fast` (string)'],
    ['a function', [fn], 'acquire(function)', 'a function'],
    ['three arguments', ['orders', options, 3], 'acquire(string, object, number)', '`3` (number)'],
  ])('rejects %s, naming the call and the accepted forms', (_what, args, call, given) => {
    let error: unknown
    try {
      parseAcquireArgs(args)
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(InvalidLockOptionsError)
    const message = (error as Error).message
    expect(message).toContain('acquire(), acquire(name), acquire(options) or acquire(name, options)')
    expect(message).toContain(`called as ${call}, got ${given}`)
    expect((error as InvalidLockOptionsError).option).toBe('arguments')
  })
})

describe('parseWithLockArgs', () => {
  it.each([
    ['withLock(fn)', [fn], undefined, undefined],
    ['withLock(name, fn)', ['orders', fn], 'orders', undefined],
    ['withLock(undefined, fn)', [undefined, fn], undefined, undefined],
    ['withLock(options, fn)', [options, fn], undefined, options],
    ['withLock(name, options, fn)', ['orders', options, fn], 'orders', options],
    ['withLock(name, undefined, fn)', ['orders', undefined, fn], 'orders', undefined],
    ['withLock(undefined, options, fn)', [undefined, options, fn], undefined, options],
  ])('%s', (_form, args, name, parsedOptions) => {
    const call = parseWithLockArgs(args)
    expect(call).toEqual({ name, options: parsedOptions, fn })
    expect(call.fn).toBe(fn)
  })

  it.each([
    ['no arguments', [], 'withLock()', '`undefined`'],
    ['a name without a function', ['orders'], 'withLock(string)', '`orders` (string)'],
    ['the function first', [fn, 'orders'], 'withLock(function, string)', '`orders` (string)'],
    ['options without a function', ['orders', options], 'withLock(string, object)', 'an object (Object)'],
    ['a number for the name', [7, fn], 'withLock(number, function)', '`7` (number)'],
    ['null for the name', [null, fn], 'withLock(null, function)', '`null`'],
    [
      'a string for the options',
      ['orders', 'fast', fn],
      'withLock(string, string, function)',
      '`fast` (string)',
    ],
    [
      'options before the name',
      [options, 'orders', fn],
      'withLock(object, string, function)',
      'an object (Object)',
    ],
    [
      'four arguments',
      ['orders', options, 3, fn],
      'withLock(string, object, number, function)',
      '`3` (number)',
    ],
  ])('rejects %s, naming the call and the accepted forms', (_what, args, call, given) => {
    expect(() => parseWithLockArgs(args)).toThrow(InvalidLockOptionsError)
    expect(() => parseWithLockArgs(args)).toThrow(
      'withLock(fn), withLock(name, fn), withLock(options, fn) or withLock(name, options, fn)',
    )
    expect(() => parseWithLockArgs(args)).toThrow(`called as ${call}, got ${given}`)
  })
})
