import { LEASE_API_VERSION, MANAGED_BY_LABEL, MANAGED_BY_VALUE } from './constants.ts'

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
  })
}

/**
 * The Lease object for a record or a draft. With `uid` and `resourceVersion` present it is a valid
 * update body: the API server then applies it only if both still match.
 */
export function recordToLease(record: LeaseDraft | LeaseRecord): LeaseObject {
  const metadata: NonNullable<LeaseObject['metadata']> = { name: record.name, namespace: record.namespace }
  if ('uid' in record && record.uid) metadata.uid = record.uid
  if ('resourceVersion' in record && record.resourceVersion) metadata.resourceVersion = record.resourceVersion
  if (Object.keys(record.labels).length > 0) metadata.labels = { ...record.labels }
  if (Object.keys(record.annotations).length > 0) metadata.annotations = { ...record.annotations }
  const spec: NonNullable<LeaseObject['spec']> = {}
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
