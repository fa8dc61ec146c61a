/**
 * Every name an entry point exports is a decision: `kube-locks` is what applications build on and
 * keeps its names across releases, `kube-locks/testing` is what their tests build on, and
 * `kube-locks/internal` is what the controller, the CLI and the development tooling share (no
 * compatibility promise). Adding a name to an entry point fails here until it is added to its list.
 */
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import * as index from './index.ts'
import * as internal from './internal.ts'
import * as testing from './testing.ts'

const SDK = dirname(fileURLToPath(import.meta.url))
const ROOT = join(SDK, '..')

const PUBLIC_VALUES = [
  'DEFAULTS',
  'InvalidLockOptionsError',
  'KubeConfigError',
  'LeaseNotManagedError',
  'LockApiError',
  'LockClosedError',
  'LockError',
  'LockLostError',
  'LockPermissionError',
  'LockTimeoutError',
  'LockUnavailableError',
  'NamespaceNotFoundError',
  'compareResourceVersions',
  'createLocks',
  'LockModeConflictError',
]
const PUBLIC_TYPES = [
  'AcquireOptions',
  'Clock',
  'KubeConfig',
  'KubeConfigProblem',
  'LeaseStore',
  'Lock',
  'LockErrorCode',
  'LockLostReason',
  'LockedFunction',
  'Locks',
  'LocksOptions',
  'Logger',
  'HolderMode',
]

const TESTING_VALUES = ['createMemoryLeaseStore', 'createTestLocks', 'testClock']
const TESTING_TYPES = [
  'FaultPhase',
  'LeaseDraft',
  'LeaseEvent',
  'LeaseRecord',
  'MemoryLeaseStore',
  'MemoryLeaseStoreOptions',
  'MemoryStoreCall',
  'MemoryStoreOperation',
  'TestLocks',
  'TestLocksOptions',
]

const INTERNAL_VALUES = [
  'DEFAULTS',
  'HASHED_LEASE_NAME',
  'HOLDER_ANNOTATIONS',
  'InvalidLockOptionsError',
  'KubeConfigError',
  'LEASE_API_VERSION',
  'LEASE_RESOURCE',
  'LOCK_NAME_ANNOTATION',
  'LeaseConflictError',
  'LeaseNotFoundError',
  'LeaseNotManagedError',
  'LockApiError',
  'LockClosedError',
  'LockError',
  'LockLostError',
  'LockPermissionError',
  'LockTimeoutError',
  'LockUnavailableError',
  'MANAGED_BY_LABEL',
  'MANAGED_BY_SELECTOR',
  'MANAGED_BY_VALUE',
  'MAX_EXPIRES',
  'MAX_LOCK_NAME_BYTES',
  'MAX_TIMER_MS',
  'NODE_ANNOTATION',
  'NODE_NAME_ENV',
  'NamespaceNotFoundError',
  'POD_ANNOTATION',
  'POD_NAMESPACE_ENV',
  'POD_NAME_ENV',
  'QUEUE_LABEL',
  'QUEUE_POSITION_ANNOTATION',
  'RECLAIM_DEFAULTS',
  'SERVICE_ANNOTATION',
  'WAITS_FOR_ANNOTATION',
  'WatchExpiredError',
  'clampDelay',
  'compareResourceVersions',
  'compareTickets',
  'createClusterLeaseStore',
  'createKubernetesLeaseStore',
  'backoff',
  'connectionFailure',
  'createLocks',
  'createMemoryLeaseStore',
  'defaultSafetyMargin',
  'dumpYaml',
  'expiresAt',
  'formatMicroTime',
  'freedRecord',
  'isDns1123Subdomain',
  'isExpired',
  'isFree',
  'isManaged',
  'isResourceVersion',
  'isTicket',
  'isTicketOf',
  'isWaiting',
  'kubeConfigNamespace',
  'leaseNameFor',
  'leaseToRecord',
  'listPaged',
  'loadCluster',
  'loadDefaultKubeConfig',
  'nearestName',
  'newTicketName',
  'observe',
  'parseMicroTime',
  'queueKeyFor',
  'queueSelector',
  'reclaimDecision',
  'reclaimManagedDecision',
  'recordToLease',
  'rejectUnknownKeys',
  'renewedTicket',
  'setClampedTimeout',
  'systemClock',
  'ticketDraft',
  'ticketLock',
  'ticketPosition',
  'validateLockName',
  'HOLDER_OF_LABEL',
  'HOLDS_ANNOTATION',
  'LIMIT_ANNOTATION',
  'LockModeConflictError',
  'MAX_LIMIT',
  'MODE_ANNOTATION',
  'describeMode',
  'holderKeyFor',
  'holderRecordLock',
  'holderSelector',
  'isHolderRecord',
  'isHolderRecordOf',
  'modeOf',
  'RECORD_FRESH_MS',
]

const INTERNAL_TYPES = [
  'AcquireOptions',
  'Clock',
  'Cluster',
  'ClusterOptions',
  'FaultPhase',
  'KubeConfig',
  'KubeConfigProblem',
  'KubernetesLeaseEvent',
  'KubernetesLeaseStore',
  'KubernetesLeaseStoreOptions',
  'KubernetesWatchOptions',
  'LeaseDraft',
  'LeaseEvent',
  'LeaseList',
  'LeaseObject',
  'LeaseObservation',
  'LeaseRecord',
  'LeaseStore',
  'ListOptions',
  'Lock',
  'LockErrorCode',
  'LockLostReason',
  'LockedFunction',
  'Locks',
  'LocksOptions',
  'Logger',
  'MemoryLeaseStore',
  'MemoryStoreOperation',
  'PagedList',
  'PagedListOptions',
  'ReclaimDecision',
  'ReclaimSettings',
  'RequestOptions',
  'RetainedFields',
  'ServerVersionInfo',
  'TicketDraftOptions',
  'WatchOptions',
  'HolderMode',
]

interface Exports {
  readonly values: string[]
  readonly types: string[]
}

/**
 * The names an entry file exports, read from its `export { … } from` and `export type { … } from`
 * lines and its own `export const|function|class|interface|type` declarations. Runtime names are
 * checked against the module itself as well, so this reader cannot drift from what the file exports.
 */
function exportsOf(file: string): Exports {
  const text = readFileSync(join(SDK, file), 'utf8')
  const values: string[] = []
  const types: string[] = []
  for (const match of text.matchAll(/^export\s+(type\s+)?\{([^}]*)\}/gm)) {
    for (const entry of (match[2] ?? '').split(',')) {
      const spec = entry.trim()
      if (spec === '') continue
      const typeOnly = match[1] !== undefined || spec.startsWith('type ')
      const name =
        spec
          .replace(/^type\s+/, '')
          .split(/\s+as\s+/)
          .pop() ?? spec
      ;(typeOnly ? types : values).push(name.trim())
    }
  }
  for (const match of text.matchAll(
    /^export\s+(?:declare\s+)?(const|let|function|class|interface|type)\s+(\w+)/gm,
  )) {
    const kind = match[1]
    ;(kind === 'interface' || kind === 'type' ? types : values).push(match[2] ?? '')
  }
  return { values: values.sort(), types: types.sort() }
}

const sorted = (names: readonly string[]) => [...names].sort()

describe.each([
  { entry: 'index.ts', module: index as object, values: PUBLIC_VALUES, types: PUBLIC_TYPES },
  { entry: 'testing.ts', module: testing as object, values: TESTING_VALUES, types: TESTING_TYPES },
  { entry: 'internal.ts', module: internal as object, values: INTERNAL_VALUES, types: INTERNAL_TYPES },
])('$entry', ({ entry, module, values, types }) => {
  it('exports at run time exactly the names decided for it', () => {
    expect(Object.keys(module).sort()).toEqual(sorted(values))
  })

  it('declares the same runtime names in its source', () => {
    expect(exportsOf(entry).values).toEqual(sorted(values))
  })

  it('exports exactly the types decided for it', () => {
    expect(exportsOf(entry).types).toEqual(sorted(types))
  })
})

describe('the public entry point', () => {
  it('keeps to about twenty names, each also available to the controller and the CLI', () => {
    const names = [...PUBLIC_VALUES, ...PUBLIC_TYPES]
    expect(names.length).toBeLessThanOrEqual(30)
    const internalNames = new Set(Object.keys(internal))
    expect(PUBLIC_VALUES.filter((name) => !internalNames.has(name))).toEqual([])
  })

  it('hands out the same classes as the other entry points, so instanceof holds across them', () => {
    expect(index.LockError).toBe(internal.LockError)
    expect(index.createLocks).toBe(internal.createLocks)
    expect(testing.createMemoryLeaseStore).toBe(internal.createMemoryLeaseStore)
  })
})

describe('package.json', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    exports: Record<string, unknown>
    sideEffects: unknown
  }

  it('maps each entry point to the build of its source file', () => {
    expect(pkg.exports).toEqual({
      '.': { types: './dist/sdk/index.d.ts', default: './dist/sdk/index.js' },
      './testing': { types: './dist/sdk/testing.d.ts', default: './dist/sdk/testing.js' },
      './internal': { types: './dist/sdk/internal.d.ts', default: './dist/sdk/internal.js' },
      './package.json': './package.json',
    })
  })

  it('declares the SDK free of import-time side effects', () => {
    expect(pkg.sideEffects).toBe(false)
  })
})
