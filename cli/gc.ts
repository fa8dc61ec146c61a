import { LOCK_NAME_ANNOTATION, leaseToRecord } from '../sdk/internal.ts'
import { UsageError } from './errors.ts'
import { ExitCode } from './exit-codes.ts'
import type { OutputFormat } from './flags.ts'
import { GC_DEFAULTS, type GcAction, gcPlan } from './gc-plan.ts'
import { cell, renderTable } from './rows.ts'
import { type CliContext, type CommonFlags, labelSelector, Session } from './session.ts'

// `locks gc`: what the controller would free or delete now, by the SDK's reclaim rule (gc-plan.ts);
// with `--apply`, it does so, each write under the uid and resourceVersion it was judged on.

export interface GcFlags extends CommonFlags {
  readonly dryRun?: boolean
  readonly apply?: boolean
  readonly allNamespaces?: boolean
  readonly selector?: string
  readonly output: OutputFormat
  readonly headers: boolean
  readonly reclaimGrace?: number
  /** The old name of `reclaimGrace`, still accepted with a warning. */
  readonly grace?: number
  readonly retention?: number
  readonly chunkSize: number
}

/** What `--apply` did to one lease of the plan. */
type Outcome = 'freed' | 'deleted' | 'changed' | 'gone'

const OUTCOME_REASONS: Readonly<Record<'changed' | 'gone', string>> = Object.freeze({
  changed: 'skipped: it changed since it was read',
  gone: 'skipped: someone else deleted it',
})

export async function gcCommand(ctx: CliContext, flags: GcFlags): Promise<number> {
  if (flags.apply && flags.dryRun) {
    throw new UsageError('--dry-run shows the plan and --apply performs it: give one of them')
  }
  if (!flags.apply && !flags.dryRun) {
    throw new UsageError(
      '`locks gc` changes nothing unless told: add --dry-run to see what the controller would free or delete now, or --apply to do it',
    )
  }
  if (flags.grace !== undefined && flags.reclaimGrace !== undefined) {
    throw new UsageError('--grace is the old name of --reclaim-grace: give only --reclaim-grace')
  }
  if (flags.grace !== undefined) {
    ctx.stderr(
      'warning: --grace is deprecated and will be removed: use --reclaim-grace, which means the same\n',
    )
  }
  const grace = flags.reclaimGrace ?? flags.grace ?? GC_DEFAULTS.grace
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
    { grace, retention: flags.retention ?? GC_DEFAULTS.retention },
  )
  const outcomes = flags.apply ? await apply(session, plan) : undefined
  if (flags.output === 'json') {
    const actions = plan.map((step, index) => ({
      namespace: step.lease.namespace,
      name: step.lease.annotations[LOCK_NAME_ANNOTATION] ?? step.lease.name,
      lease: step.lease.name,
      kind: step.kind,
      action: step.action,
      reason: step.reason,
      holder: step.lease.holderIdentity ?? null,
      resourceVersion: step.lease.resourceVersion,
      ...(outcomes === undefined ? {} : { result: outcomes[index] }),
    }))
    ctx.stdout(`${JSON.stringify({ dryRun: outcomes === undefined, actions }, null, 4)}\n`)
    return ExitCode.ok
  }
  if (flags.output === 'name') {
    const done = plan.filter((_, index) => outcomes === undefined || isDone(outcomes[index]))
    ctx.stdout(done.map((step) => `lease.coordination.k8s.io/${step.lease.name}\n`).join(''))
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
  const rows = plan.map((step, index) => {
    const outcome = outcomes?.[index]
    return [
      ...(flags.allNamespaces ? [step.lease.namespace] : []),
      cell(step.lease.annotations[LOCK_NAME_ANNOTATION] ?? step.lease.name),
      cell(step.lease.holderIdentity ?? '<none>'),
      outcome === undefined ? step.action : isDone(outcome) ? outcome : 'none',
      outcome === 'changed' || outcome === 'gone' ? OUTCOME_REASONS[outcome] : step.reason,
    ]
  })
  ctx.stdout(renderTable(flags.headers ? headers : undefined, rows).text)
  return ExitCode.ok
}

function isDone(outcome: Outcome | undefined): boolean {
  return outcome === 'freed' || outcome === 'deleted'
}

/**
 * Performs the plan one lease after the other, as the controller would: a free is an update that
 * carries the uid and resourceVersion the lease was judged on, a delete has them as preconditions, so
 * a lease renewed, released or re-created since the list is left as it is.
 */
async function apply(session: Session, plan: readonly GcAction[]): Promise<Outcome[]> {
  const outcomes: Outcome[] = []
  for (const { decision, lease } of plan) {
    if (decision.kind === 'free') {
      const written = await session.api.update(decision.update, session.ctx.signal)
      outcomes.push(written === undefined ? 'changed' : 'freed')
    } else {
      outcomes.push(
        await session.api.delete(lease.namespace, lease.name, decision.preconditions, session.ctx.signal),
      )
    }
  }
  return outcomes
}
