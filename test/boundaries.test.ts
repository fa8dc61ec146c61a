/**
 * The layering rules: the SDK is the core and imports neither the controller nor the CLI;
 * those two reach the SDK only through its entry point for them (sdk/internal.ts); in the whole tree only the wire
 * folder sdk/kube/ talks to the API server or loads @kubernetes/client-node. Serving HTTP (the
 * controller's metrics and health endpoints) is not talking to the API server: `node:http` may be
 * imported elsewhere for its server side only. The development tooling and the test support code
 * (bench/, demo/, dev/, hack/, test/) reach the SDK through the same entry point, but may talk to the
 * API server themselves: the benchmarks' raw-Lease baseline, the local control plane's health checks.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const SDK_ENTRY = 'sdk/internal.ts'
const CLIENT = '@kubernetes/client-node'
const WIRE = ['node:http', 'node:https', 'node:http2', CLIENT]
const WIRE_FOLDER = 'sdk/kube/'
const TOOLING = new Set(['bench', 'demo', 'dev', 'hack', 'test'])
/**
 * What a server needs of `node:http`, and its table of reason phrases; anything else of it (`request`,
 * `get`, `Agent`) is a client.
 */
const HTTP_SERVER_NAMES = new Set([
  'createServer',
  'Server',
  'IncomingMessage',
  'ServerResponse',
  'STATUS_CODES',
])

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

interface Import {
  readonly target: string
  /** The names imported, `undefined` for a namespace, default, dynamic or `require` import. */
  readonly names: readonly string[] | undefined
}

function importsOf(source: Source): Import[] {
  const specifiers = source.text.matchAll(/(?:^|\n)\s*(?:import|export)\b([^'"]*?)from\s*['"]([^'"]+)['"]/g)
  const dynamic = source.text.matchAll(/\b(?:import|require)\(\s*['"]([^'"]+)['"]\s*\)/g)
  const target = (specifier: string) =>
    specifier.startsWith('.') ? relative(ROOT, resolve(ROOT, dirname(source.path), specifier)) : specifier
  return [
    ...[...specifiers].map((match) => {
      const clause = (match[1] ?? '').replace(/^\s*type\s+/, '').trim()
      const named = /^\{([^}]*)\}$/.exec(clause)?.[1]
      const names = named
        ?.split(',')
        .map(
          (name) =>
            name
              .replace(/^\s*type\s+/, '')
              .split(/\s+as\s+/)[0]
              ?.trim() ?? '',
        )
        .filter((name) => name !== '')
      return { target: target(match[2] ?? ''), names }
    }),
    ...[...dynamic].map((match) => ({ target: target(match[1] ?? ''), names: undefined })),
  ]
}

function isWire({ target, names }: Import): boolean {
  if (target === 'node:http') return names === undefined || names.some((name) => !HTTP_SERVER_NAMES.has(name))
  return WIRE.some((module) => target === module || target.startsWith(`${module}/`))
}

function violations(files: readonly Source[]): string[] {
  const found: string[] = []
  for (const source of files) {
    const layer = source.path.split('/')[0]
    for (const imported of importsOf(source)) {
      const { target } = imported
      const targetLayer = target.split('/')[0]
      if (layer === 'sdk' && (targetLayer === 'controller' || targetLayer === 'cli')) {
        found.push(`${source.path} imports ${target}: the SDK must not depend on the ${targetLayer}`)
      }
      if (layer !== 'sdk' && targetLayer === 'sdk' && target !== SDK_ENTRY) {
        found.push(
          `${source.path} imports ${target}: use the SDK's entry point for the controller and the CLI, ${SDK_ENTRY}`,
        )
      }
      if (isWire(imported) && !source.path.startsWith(WIRE_FOLDER) && !TOOLING.has(layer ?? '')) {
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

  it('hold for the development tooling and the test support code', () => {
    // Fixtures are parts of tests, which may reach into the SDK to test what they name.
    const files = [...TOOLING]
      .flatMap((dir) => sources(dir))
      .filter((file) => !file.path.split('/').includes('fixtures'))
    expect(files.some((file) => file.path.startsWith('bench/'))).toBe(true)
    expect(violations(files)).toEqual([])
  })

  it('let the tooling talk to the API server but not reach past the entry point', () => {
    const tooling: Source[] = [
      { path: 'bench/a.ts', text: "import { CoreV1Api } from '@kubernetes/client-node'" },
      { path: 'dev/b.ts', text: "import { request } from 'node:https'" },
      { path: 'demo/c.ts', text: "import { LockClient } from '../sdk/locks.ts'" },
      { path: 'test/e2e/d.ts', text: "import { createLocks } from '../../sdk/index.ts'" },
      { path: 'hack/e.ts', text: "import { createLocks } from '../sdk/internal.ts'" },
    ]
    expect(violations(tooling)).toEqual([
      "demo/c.ts imports sdk/locks.ts: use the SDK's entry point for the controller and the CLI, sdk/internal.ts",
      "test/e2e/d.ts imports sdk/index.ts: use the SDK's entry point for the controller and the CLI, sdk/internal.ts",
    ])
  })

  it('are detected when broken', () => {
    const bad: Source[] = [
      {
        path: 'sdk/a.ts',
        text: "import { run } from '../cli/run.ts'\nimport { KubeConfig } from '@kubernetes/client-node'",
      },
      { path: 'sdk/b.ts', text: "export { Watch } from '@kubernetes/client-node'" },
      { path: 'controller/c.ts', text: "import { lockOf } from '../sdk/lock.ts'" },
      { path: 'cli/d.ts', text: "const m = await import('../sdk/internal.ts')" },
      { path: 'sdk/kube/e.ts', text: "import { request } from 'node:https'" },
      { path: 'sdk/f.ts', text: "import { request } from 'node:http'" },
      { path: 'controller/g.ts', text: "import { CoordinationV1Api } from '@kubernetes/client-node'" },
      { path: 'cli/h.ts', text: "import { request as send, type RequestOptions } from 'node:https'" },
      { path: 'cli/i.ts', text: "import * as http from 'node:http'" },
      { path: 'cli/j.ts', text: "const k8s = require('@kubernetes/client-node')" },
      { path: 'controller/k.ts', text: "import { createServer, type Server } from 'node:http'" },
      { path: 'controller/l.ts', text: "import type { IncomingMessage } from 'node:http'" },
    ]
    expect(violations(bad)).toEqual([
      'sdk/a.ts imports cli/run.ts: the SDK must not depend on the cli',
      `sdk/a.ts imports ${CLIENT}: Kubernetes wire code lives in sdk/kube/`,
      `sdk/b.ts imports ${CLIENT}: Kubernetes wire code lives in sdk/kube/`,
      "controller/c.ts imports sdk/lock.ts: use the SDK's entry point for the controller and the CLI, sdk/internal.ts",
      'sdk/f.ts imports node:http: Kubernetes wire code lives in sdk/kube/',
      `controller/g.ts imports ${CLIENT}: Kubernetes wire code lives in sdk/kube/`,
      'cli/h.ts imports node:https: Kubernetes wire code lives in sdk/kube/',
      'cli/i.ts imports node:http: Kubernetes wire code lives in sdk/kube/',
      `cli/j.ts imports ${CLIENT}: Kubernetes wire code lives in sdk/kube/`,
    ])
  })
})
