import { describe, expect, it } from 'vitest'
import { humanDuration, parseDuration, parseSeconds } from './duration.ts'

const s = 1000
const m = 60 * s
const h = 60 * m
const d = 24 * h

describe('humanDuration', () => {
  it.each([
    [-5 * s, '<invalid>'],
    [-2 * s, '<invalid>'],
    [-1999, '0s'],
    [-1 * s, '0s'],
    [-0.5 * s, '0s'],
    [0, '0s'],
    [999, '0s'],
    [59 * s, '59s'],
    [119 * s, '119s'],
    [2 * m, '2m'],
    [3 * m + 20 * s, '3m20s'],
    [9 * m + 59 * s, '9m59s'],
    [10 * m + 30 * s, '10m'],
    [179 * m, '179m'],
    [3 * h, '3h'],
    [3 * h + 5 * m, '3h5m'],
    [8 * h + 5 * m, '8h'],
    [47 * h, '47h'],
    [2 * d + 3 * h, '2d3h'],
    [7 * d, '7d'],
    [8 * d + 3 * h, '8d'],
    [729 * d, '729d'],
    [2 * 365 * d + 10 * d, '2y10d'],
    [9 * 365 * d, '9y'],
  ])('%d ms is %s', (ms, text) => {
    expect(humanDuration(ms)).toBe(text)
  })
})

describe('parseSeconds', () => {
  it('accepts whole and fractional seconds', () => {
    expect(parseSeconds('30', { min: 0 })).toBe(30)
    expect(parseSeconds('0.5', { min: 0 })).toBe(0.5)
    expect(parseSeconds('0', { min: 0 })).toBe(0)
  })

  it('accepts inf only where allowed', () => {
    expect(parseSeconds('inf', { min: 0, allowInfinity: true })).toBe(Number.POSITIVE_INFINITY)
    expect(parseSeconds('inf', { min: 0 })).toMatch(/got `inf`/)
  })

  it.each(['', '-1', 'abc', '1e3', '10s', '0x10'])('refuses %j with a message', (text) => {
    expect(parseSeconds(text, { min: 0 })).toBe(`expected a number of seconds >= 0, got \`${text}\``)
  })

  it('refuses zero where the value must be positive', () => {
    expect(parseSeconds('0', { min: 0, positive: true })).toBe('expected a number of seconds > 0, got `0`')
  })
})

describe('parseDuration, as kubectl takes --request-timeout', () => {
  it.each([
    ['0', 0],
    ['30', 30],
    ['0.2', 0.2],
    ['30s', 30],
    ['1m', 60],
    ['1h', 3600],
    ['1h2m3s', 3723],
    ['1m30s', 90],
    ['1.5m', 90],
    ['500ms', 0.5],
    ['0s', 0],
  ])('%s is %d s', (text, seconds) => {
    expect(parseDuration(text)).toBe(seconds)
  })

  it.each(['', 's', '30x', '-1', '1h 2m', 'soon', '30S', '1m30'])('refuses `%s`', (text) => {
    expect(parseDuration(text)).toMatch(/^expected a duration such as/)
  })
})
