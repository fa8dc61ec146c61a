/**
 * The layering rules: the SDK is the core and imports neither the controller nor the CLI;
 * those two reach the SDK only through its public entry point; inside the SDK a single
 * adapter file talks to @kubernetes/client-node.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const SDK_ENTRY = 'sdk/index.ts'
const CLIENT = '@kubernetes/client-node'

type Source = { readonly path: string; readonly text: string }

function sources(dir: string): Source[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter(
      (file) => file.endsWith('.ts') && !file.endsWith('.test.ts') && !file.split('/').includes('testing'),
    )
    .map((file) => {
      const path = join(dir, file)
      return { path, text: readFileSync(join(ROOT, path), 'utf8') }
    })
}

function importsOf(source: Source): string[] {
  const specifiers = source.text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s*['"]([^'"]+)['"]/g)
  const dynamic = source.text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)
  return [...specifiers, ...dynamic].map((match) => {
    const specifier = match[1] ?? ''
    return specifier.startsWith('.')
      ? relative(ROOT, resolve(ROOT, dirname(source.path), specifier))
      : specifier
  })
}

function violations(files: readonly Source[]): string[] {
  const found: string[] = []
  const clientUsers: string[] = []
  for (const source of files) {
    const layer = source.path.split('/')[0]
    for (const target of importsOf(source)) {
      const targetLayer = target.split('/')[0]
      if (layer === 'sdk' && (targetLayer === 'controller' || targetLayer === 'cli')) {
        found.push(`${source.path} imports ${target}: the SDK must not depend on the ${targetLayer}`)
      }
      if (layer !== 'sdk' && targetLayer === 'sdk' && target !== SDK_ENTRY) {
        found.push(`${source.path} imports ${target}: use the SDK's public entry point ${SDK_ENTRY}`)
      }
      if (layer === 'sdk' && target.startsWith(CLIENT)) clientUsers.push(source.path)
    }
  }
  if (new Set(clientUsers).size > 1) {
    found.push(
      `${CLIENT} is imported by ${[...new Set(clientUsers)].join(', ')}: keep it in one SDK adapter file`,
    )
  }
  return found
}

describe('import boundaries', () => {
  it('hold for the source tree', () => {
    const files = [...sources('sdk'), ...sources('controller'), ...sources('cli')]
    expect(files.some((file) => file.path === SDK_ENTRY)).toBe(true)
    expect(violations(files)).toEqual([])
  })

  it('are detected when broken', () => {
    const bad: Source[] = [
      {
        path: 'sdk/a.ts',
        text: "import { run } from '../cli/run.ts'\nimport { KubeConfig } from '@kubernetes/client-node'",
      },
      { path: 'sdk/b.ts', text: "export { Watch } from '@kubernetes/client-node'" },
      { path: 'controller/c.ts', text: "import { lockOf } from '../sdk/lock.ts'" },
      { path: 'cli/d.ts', text: "const m = await import('../sdk/index.ts')" },
    ]
    expect(violations(bad)).toEqual([
      'sdk/a.ts imports cli/run.ts: the SDK must not depend on the cli',
      "controller/c.ts imports sdk/lock.ts: use the SDK's public entry point sdk/index.ts",
      `${CLIENT} is imported by sdk/a.ts, sdk/b.ts: keep it in one SDK adapter file`,
    ])
  })
})
