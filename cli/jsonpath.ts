import { JSONPath } from 'jsonpath-plus'
import { UsageError } from './errors.ts'

// kubectl's JSONPath templates (`-o jsonpath=…`, `-o custom-columns=…`, `--sort-by`): text with
// `{…}` actions — an expression such as `{.items[*].metadata.name}`, a string literal `{"\n"}`, or
// `{range .items[*]}…{end}`. The template language is kubectl's; each expression is evaluated by
// jsonpath-plus, with its filters (`[?(@.spec.leaseDurationSeconds > 20)]`) in its safe evaluator.

type Node =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'expression'; readonly path: string; readonly source: string }
  | { readonly kind: 'range'; readonly path: string; readonly source: string; readonly body: readonly Node[] }

export interface Template {
  readonly source: string
  readonly nodes: readonly Node[]
}

function templateError(template: string, problem: string): UsageError {
  return new UsageError(`jsonpath template \`${template}\`: ${problem}`)
}

/** The end of the action that starts at `start` (a `{`), skipping quoted strings and brackets. */
function actionEnd(template: string, start: number): number {
  let quote: string | undefined
  for (let i = start + 1; i < template.length; i++) {
    const char = template[i]
    if (quote !== undefined) {
      if (char === '\\') i++
      else if (char === quote) quote = undefined
    } else if (char === '"' || char === "'") quote = char
    else if (char === '}') return i
  }
  return -1
}

/** A string literal action, `"\n"` or `'x'`, as text. */
function literal(template: string, action: string): string {
  if (action.startsWith('"')) {
    try {
      return JSON.parse(action) as string
    } catch {
      throw templateError(template, `bad string literal \`${action}\``)
    }
  }
  return action.slice(1, -1).replace(/\\(.)/g, '$1')
}

/**
 * An expression as jsonpath-plus reads it (`$…`), checked for what jsonpath-plus would let through
 * silently: an unclosed bracket or parenthesis.
 */
function pathOf(template: string, expression: string): string {
  const rooted = /^[$@]/.test(expression) ? expression.slice(1) : expression
  if (rooted !== '' && !/^[.[]/.test(rooted)) {
    throw templateError(
      template,
      `unrecognized identifier \`${expression}\`: an expression starts with \`.\`, as in \`{.metadata.name}\``,
    )
  }
  if (rooted === '.') return '$'
  let depth = 0
  let quote: string | undefined
  for (let i = 0; i < rooted.length; i++) {
    const char = rooted[i]
    if (quote !== undefined) {
      if (char === '\\') i++
      else if (char === quote) quote = undefined
    } else if (char === '"' || char === "'") quote = char
    else if (char === '[' || char === '(') depth++
    else if (char === ']' || char === ')') depth--
    if (depth < 0) throw templateError(template, `unbalanced \`${char}\` in \`${expression}\``)
  }
  if (depth !== 0 || quote !== undefined) throw templateError(template, `unclosed \`[\` in \`${expression}\``)
  if (/\.$/.test(rooted) && !rooted.endsWith('..')) {
    throw templateError(template, `\`${expression}\` ends with \`.\`: name a field after it`)
  }
  return `$${rooted}`
}

/** Parses a kubectl JSONPath template; a bad one is a usage error that names the problem. */
export function parseTemplate(template: string): Template {
  const stack: { nodes: Node[]; path: string; source: string }[] = [{ nodes: [], path: '', source: '' }]
  const top = () => stack[stack.length - 1] as (typeof stack)[number]
  let at = 0
  while (at < template.length) {
    const open = template.indexOf('{', at)
    if (open === -1) {
      top().nodes.push({ kind: 'text', text: template.slice(at) })
      break
    }
    if (open > at) top().nodes.push({ kind: 'text', text: template.slice(at, open) })
    const close = actionEnd(template, open)
    if (close === -1) throw templateError(template, `unclosed action: \`{\` at ${open + 1} has no \`}\``)
    const action = template.slice(open + 1, close).trim()
    at = close + 1
    if (action === '') throw templateError(template, 'empty action `{}`')
    if (action === 'end') {
      const range = stack.pop()
      if (stack.length === 0 || range === undefined) {
        throw templateError(template, '`{end}` without a `{range …}` before it')
      }
      top().nodes.push({ kind: 'range', path: range.path, source: range.source, body: range.nodes })
    } else if (/^range\s/.test(action)) {
      const expression = action.slice('range'.length).trim()
      stack.push({ nodes: [], path: pathOf(template, expression), source: expression })
    } else if (action.startsWith('"') || action.startsWith("'")) {
      top().nodes.push({ kind: 'text', text: literal(template, action) })
    } else {
      top().nodes.push({ kind: 'expression', path: pathOf(template, action), source: action })
    }
  }
  if (stack.length > 1) throw templateError(template, `\`{range ${top().source}}\` has no \`{end}\``)
  return { source: template, nodes: top().nodes }
}

/** Every value an expression finds in `data`; none when a field is missing, as kubectl by default. */
export function query(template: Template, path: string, data: unknown): unknown[] {
  if (path === '$') return [data]
  try {
    return JSONPath({ path, json: data as object, wrap: true, eval: 'safe' }) as unknown[]
  } catch (error) {
    throw templateError(template.source, error instanceof Error ? error.message : String(error))
  }
}

/** A value as kubectl prints it: strings as they are, anything else as JSON. */
export function printed(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value)
}

function run(template: Template, nodes: readonly Node[], data: unknown): string {
  let out = ''
  for (const node of nodes) {
    if (node.kind === 'text') out += node.text
    else if (node.kind === 'expression') out += query(template, node.path, data).map(printed).join(' ')
    else {
      const found = query(template, node.path, data)
      // `{range .items}` walks the list's elements, as `{range .items[*]}` does.
      const each = found.length === 1 && Array.isArray(found[0]) ? found[0] : found
      for (const item of each) out += run(template, node.body, item)
    }
  }
  return out
}

/** The template's text for `data`. */
export function execute(template: Template, data: unknown): string {
  return run(template, template.nodes, data)
}

/**
 * A field path as `--sort-by` and custom columns take it, with or without braces or the leading dot
 * (`.metadata.name`, `{.metadata.name}`, `metadata.name`), as a template of one expression.
 */
export function parseFieldPath(path: string): Template {
  const trimmed = path.trim()
  const braced = trimmed.startsWith('{') && trimmed.endsWith('}')
  const inner = braced ? trimmed.slice(1, -1).trim() : trimmed
  const notOne = () =>
    new UsageError(`\`${path}\` is not a single JSONPath expression such as \`.metadata.name\``)
  if (/[{}]/.test(inner)) throw notOne()
  if (inner === '') throw new UsageError(`empty JSONPath expression \`${path}\``)
  const relaxed = /^[.[$@]/.test(inner) ? inner : `.${inner}`
  const template = parseTemplate(`{${relaxed}}`)
  const [node] = template.nodes
  if (template.nodes.length !== 1 || node?.kind !== 'expression') throw notOne()
  return template
}

/** The values one field path finds in `data`. */
export function fieldValues(field: Template, data: unknown): unknown[] {
  const [node] = field.nodes
  return node?.kind === 'expression' ? query(field, node.path, data) : []
}
