import { describe, expect, it } from 'vitest'
import { UsageError } from './errors.ts'
import { execute, fieldValues, parseFieldPath, parseTemplate } from './jsonpath.ts'

const LIST = {
  kind: 'List',
  items: [
    {
      metadata: { name: 'orders', labels: { team: 'shop' } },
      spec: { holderIdentity: 'a', leaseDurationSeconds: 20 },
    },
    { metadata: { name: '注文' }, spec: { leaseDurationSeconds: 60 } },
  ],
}

const run = (template: string, data: unknown = LIST) => execute(parseTemplate(template), data)

describe('kubectl JSONPath templates', () => {
  it.each([
    ['{.items[*].metadata.name}', 'orders 注文'],
    [
      '{range .items[*]}{.metadata.name}{"\\t"}{.spec.leaseDurationSeconds}{"\\n"}{end}',
      'orders\t20\n注文\t60\n',
    ],
    ['{range .items}[{.metadata.name}]{end}', '[orders][注文]'],
    ['names: {.items[0].metadata.name}, {.items[1].metadata.name}', 'names: orders, 注文'],
    ['{.items[?(@.spec.leaseDurationSeconds > 30)].metadata.name}', '注文'],
    ["{.items[0].metadata.labels['team']}", 'shop'],
    ['{.items[0].metadata.labels}', '{"team":"shop"}'],
    ['{.items[*].spec.holderIdentity}', 'a'],
    ['{.kind}{.missing}', 'List'],
    ['{..name}', 'orders 注文'],
    ["{'x'}{@.kind}", 'xList'],
  ])('%s', (template, expected) => {
    expect(run(template)).toBe(expected)
  })

  it.each([
    ['{.items', 'unclosed action: `{` at 1 has no `}`'],
    ['{range .items[*]}{.metadata.name}', '`{range .items[*]}` has no `{end}`'],
    ['{.kind}{end}', '`{end}` without a `{range …}` before it'],
    ['{items}', 'unrecognized identifier `items`: an expression starts with `.`'],
    ['{.items[0}', 'unclosed `[` in `.items[0`'],
    ['{.items]}', 'unbalanced `]` in `.items]`'],
    ['{}', 'empty action `{}`'],
    ['{.items.}', '`.items.` ends with `.`: name a field after it'],
  ])('rejects %s naming the problem', (template, problem) => {
    const parse = () => parseTemplate(template)
    expect(parse).toThrow(UsageError)
    expect(parse).toThrow(`jsonpath template \`${template}\`: ${problem}`)
  })

  it('reports a filter the evaluator cannot read as a usage error', () => {
    expect(() => run('{.items[?(@.x==)]}')).toThrow(UsageError)
  })

  it('takes field paths with or without braces and the leading dot', () => {
    for (const path of ['.metadata.name', '{.metadata.name}', 'metadata.name', ' {.metadata.name} ']) {
      expect(fieldValues(parseFieldPath(path), LIST.items[0])).toEqual(['orders'])
    }
    expect(() => parseFieldPath('')).toThrow('empty JSONPath expression')
    expect(() => parseFieldPath('{.a}{.b}')).toThrow('is not a single JSONPath expression')
  })
})
