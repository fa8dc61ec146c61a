import { once } from 'node:events'
import { PassThrough } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { type JsonRecord, parseRecord, readJsonLines, readLines } from './json-lines.ts'

describe('readJsonLines', () => {
  it('hands over objects split across chunks, other lines apart, and a last line without a newline', async () => {
    const input = new PassThrough()
    const records: JsonRecord[] = []
    const other: string[] = []
    const lines = readJsonLines(
      input,
      (record) => records.push(record),
      (line) => other.push(line),
    )
    input.write('{"msg":"a",')
    input.write('"n":1}\r\nplain text\n[1,2]\n{"msg":')
    input.write('"b"}\n{broken\n\n{"msg":"c"}')
    input.end()
    await once(lines, 'close')
    expect(records).toEqual([{ msg: 'a', n: 1 }, { msg: 'b' }, { msg: 'c' }])
    expect(other).toEqual(['plain text', '[1,2]', '{broken', ''])
  })
})

describe('readLines', () => {
  it('hands over every line, split across chunks, without its line break', async () => {
    const input = new PassThrough()
    const seen: string[] = []
    const lines = readLines(input, (line) => seen.push(line))
    input.write('go: downloading ')
    input.write('a\r\n{"not":"parsed"}\n\nlast')
    input.end()
    await once(lines, 'close')
    expect(seen).toEqual(['go: downloading a', '{"not":"parsed"}', '', 'last'])
  })
})

describe('parseRecord', () => {
  it.each([
    ['{"a":1}', { a: 1 }],
    ['  {"a":1}', { a: 1 }],
    ['null', undefined],
    ['"{"', undefined],
    ['{"a":', undefined],
  ])('%s', (line, expected) => {
    expect(parseRecord(line)).toEqual(expected)
  })
})
