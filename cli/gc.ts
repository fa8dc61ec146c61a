import { LOCK_NAME_ANNOTATION, leaseToRecord } from '../sdk/internal.ts'
import { UsageError } from './errors.ts'
import { ExitCode } from './exit-codes.ts'
import type { OutputFormat } from './flags.ts'
import { gcPlan } from './gc-plan.ts'
import { cell, renderTable } from './rows.ts'
import { type CliContext, type CommonFlags, labelSelector, Session } from './session.ts'

// `locks gc --dry-run`: what the controller would free or delete now, by the plan of gc-plan.ts.

export interface GcFlags extends CommonFlags {
  readonly dryRun?: boolean
  readonly allNamespaces?: boolean
  readonly selector?: string
  readonly output: OutputFormat
  readonly headers: boolean
  readonly grace: number
  readonly retention: number
  readonly chunkSize: number
}

export async function gcCommand(ctx: CliContext, flags: GcFlags): Promise<number> {
  if (!flags.dryRun) {
    throw new UsageError(
      'the controller reclaims and deletes leases; `locks gc` only shows what it would do: add --dry-run',
    )
  }
  await using session = new Session(ctx, flags)
  const namespace = flags.allNamespaces ? undefined : session.namespace
  const list = await session.api.list(
    namespace,
    { labelSelector: labelSelector(flags.selector), chunkSize: flags.chunkSize },
    ctx.signal,
  )
  const plan = gcPlan(
    list.items.map((json) => leaseToRecord(json)),
    ctx.now(),
    { grace: flags.grace, retention: flags.retention },
  )
  if (flags.output === 'json') {
    const actions = plan.map((step) => ({
      namespace: step.lease.namespace,
      name: step.lease.annotations[LOCK_NAME_ANNOTATION] ?? step.lease.name,
      lease: step.lease.name,
      kind: step.kind,
      action: step.action,
      reason: step.reason,
      holder: step.lease.holderIdentity ?? null,
      resourceVersion: step.lease.resourceVersion,
    }))
    ctx.stdout(`${JSON.stringify({ dryRun: true, actions }, null, 4)}\n`)
    return ExitCode.ok
  }
  if (flags.output === 'name') {
    ctx.stdout(plan.map((step) => `lease.coordination.k8s.io/${step.lease.name}\n`).join(''))
    return ExitCode.ok
  }
  if (plan.length === 0) {
    const where = namespace === undefined ? '' : ` in namespace \`${namespace}\``
    ctx.stderr(
      `Nothing to reclaim${where}: no lock is expired or free for longer than the retention, and no ticket is due for deletion.\n`,
    )
    return ExitCode.ok
  }
  const headers = [...(flags.allNamespaces ? ['NAMESPACE'] : []), 'NAME', 'HOLDER', 'ACTION', 'REASON']
  const rows = plan.map((step) => [
    ...(flags.allNamespaces ? [step.lease.namespace] : []),
    cell(step.lease.annotations[LOCK_NAME_ANNOTATION] ?? step.lease.name),
    cell(step.lease.holderIdentity ?? '<none>'),
    step.action,
    step.reason,
  ])
  ctx.stdout(renderTable(flags.headers ? headers : undefined, rows).text)
  return ExitCode.ok
}
