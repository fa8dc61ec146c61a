import { Option } from 'commander'
import { UsageError } from './errors.ts'
import type { OutputFormat } from './flags.ts'

// The kubectl output flags of `list` and `get` beyond the fixed formats: `-o jsonpath=…`,
// `-o custom-columns=…`, `--sort-by` and `--show-labels`. Light to load, as the command tree is: the
// templates are only split here, and parsed (with errors naming the problem) when the command runs.

/** The `-o` formats that take a template after `=`. */
export const TEMPLATE_FORMATS = ['jsonpath', 'custom-columns'] as const

export interface CustomColumn {
  readonly header: string
  /** A JSONPath field path, as kubectl takes it: `.spec.holderIdentity` or `{.spec.holderIdentity}`. */
  readonly path: string
}

/** What `-o` asks for: a fixed format, or a template. */
export type Output =
  | OutputFormat
  | { readonly kind: 'jsonpath'; readonly template: string }
  | { readonly kind: 'custom-columns'; readonly columns: readonly CustomColumn[] }

/** `NAME:.metadata.name,HOLDER:.spec.holderIdentity`, kubectl's custom-columns spec. */
export function parseCustomColumns(spec: string): CustomColumn[] {
  if (spec.trim() === '') {
    throw new UsageError(
      '-o custom-columns: no columns given: expected <header>:<json-path>[,…], e.g. `NAME:.metadata.name`',
    )
  }
  // Commas inside brackets (a union `[0,1]`, a filter) belong to the path.
  const parts: string[] = []
  let depth = 0
  let current = ''
  for (const char of spec) {
    if (char === '[' || char === '(' || char === '{') depth++
    if (char === ']' || char === ')' || char === '}') depth--
    if (char === ',' && depth <= 0) {
      parts.push(current)
      current = ''
    } else current += char
  }
  parts.push(current)
  return parts.map((part) => {
    const colon = part.indexOf(':')
    const header = part.slice(0, colon).trim()
    const path = part.slice(colon + 1).trim()
    if (colon === -1 || header === '' || path === '') {
      throw new UsageError(
        `-o custom-columns: unexpected column \`${part}\`: expected <header>:<json-path>, e.g. \`HOLDER:.spec.holderIdentity\``,
      )
    }
    return { header, path }
  })
}

/** Reads `-o`: one of `allowed`, `jsonpath=<template>` or `custom-columns=<spec>`. */
export function parseOutput(value: string, allowed: readonly OutputFormat[]): Output {
  if ((allowed as readonly string[]).includes(value)) return value as OutputFormat
  const equals = value.indexOf('=')
  const name = equals === -1 ? value : value.slice(0, equals)
  const argument = equals === -1 ? undefined : value.slice(equals + 1)
  if (name === 'jsonpath') {
    if (argument === undefined || argument === '') {
      throw new UsageError("-o jsonpath: template missing: e.g. -o jsonpath='{.items[*].metadata.name}'")
    }
    return { kind: 'jsonpath', template: argument }
  }
  if (name === 'custom-columns') {
    return { kind: 'custom-columns', columns: parseCustomColumns(argument ?? '') }
  }
  const choices = [...allowed, ...TEMPLATE_FORMATS.map((format) => `${format}=…`)]
  throw new UsageError(`-o: unknown output format \`${value}\`: choose ${choices.join(', ')}`)
}

/** `-o` of `list` and `get`: the fixed formats and the templates. */
export function outputOption(allowed: readonly OutputFormat[]): Option {
  return new Option(
    '-o, --output <format>',
    `output format: ${[...allowed, ...TEMPLATE_FORMATS.map((format) => `${format}=<template>`)].join('|')}`,
  )
    .argParser((value: string) => parseOutput(value, allowed))
    .default('table')
}

/** `--sort-by` of `list`. */
export function sortByOption(): Option {
  return new Option(
    '--sort-by <jsonpath>',
    "sort by a field of the lease, as in kubectl (e.g. `.spec.renewTime`, `'{.metadata.name}'`)",
  )
}

/** `--show-labels` of `list`. */
export function showLabelsOption(): Option {
  return new Option('--show-labels', "add a LABELS column with the lease's labels")
}
