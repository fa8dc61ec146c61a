#!/usr/bin/env node
import { execFile } from 'node:child_process'
import { homedir } from 'node:os'
import { buildProgram, runCli } from './commands.ts'
import { type CompletionSources, complete, formatCompletion } from './completion.ts'
import type { CliContext } from './session.ts'

// `kubectl_complete-locks`: what kubectl (1.26 and later) runs to complete `kubectl locks …`, with the
// words after `kubectl locks` and the word being completed last. It answers in cobra's `__complete`
// protocol: candidates one a line, then `:<directive>`. Nothing on stdout but that; a failure to reach
// the cluster or kubectl leaves a source's candidates out.

/** A completion that waits on a cluster must not hang the shell. */
const LOOKUP_TIMEOUT_MS = 5_000

const args = process.argv.slice(2)
const ctx = (stdout: (text: string) => void): CliContext => ({
  stdout,
  stderr: () => {},
  env: process.env,
  home: homedir() || undefined,
  now: () => Date.now(),
  monotonic: () => performance.now(),
  signal: AbortSignal.timeout(LOOKUP_TIMEOUT_MS),
  signals: process,
  programName: 'kubectl locks',
})

function kubectl(kubectlArgs: readonly string[]): Promise<string[]> {
  return new Promise((resolve) => {
    execFile('kubectl', [...kubectlArgs], { timeout: LOOKUP_TIMEOUT_MS }, (error, stdout) => {
      resolve(error ? [] : stdout.split('\n').filter((line) => line !== ''))
    })
  })
}

/** Of the cluster flags typed (flag, value pairs), those of `names`, to pass on to kubectl. */
const kubectlFlags = (clusterArgs: readonly string[], names: readonly string[]) =>
  clusterArgs.flatMap((word, i) =>
    i % 2 === 0 && names.includes(word) ? [word, clusterArgs[i + 1] ?? ''] : [],
  )

const sources: CompletionSources = {
  async lockNames(clusterArgs) {
    let out = ''
    const code = await runCli(
      ['list', '-o', 'name', ...clusterArgs],
      ctx((text) => {
        out += text
      }),
    ).catch(() => 1)
    if (code !== 0) return []
    return out
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => line.replace(/^lease\.coordination\.k8s\.io\//, ''))
  },
  async namespaces(clusterArgs) {
    const names = await kubectl([
      'get',
      'namespaces',
      '-o',
      'name',
      ...kubectlFlags(clusterArgs, ['--kubeconfig', '--context']),
    ])
    return names.map((name) => name.replace(/^namespace\//, ''))
  },
  contexts: (clusterArgs) =>
    kubectl(['config', 'get-contexts', '-o', 'name', ...kubectlFlags(clusterArgs, ['--kubeconfig'])]),
}

const program = buildProgram(
  ctx(() => {}),
  () => {},
)
process.stdout.write(formatCompletion(await complete(program, args, sources)))
