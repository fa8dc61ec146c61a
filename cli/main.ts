#!/usr/bin/env node
import { constants, homedir } from 'node:os'
import { basename } from 'node:path'
import { runCli } from './commands.ts'

// The only place that wires process signals: the first one stops waits and watches (and reaches the
// command of `locks run`, which forwards it); a second one ends the CLI at once.
const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']
const controller = new AbortController()
const onSignal = (signal: NodeJS.Signals) => {
  if (controller.signal.aborted && process.listenerCount(signal) <= 1) {
    process.exit(128 + constants.signals[signal])
  }
  controller.abort(signal)
}
for (const signal of STOP_SIGNALS) process.on(signal, onSignal)

// A reader that goes away (`locks list | head`) ends the output, not the CLI with a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error
  })
}

const write = (stream: NodeJS.WriteStream) => (text: string) => {
  stream.write(text)
}

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: write(process.stdout),
  stderr: write(process.stderr),
  env: process.env,
  home: homedir() || undefined,
  now: () => Date.now(),
  monotonic: () => performance.now(),
  signal: controller.signal,
  signals: process,
  // kubectl runs plugins by their file name, kubectl-locks.
  programName: basename(process.argv[1] ?? '').startsWith('kubectl-locks') ? 'kubectl locks' : 'locks',
})
for (const signal of STOP_SIGNALS) process.off(signal, onSignal)
