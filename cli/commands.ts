import { Command, CommanderError, Option } from 'commander'
import { clientVersionLine } from './client-version.ts'
import {
  examples,
  integerOption,
  outputOption,
  secondsOption,
  wholeNumberOption,
  withClusterOptions,
} from './command-options.ts'
import { completionScript, SHELLS } from './completion.ts'
import { CliError, oneLine, UsageError } from './errors.ts'
import { ExitCode, interrupted } from './exit-codes.ts'
import {
  DEFAULT_CHUNK_SIZE,
  DEFAULT_RELEASE_TIMEOUT,
  GC_DEFAULTS,
  KILL_AFTER_DEFAULTS,
  MAX_LIMIT,
  OUTPUT_FORMATS,
  RUN_DEFAULTS,
  RUN_ENV,
} from './flags.ts'
import type { GcFlags } from './gc.ts'
import type { GetFlags } from './get.ts'
import type { ListFlags } from './list.ts'
import type { ReleaseFlags } from './release.ts'
import type { RunFlags } from './run.ts'
import type { CliContext } from './session.ts'
import type { VersionFlags } from './version.ts'

// The command tree and what runs it. Only commander and small modules of the CLI's own load with it:
// each action imports its command's module — and with it the SDK — when it runs, so that `locks --help`
// and usage errors start without them.

const PROGRAM = 'locks'

/** Builds the command tree. Actions report their exit code through `done`. */
export function buildProgram(ctx: CliContext, done: (code: number) => void): Command {
  const program = new Command(ctx.programName ?? PROGRAM)
  program
    .description(
      'See and operate kube-locks: named, cluster-wide locks stored in coordination.k8s.io Lease objects.\n' +
        'Also installed as `kubectl-locks`, so `kubectl locks ...` works the same.',
    )
    .showSuggestionAfterError(true)
    .helpCommand('help [command]', 'show help for a command')
    .configureOutput({
      writeOut: (text) => ctx.stdout(text),
      writeErr: (text) => ctx.stderr(text),
      outputError: (text, write) => write(text),
    })
    .exitOverride()
    // Only the client's version, without loading the SDK; `locks version` asks the server too.
    .option('--version', 'print the client version and exit')
    .on('option:version', () => {
      ctx.stdout(clientVersionLine())
      throw new CommanderError(ExitCode.ok, 'commander.version', '')
    })
    .addHelpText(
      'after',
      `${examples([
        'locks list -A',
        'locks get nightly-report -o yaml',
        'locks run nightly-report --expires 60 --renew -- ./report.sh',
        'locks release nightly-report --force',
      ])}
Exit codes: 0 ok, 1 runtime failure, 2 usage error; \`locks run\` also ${ExitCode.notAcquired} not acquired, ${ExitCode.lost} lock lost,
${ExitCode.modeConflict} mode conflict, 126/127 command not executable/not found, else the command's own status. See docs/cli.md.
`,
    )

  const action =
    <A extends unknown[]>(fn: (...args: A) => Promise<number>) =>
    async (...args: A) => {
      done(await fn(...args))
    }

  withClusterOptions(
    program
      .command('list')
      .alias('ls')
      .description(
        'list locks: who holds what, since when, when it expires, how many hold and how many wait for it',
      ),
  )
    .option('-A, --all-namespaces', 'list locks in all namespaces')
    .option('-l, --selector <selector>', 'filter by label selector, as in kubectl (e.g. `team=payments`)')
    .addOption(outputOption(OUTPUT_FORMATS))
    .option('--no-headers', 'omit the header row')
    .option('-w, --watch', 'after listing, keep printing changes as they happen')
    .addOption(
      new Option('--chunk-size <n>', 'fetch large lists in pages of this many leases; 0 fetches all at once')
        .argParser(integerOption('--chunk-size'))
        .default(DEFAULT_CHUNK_SIZE),
    )
    .addHelpText(
      'after',
      examples([
        'locks list',
        'locks ls -A -o wide',
        'locks list -n shop -l team=payments -o name',
        '# follow handovers live',
        'locks list -w',
        'kubectl locks list -A --no-headers',
      ]),
    )
    .action(action(async (flags: ListFlags) => (await import('./list.ts')).listCommand(ctx, flags)))

  withClusterOptions(
    program
      .command('get')
      .argument('<name>', 'lock name, or lease name (also as lease.coordination.k8s.io/NAME)')
      .description(
        'show one lock, its holders (of a shared lock or a semaphore), and its waiters in line order',
      ),
  )
    .addOption(outputOption(OUTPUT_FORMATS))
    .option('--no-headers', 'omit the header row')
    .addHelpText(
      'after',
      examples([
        'locks get nightly-report',
        'locks get "orders/eu west" -n shop -o yaml',
        'locks get nightly-report -o json',
      ]),
    )
    .action(
      action(async (name: string, flags: GetFlags) =>
        (await import('./get.ts')).getCommand(ctx, name, flags),
      ),
    )

  withClusterOptions(
    program
      .command('release')
      .argument('<name>', 'lock name, or lease name')
      .description('mark a lock free, under a resourceVersion precondition'),
  )
    .option(
      '--force',
      'release it now, whoever holds it (every holder of a shared lock or semaphore): a holder that is still running keeps running beside the next holder',
    )
    .option(
      '--holder <identity>',
      'release it now, but only while this holder identity holds it, or only this holder of a shared lock or semaphore (the same risk as --force, for that holder)',
    )
    .addOption(
      new Option(
        '--expiry-grace <seconds>',
        `how long beyond its duration this machine must see the lease unchanged before it counts as expired (default: ${GC_DEFAULTS.grace}, the controller's grace)`,
      ).argParser(secondsOption('--expiry-grace', { min: 0 })),
    )
    .addOption(
      new Option('--grace <seconds>', 'deprecated: the old name of --expiry-grace')
        .argParser(secondsOption('--grace', { min: 0 }))
        .hideHelp(),
    )
    .addOption(
      new Option(
        '--timeout <seconds>',
        'how long to wait for a held lock to expire or come free; 0 does not wait, `inf` waits forever',
      )
        .argParser(secondsOption('--timeout', { min: 0, allowInfinity: true }))
        .default(DEFAULT_RELEASE_TIMEOUT),
    )
    .addHelpText(
      'after',
      `${examples([
        '# waits until this machine has seen the lease unchanged for its duration + grace, then frees it',
        'locks release nightly-report',
        '# refuses at once while someone holds it',
        'locks release nightly-report --timeout 0',
        'locks release nightly-report --holder worker-7_4711_x2f9',
        'locks release nightly-report --force',
        '# one holder of a semaphore or shared lock (see `locks get partner-api`)',
        'locks release partner-api --holder sync-2_81_p4k7',
      ])}
Without --force or --holder, a held lock is freed only once this machine's own monotonic clock has seen
its lease unchanged (no renewal, no handover) for the lease's duration plus --expiry-grace; the times written in
the lease come from another machine's clock and are not trusted. A renewal starts the wait again. After
--timeout it gives up and changes nothing (exit 1).
A shared lock or semaphore is released holder by holder: each holder's record as one lock's lease; without
--holder, every holder the lock has.
A holder that still runs learns of --force or --holder only when it next renews; use them only when it is gone.
`,
    )
    .action(
      action(async (name: string, flags: ReleaseFlags) =>
        (await import('./release.ts')).releaseCommand(ctx, name, flags),
      ),
    )

  withClusterOptions(
    program
      .command('run')
      .argument('<name>', 'lock name (any string)')
      .argument('[command...]', 'the command and its arguments, after `--`')
      .description(
        'run a command while holding a lock (or a place of a semaphore, or a shared hold), like flock(1)',
      ),
  )
    .addOption(
      new Option(
        '--expires <seconds>',
        `seconds after the last renewal when the lock expires (default: ${RUN_DEFAULTS.expires})`,
      ).argParser(secondsOption('--expires', { min: 0, positive: true })),
    )
    .addOption(
      new Option(
        '--timeout <seconds>',
        `seconds to wait while someone else holds it; 0 tries once, \`inf\` waits forever (default: ${RUN_DEFAULTS.timeout})`,
      ).argParser(secondsOption('--timeout', { min: 0, allowInfinity: true })),
    )
    .option('--renew', 'renew the lock while the command runs (else it expires after --expires)')
    .addOption(
      new Option(
        '--kill-after <seconds>',
        `if the lock is lost: seconds between SIGTERM and SIGKILL to the command; SIGTERM comes this much before the lock's end, so that SIGKILL lands before anyone else can take it (default: ${KILL_AFTER_DEFAULTS.seconds}, at most ${KILL_AFTER_DEFAULTS.shareOfExpires * 100} % of --expires)`,
      ).argParser(secondsOption('--kill-after', { min: 0 })),
    )
    .addOption(
      new Option('--grace <seconds>', 'deprecated: the old name of --kill-after')
        .argParser(secondsOption('--grace', { min: 0 }))
        .hideHelp(),
    )
    .addOption(
      new Option(
        '--limit <n>',
        `hold one of at most n places of a semaphore of that name, a whole number from 1 to ${MAX_LIMIT}; every holder of the name gives the same n`,
      ).argParser(wholeNumberOption('--limit', { min: 1, max: MAX_LIMIT })),
    )
    .option(
      '--shared',
      'hold it shared: any number of --shared holders at once, never beside an exclusive one',
    )
    .option('--identity <prefix>', "holder identity prefix (default: $POD_NAME, else the host's name)")
    .option('--service <name>', 'service name recorded on the lease (kube-locks.io/service)')
    .addHelpText(
      'after',
      `${examples([
        'locks run nightly-report --renew -- ./report.sh --date today',
        '# give up at once if someone else holds it',
        'locks run db-migrate --timeout 0 -- npm run migrate',
        `locks run backup --expires 300 -- sh -c 'echo "token $${RUN_ENV.fencingToken}"; ./backup'`,
        '# at most three at once; `locks list` shows 2/3 while two run',
        'locks run partner-api --limit 3 --renew -- ./sync.sh',
        '# readers together; a plain `locks run reports` waits for them, and they for it',
        'locks run reports --shared --renew -- ./read-report.sh',
      ])}
The command runs in its own process group with these variables set: ${Object.values(RUN_ENV).join(', ')}.
Signals sent to locks (INT, TERM, HUP, QUIT, USR1, USR2, WINCH) are forwarded to the group. If the lock is
lost, the group gets SIGTERM, then SIGKILL after --kill-after seconds, and locks exits ${ExitCode.lost}. SIGTERM
comes --kill-after seconds before the lock's end (without --renew: --expires minus the safety margin and
--kill-after after it was acquired), so that nothing of the group runs once someone else can take the lock.
Exit status: the command's own (128+N if killed by signal N); ${ExitCode.notAcquired} if the lock was not acquired in time;
${ExitCode.lost} if the lock was lost; ${ExitCode.modeConflict} if the name is in use with another --limit (or --shared against --limit);
126 if the command cannot run; 127 if not found; 1 on other failures; 2 on usage errors.
`,
    )
    .action(
      action(async (name: string, command: string[], flags: RunFlags) =>
        (await import('./run.ts')).runCommand(ctx, name, command, flags),
      ),
    )

  withClusterOptions(
    program
      .command('gc')
      .description('show what the controller would reclaim (free) or delete right now; with --apply, do it'),
  )
    .option('--dry-run', 'show the plan and change nothing')
    .option(
      '--apply',
      'free and delete what the plan shows, each write under the resourceVersion and uid it was judged on',
    )
    .option('-A, --all-namespaces', 'look in all namespaces')
    .option('-l, --selector <selector>', 'filter by label selector')
    .addOption(outputOption(['table', 'json', 'name']))
    .option('--no-headers', 'omit the header row')
    .addOption(
      new Option(
        '--reclaim-grace <seconds>',
        `the grace the controller runs with: how long past a lease's expiry before it frees the lease (default: ${GC_DEFAULTS.grace})`,
      ).argParser(secondsOption('--reclaim-grace', { min: 0 })),
    )
    .addOption(
      new Option('--grace <seconds>', 'deprecated: the old name of --reclaim-grace')
        .argParser(secondsOption('--grace', { min: 0 }))
        .hideHelp(),
    )
    .addOption(
      new Option(
        '--retention <seconds>',
        `the controller's retention of free leases before deleting them (default: ${GC_DEFAULTS.retention})`,
      ).argParser(secondsOption('--retention', { min: 0 })),
    )
    .addOption(
      new Option('--chunk-size <n>', 'fetch large lists in pages of this many leases')
        .argParser(integerOption('--chunk-size'))
        .default(DEFAULT_CHUNK_SIZE),
    )
    .addHelpText(
      'after',
      `${examples(['locks gc --dry-run', 'locks gc --dry-run -A -o json', 'locks gc --apply -n shop'])}
--apply judges expiry by the times written in the leases, that is by the holders' clocks, as --dry-run
shows it; the controller judges by its own clock. Like \`release --force\`, it is an operator's order.
`,
    )
    .action(action(async (flags: GcFlags) => (await import('./gc.ts')).gcCommand(ctx, flags)))

  withClusterOptions(
    program
      .command('version')
      .description('print the client version and, when the cluster answers, the server version'),
  )
    .option('--client', 'print the client version only; do not contact the server')
    .addOption(new Option('-o, --output <format>', 'output format: json|yaml').choices(['json', 'yaml']))
    .addHelpText('after', examples(['locks version', 'locks version --client', 'locks version -o json']))
    .action(action(async (flags: VersionFlags) => (await import('./version.ts')).versionCommand(ctx, flags)))

  program
    .command('completion')
    .argument('<shell>', `${SHELLS.join(' or ')}`)
    .description('print a shell completion script')
    .addHelpText(
      'after',
      examples([
        '# bash, for this shell',
        'source <(locks completion bash)',
        '# zsh, for good',
        'locks completion zsh > ~/.zfunc/_locks',
      ]),
    )
    .action(
      action(async (shell: string) => {
        if (!(SHELLS as readonly string[]).includes(shell)) {
          throw new UsageError(`unknown shell \`${shell}\`: choose ${SHELLS.join(' or ')}`)
        }
        ctx.stdout(completionScript(program, shell as (typeof SHELLS)[number]))
        return ExitCode.ok
      }),
    )

  return program
}

/** Runs the CLI on `argv` (without the node and script paths) and returns the exit code. */
export async function runCli(argv: readonly string[], ctx: CliContext): Promise<number> {
  let code: number = ExitCode.ok
  const program = buildProgram(ctx, (exitCode) => {
    code = exitCode
  })
  try {
    await program.parseAsync([...argv], { from: 'user' })
    return code
  } catch (error) {
    return await report(error, ctx)
  }
}

async function report(error: unknown, ctx: CliContext): Promise<number> {
  if (error instanceof CommanderError) {
    // Commander has already printed its message (or the help).
    if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return ExitCode.ok
    if (error.code === 'commander.help') return ExitCode.usage
    return ExitCode.usage
  }
  if (error instanceof CliError) {
    ctx.stderr(`error: ${oneLine(error.message)}\n`)
    return error.exitCode
  }
  if (ctx.signal.aborted && (error === ctx.signal.reason || (error as Error | null)?.name === 'AbortError')) {
    return interrupted(ctx.signal)
  }
  // An error of the SDK's comes from an action, which has loaded the SDK already.
  const { LockError } = await import('../sdk/internal.ts')
  if (error instanceof LockError) {
    ctx.stderr(`error: ${oneLine(error.message)}\n`)
    return ExitCode.failure
  }
  const message = error instanceof Error ? error.message : String(error)
  ctx.stderr(`error: ${oneLine(message)}\n`)
  return ExitCode.failure
}
