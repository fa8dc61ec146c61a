import { type Command, Option } from 'commander'
import { parseDuration, parseSeconds } from './duration.ts'
import { UsageError } from './errors.ts'
import { DEFAULT_REQUEST_TIMEOUT, type OutputFormat } from './flags.ts'

// How the command tree's flags parse their values, and the flags every command that talks to the
// cluster shares. A bad value is a usage error (exit 2) that names the flag, before anything runs.

export function secondsOption(flag: string, limits: Parameters<typeof parseSeconds>[1]) {
  return (value: string) => {
    const parsed = parseSeconds(value, limits)
    if (typeof parsed === 'string') throw new UsageError(`${flag}: ${parsed}`)
    return parsed
  }
}

function durationOption(flag: string) {
  return (value: string) => {
    const parsed = parseDuration(value)
    if (typeof parsed === 'string') throw new UsageError(`${flag}: ${parsed}`)
    return parsed
  }
}

export function integerOption(flag: string) {
  return (value: string) => {
    if (!/^[0-9]+$/.test(value))
      throw new UsageError(`${flag}: expected a whole number >= 0, got \`${value}\``)
    return Number(value)
  }
}

/** A whole number from `min` to `max`, as `--limit` takes. */
export function wholeNumberOption(flag: string, limits: { readonly min: number; readonly max: number }) {
  return (value: string) => {
    const number = /^[0-9]+$/.test(value) ? Number(value) : Number.NaN
    if (!(number >= limits.min && number <= limits.max)) {
      throw new UsageError(
        `${flag}: expected a whole number from ${limits.min} to ${limits.max}, got \`${value}\``,
      )
    }
    return number
  }
}

export function outputOption(allowed: readonly OutputFormat[]) {
  return new Option('-o, --output <format>', `output format: ${allowed.join('|')}`)
    .choices([...allowed])
    .default('table')
}

/** Options every command that talks to the cluster has, as in kubectl. */
export function withClusterOptions(command: Command): Command {
  return command
    .option('--kubeconfig <file>', 'path to the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)')
    .option('--context <name>', 'the kubeconfig context to use')
    .option('-n, --namespace <namespace>', "namespace of the locks (default: the context's, else `default`)")
    .addOption(
      new Option(
        '--request-timeout <duration>',
        'how long to wait for each API request, as kubectl: `30` (seconds), `30s`, `1m`, `1h2m3s`; 0 waits as long as the connection lives',
      )
        .argParser(durationOption('--request-timeout'))
        .default(DEFAULT_REQUEST_TIMEOUT),
    )
    .addOption(
      new Option(
        '-v, --v [level]',
        `log to stderr at this level, as kubectl: ${LOG_LEVELS}; \`-v\` alone is -v 6`,
      )
        .argParser(levelOption)
        .preset('6'),
    )
    .option('--verbose', 'the same as -v 6: log each API request to stderr')
}

const LOG_LEVELS = '6 and up each API request with its status and duration'

/** `-v 6`, `-v=6`, `--v=6`, `-v6`: a whole number from 0 to 10, as kubectl's levels. */
function levelOption(value: string): number {
  const text = value.startsWith('=') ? value.slice(1) : value
  if (!/^[0-9]+$/.test(text) || Number(text) > 10) {
    throw new UsageError(`-v: expected a log level from 0 to 10, got \`${value}\``)
  }
  return Number(text)
}

export function examples(lines: readonly string[]): string {
  return `\nExamples:\n${lines.map((line) => (line.startsWith('#') ? `  ${line}` : `  $ ${line}`)).join('\n')}\n`
}
