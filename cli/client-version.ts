import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

// The client's version, read from the package's own package.json: no SDK, no client library, so that
// `locks --version` answers as fast as `locks --help`.

const PACKAGE_NAME = 'kube-locks'

/** What `locks version` prints of the client, with kubectl's field names. */
export interface ClientVersion {
  readonly major: string
  readonly minor: string
  /** `v` and the package version, as Kubernetes writes its own (`v1.35.0`). */
  readonly gitVersion: string
  readonly platform: string
}

/**
 * The version of the kube-locks package this file belongs to: the nearest package.json named
 * `kube-locks` above it (cli/ in a checkout, dist/cli/ once built).
 */
export function clientVersion(from: string = import.meta.url): ClientVersion {
  let dir = dirname(fileURLToPath(from))
  for (;;) {
    const path = join(dir, 'package.json')
    if (existsSync(path)) {
      const json = JSON.parse(readFileSync(path, 'utf8')) as { name?: unknown; version?: unknown }
      if (json.name === PACKAGE_NAME && typeof json.version === 'string') return versionOf(json.version)
    }
    const parent = dirname(dir)
    if (parent === dir) return versionOf('0.0.0')
    dir = parent
  }
}

function versionOf(version: string): ClientVersion {
  const [major = '0', minor = '0'] = version.split('.')
  return { major, minor, gitVersion: `v${version}`, platform: `${process.platform}/${process.arch}` }
}

/** What `locks --version` prints: the client's version alone. */
export function clientVersionLine(): string {
  return `Client Version: ${clientVersion().gitVersion}\n`
}
