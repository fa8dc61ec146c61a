/**
 * The layering rules: the SDK is the core and imports neither the controller nor the CLI;
 * those two reach the SDK only through its public entry point; inside the SDK only the wire
 * folder sdk/kube/ talks HTTP or loads @kubernetes/client-node.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const SDK_ENTRY = 'sdk/index.ts'
const CLIENT = '@kubernetes/client-node'
const WIRE = ['node:http', 'node:https', 'node:http2', CLIENT]
const WIRE_FOLDER = 'sdk/kube/'

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
      const wire = WIRE.some((module) => target === module || target.startsWith(`${module}/`))
      if (layer === 'sdk' && wire && !source.path.startsWith(WIRE_FOLDER)) {
        found.push(`${source.path} imports ${target}: Kubernetes wire code lives in ${WIRE_FOLDER}`)
      }
    }
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
      { path: 'sdk/kube/e.ts', text: "import { request } from 'node:https'" },
      { path: 'sdk/f.ts', text: "import { request } from 'node:http'" },
    ]
    expect(violations(bad)).toEqual([
      'sdk/a.ts imports cli/run.ts: the SDK must not depend on the cli',
      `sdk/a.ts imports ${CLIENT}: Kubernetes wire code lives in sdk/kube/`,
      `sdk/b.ts imports ${CLIENT}: Kubernetes wire code lives in sdk/kube/`,
      "controller/c.ts imports sdk/lock.ts: use the SDK's public entry point sdk/index.ts",
      'sdk/f.ts imports node:http: Kubernetes wire code lives in sdk/kube/',
    ])
  })
})
