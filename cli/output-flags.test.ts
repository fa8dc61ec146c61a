import { describe, expect, it } from 'vitest'
import { UsageError } from './errors.ts'
import { OUTPUT_FORMATS } from './flags.ts'
import { parseCustomColumns, parseOutput } from './output-flags.ts'

describe('-o', () => {
  it('takes the fixed formats and the templates', () => {
    expect(parseOutput('wide', OUTPUT_FORMATS)).toBe('wide')
    expect(parseOutput('jsonpath={.items[*].metadata.name}', OUTPUT_FORMATS)).toEqual({
      kind: 'jsonpath',
      template: '{.items[*].metadata.name}',
    })
    expect(
      parseOutput('custom-columns=NAME:.metadata.name,HOLDER:.spec.holderIdentity', OUTPUT_FORMATS),
    ).toEqual({
      kind: 'custom-columns',
      columns: [
        { header: 'NAME', path: '.metadata.name' },
        { header: 'HOLDER', path: '.spec.holderIdentity' },
      ],
    })
  })

  it('says what is wrong with a format, a template or a spec', () => {
    expect(() => parseOutput('jsonpath', OUTPUT_FORMATS)).toThrow('-o jsonpath: template missing')
    expect(() => parseOutput('jsonpath=', OUTPUT_FORMATS)).toThrow(UsageError)
    expect(() => parseOutput('custom-columns=', OUTPUT_FORMATS)).toThrow(
      '-o custom-columns: no columns given',
    )
    expect(() => parseOutput('custom-columns=NAME', OUTPUT_FORMATS)).toThrow(
      '-o custom-columns: unexpected column `NAME`: expected <header>:<json-path>',
    )
    expect(() => parseOutput('xml', OUTPUT_FORMATS)).toThrow(
      '-o: unknown output format `xml`: choose table, wide, json, yaml, name, jsonpath=…, custom-columns=…',
    )
  })

  it('keeps commas inside brackets in a column path', () => {
    expect(parseCustomColumns('FIRST:.items[0,1].metadata.name,N:.metadata.name')).toEqual([
      { header: 'FIRST', path: '.items[0,1].metadata.name' },
      { header: 'N', path: '.metadata.name' },
    ])
  })
})
