import { HOLDER_ANNOTATIONS, LEASE_API_VERSION, MANAGED_BY_LABEL, MANAGED_BY_VALUE } from './constants.ts'
import { formatMicroTime } from './micro-time.ts'

/**
 * A storage-neutral view of a Lease: what the lock algorithm reads and writes. The `LeaseStore`
 * converts between this and the Kubernetes object; {@link leaseToRecord} and {@link recordToLease} are
 * those converters, exported so the controller and the CLI read leases the same way.
 */
export interface LeaseRecord {
  readonly namespace: string
  readonly name: string
  /** Set by the server on create; every update and delete carries it as a precondition. */
  readonly uid: string
  /** Set by the server on every write; updates and deletes carry it as a precondition. */
  readonly resourceVersion: string
  /** Empty or absent means the lock is free. */
  readonly holderIdentity: string | undefined
  readonly leaseDurationSeconds: number | undefined
  /** MicroTime strings, information for people only: never a safety input. */
  readonly acquireTime: string | undefined
  readonly renewTime: string | undefined
  readonly leaseTransitions: number | undefined
  readonly labels: Readonly<Record<string, string>>
  readonly annotations: Readonly<Record<string, string>>
  /** RFC 3339, set by the server on create. */
  readonly creationTimestamp: string | undefined
  /**
   * Fields of the Lease that kube-locks does not own — `ownerReferences`, `finalizers`, spec fields it
   * does not know — kept as read and written back unchanged, so that no write drops them.
   */
  readonly retained?: RetainedFields | undefined
}

export interface RetainedFields {
  readonly metadata: Readonly<Record<string, unknown>>
  readonly spec: Readonly<Record<string, unknown>>
}

/** What a create writes: a record without the server-assigned fields. */
export type LeaseDraft = Omit<LeaseRecord, 'uid' | 'resourceVersion' | 'creationTimestamp'>

/** The JSON shape of a `coordination.k8s.io/v1` Lease, as sent and received over the API. */
export interface LeaseObject {
  apiVersion?: string
  kind?: string
  metadata?: {
    name?: string
    namespace?: string
    uid?: string
    resourceVersion?: string
    creationTimestamp?: string | Date
    labels?: Record<string, string>
    annotations?: Record<string, string>
    [key: string]: unknown
  }
  spec?: {
    holderIdentity?: string
    leaseDurationSeconds?: number
    acquireTime?: string | Date
    renewTime?: string | Date
    leaseTransitions?: number
    [key: string]: unknown
  }
}

/**
 * Whether kube-locks manages the lease: only such leases are ever written, freed or deleted by the SDK,
 * the controller or the CLI. Any other lease of the same name (a leader election, a node heartbeat)
 * belongs to someone else.
 */
export function isManaged(record: Pick<LeaseRecord, 'labels'>): boolean {
  return record.labels[MANAGED_BY_LABEL] === MANAGED_BY_VALUE
}

export function isFree(record: Pick<LeaseRecord, 'holderIdentity'>): boolean {
  return record.holderIdentity === undefined || record.holderIdentity === ''
}

// Metadata the SDK reads and writes itself, or that the server owns (sending managedFields back would
// overwrite the server's; omitted, the server keeps them).
const OWN_METADATA = new Set([
  'name',
  'namespace',
  'uid',
  'resourceVersion',
  'creationTimestamp',
  'labels',
  'annotations',
  'managedFields',
  'generation',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'selfLink',
])
const OWN_SPEC = new Set([
  'holderIdentity',
  'leaseDurationSeconds',
  'acquireTime',
  'renewTime',
  'leaseTransitions',
])

function retainedFields(lease: LeaseObject): RetainedFields | undefined {
  const pick = (from: Record<string, unknown> | undefined, own: ReadonlySet<string>) => {
    const out: Record<string, unknown> = {}
    for (const [key, value] of Object.entries(from ?? {})) {
      if (!own.has(key) && value !== undefined && value !== null) out[key] = value
    }
    return out
  }
  const metadata = pick(lease.metadata, OWN_METADATA)
  const spec = pick(lease.spec, OWN_SPEC)
  if (Object.keys(metadata).length === 0 && Object.keys(spec).length === 0) return undefined
  return Object.freeze({ metadata: Object.freeze(metadata), spec: Object.freeze(spec) })
}

/**
 * The lease marked free: no holder, no holder annotations, `renewTime` at `wallNow` (epoch ms) for
 * people to read. Every other field — the uid and resourceVersion preconditions among them — is kept.
 */
export function freedRecord(record: LeaseRecord, wallNow: number): LeaseRecord {
  return {
    ...record,
    holderIdentity: undefined,
    acquireTime: undefined,
    renewTime: formatMicroTime(wallNow),
    annotations: withoutHolderAnnotations(record.annotations),
  }
}

export function withoutHolderAnnotations(
  annotations: Readonly<Record<string, string>>,
): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries(annotations)) {
    if (!HOLDER_ANNOTATIONS.includes(key)) out[key] = value
  }
  return out
}

export function leaseToRecord(lease: LeaseObject): LeaseRecord {
  const metadata = lease.metadata ?? {}
  const spec = lease.spec ?? {}
  if (!metadata.name || !metadata.uid || !metadata.resourceVersion) {
    throw new TypeError(
      `Expected a Lease with metadata.name, uid and resourceVersion, got ${JSON.stringify(metadata)}`,
    )
  }
  return Object.freeze({
    namespace: metadata.namespace ?? '',
    name: metadata.name,
    uid: metadata.uid,
    resourceVersion: metadata.resourceVersion,
    holderIdentity: nonEmpty(spec.holderIdentity),
    leaseDurationSeconds: spec.leaseDurationSeconds ?? undefined,
    acquireTime: timeString(spec.acquireTime),
    renewTime: timeString(spec.renewTime),
    leaseTransitions: spec.leaseTransitions ?? undefined,
    labels: Object.freeze({ ...(metadata.labels ?? {}) }),
    annotations: Object.freeze({ ...(metadata.annotations ?? {}) }),
    creationTimestamp: timeString(metadata.creationTimestamp),
    retained: retainedFields(lease),
  })
}

/**
 * The Lease object for a record or a draft. With `uid` and `resourceVersion` present it is a valid
 * update body: the API server then applies it only if both still match.
 */
export function recordToLease(record: LeaseDraft | LeaseRecord): LeaseObject {
  const metadata: NonNullable<LeaseObject['metadata']> = {
    ...record.retained?.metadata,
    name: record.name,
    namespace: record.namespace,
  }
  if ('uid' in record && record.uid) metadata.uid = record.uid
  if ('resourceVersion' in record && record.resourceVersion) metadata.resourceVersion = record.resourceVersion
  if (Object.keys(record.labels).length > 0) metadata.labels = { ...record.labels }
  if (Object.keys(record.annotations).length > 0) metadata.annotations = { ...record.annotations }
  const spec: NonNullable<LeaseObject['spec']> = { ...record.retained?.spec }
  if (record.holderIdentity) spec.holderIdentity = record.holderIdentity
  if (record.leaseDurationSeconds !== undefined) spec.leaseDurationSeconds = record.leaseDurationSeconds
  if (record.acquireTime !== undefined) spec.acquireTime = record.acquireTime
  if (record.renewTime !== undefined) spec.renewTime = record.renewTime
  if (record.leaseTransitions !== undefined) spec.leaseTransitions = record.leaseTransitions
  return { apiVersion: LEASE_API_VERSION, kind: 'Lease', metadata, spec }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value
}

// The generated client types MicroTime fields as Date but hands JSON strings through untouched, and a
// Date subclass would lose the microseconds: accept both, keep strings as the server sent them.
function timeString(value: string | Date | undefined | null): string | undefined {
  if (value === undefined || value === null) return undefined
  return typeof value === 'string' ? value : value.toISOString()
}
