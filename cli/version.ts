import { dumpYaml, type ServerVersionInfo } from '../sdk/internal.ts'
import { type ClientVersion, clientVersion } from './client-version.ts'
import { CliError, oneLine } from './errors.ts'
import { ExitCode } from './exit-codes.ts'
import { type CliContext, type CommonFlags, Session } from './session.ts'

// `locks version`, as `kubectl version`: the client's version, then the server's when it answers. An
// unreachable server still leaves the client's version on stdout, then says why on stderr and exits 1.

export interface VersionFlags extends CommonFlags {
  readonly client?: boolean
  readonly output?: 'json' | 'yaml'
}

export async function versionCommand(ctx: CliContext, flags: VersionFlags): Promise<number> {
  const client = clientVersion()
  if (flags.client) {
    ctx.stdout(render({ clientVersion: client }, flags.output))
    return ExitCode.ok
  }
  let server: ServerVersionInfo | undefined
  let failure: unknown
  try {
    await using session = new Session(ctx, flags)
    server = await session.api.serverVersion(ctx.signal)
  } catch (error) {
    if (ctx.signal.aborted) throw error
    failure = error
  }
  ctx.stdout(render({ clientVersion: client, ...(server ? { serverVersion: server } : {}) }, flags.output))
  if (failure === undefined) return ExitCode.ok
  if (failure instanceof CliError || failure instanceof Error) {
    ctx.stderr(`error: ${oneLine(failure.message)}\n`)
    return failure instanceof CliError ? failure.exitCode : ExitCode.failure
  }
  throw failure
}

interface Versions {
  readonly clientVersion: ClientVersion
  readonly serverVersion?: ServerVersionInfo
}

function render(versions: Versions, output: VersionFlags['output']): string {
  if (output === 'json') return `${JSON.stringify(versions, null, 2)}\n`
  if (output === 'yaml') return dumpYaml(versions)
  return (
    `Client Version: ${versions.clientVersion.gitVersion}\n` +
    (versions.serverVersion ? `Server Version: ${versions.serverVersion.gitVersion || '<unknown>'}\n` : '')
  )
}
