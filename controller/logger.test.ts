import { describe, expect, it } from 'vitest'
import { createJsonLogger } from './logger.ts'

function capture(level: Parameters<typeof createJsonLogger>[0] = 'debug') {
  const lines: string[] = []
  const logger = createJsonLogger(level, (line) => lines.push(line))
  const records = () => lines.map((line) => JSON.parse(line) as Record<string, unknown>)
  return { logger, lines, records }
}

describe('createJsonLogger', () => {
  it('writes one JSON object per line with time, level by name, msg and the fields', () => {
    const { logger, lines, records } = capture()
    logger.info('lock freed', { lock: 'orders', namespace: 'shop', holder: 'pod-1', resourceVersion: '42' })
    expect(lines).toHaveLength(1)
    expect(lines[0]?.endsWith('}\n')).toBe(true)
    const [record] = records()
    expect(record).toEqual({
      time: expect.any(String),
      level: 'info',
      msg: 'lock freed',
      lock: 'orders',
      namespace: 'shop',
      holder: 'pod-1',
      resourceVersion: '42',
    })
    expect(new Date(record?.time as string).toISOString()).toBe(record?.time)
  })

  it('logs at the threshold and above only', () => {
    const { logger, records } = capture('warn')
    logger.debug('d')
    logger.info('i')
    logger.warn('w')
    logger.error('e')
    expect(records().map((record) => [record.level, record.msg])).toEqual([
      ['warn', 'w'],
      ['error', 'e'],
    ])
  })

  it('leaves out undefined fields and writes bigints, nested too, as decimal strings', () => {
    const { logger, records } = capture()
    logger.info('counted', { missing: undefined, big: 2n ** 64n, nested: { list: [1n, 'a'] } })
    const [record] = records()
    expect(record).not.toHaveProperty('missing')
    expect(record?.big).toBe('18446744073709551616')
    expect(record?.nested).toEqual({ list: ['1', 'a'] })
  })

  it('keeps an error’s name, message, code, stack and cause chain, in any field', () => {
    const { logger, records } = capture()
    const root = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })
    const error = new TypeError('cannot list leases', { cause: root })
    logger.error('controller failed', { error, also: { inner: root } })
    const [record] = records()
    expect(record?.error).toEqual({
      name: 'TypeError',
      message: 'cannot list leases',
      stack: expect.stringContaining('cannot list leases'),
      cause: {
        name: 'Error',
        message: 'connect ECONNREFUSED',
        code: 'ECONNREFUSED',
        stack: expect.stringContaining('logger.test.ts'),
      },
    })
    expect(record?.also).toMatchObject({ inner: { code: 'ECONNREFUSED' } })
  })

  it('stops at a cause that refers back to an error already written', () => {
    const { logger, records } = capture()
    const a = new Error('a')
    const b = new Error('b', { cause: a })
    Object.defineProperty(a, 'cause', { value: b })
    logger.warn('loop', { error: a })
    const error = records()[0]?.error as { cause: { message: string; cause?: unknown } }
    expect(error.cause.message).toBe('b')
    expect(error.cause.cause).toBeUndefined()
  })

  it('gives child loggers their bindings on every line, before the line’s own fields', () => {
    const { logger, lines, records } = capture()
    const child = logger.child({ namespace: 'shop', revision: 7n })
    child.info('reconciled', { lock: 'orders' })
    child.child({ worker: 2 }).debug('picked')
    logger.info('parent')
    expect(records()).toEqual([
      {
        time: expect.any(String),
        level: 'info',
        namespace: 'shop',
        revision: '7',
        lock: 'orders',
        msg: 'reconciled',
      },
      {
        time: expect.any(String),
        level: 'debug',
        namespace: 'shop',
        revision: '7',
        worker: 2,
        msg: 'picked',
      },
      { time: expect.any(String), level: 'info', msg: 'parent' },
    ])
    expect(lines[0]?.indexOf('"namespace"')).toBeLessThan(lines[0]?.indexOf('"lock"') ?? -1)
  })
})
