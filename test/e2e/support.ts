import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { request as httpsRequest, type RequestOptions } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node'
import { inject } from 'vitest'
import { writeServiceAccountKubeconfig } from '../../dev/cluster/index.ts'
import { E2E_RUN_LABEL } from './global-setup.ts'

/** Admin kubeconfig of the cluster under test (the local control plane or E2E_KUBECONFIG). */
export function kubeconfigPath(): string {
  return inject('kubeconfigPath')
}

export function adminKubeConfig(): KubeConfig {
  const config = new KubeConfig()
  config.loadFromFile(kubeconfigPath())
  return config
}

/**
 * A fresh namespace for one test. On the local control plane namespaces are never finalised
 * (no controller manager), so they stay until the control plane stops; on an existing cluster
 * the global teardown deletes every namespace this run created (they carry the run's label).
 */
export async function createNamespace(prefix = 'e2e'): Promise<string> {
  const name = `${prefix}-${randomBytes(4).toString('hex')}`
  const core = adminKubeConfig().makeApiClient(CoreV1Api)
  const labels = { [E2E_RUN_LABEL]: inject('runId') }
  await core.createNamespace({ body: { metadata: { name, labels } } })
  return name
}

let credentialsDir: string | undefined

/** A kubeconfig that authenticates as service account `namespace/name` (created if missing). */
export function serviceAccountKubeconfig(namespace: string, name: string): Promise<string> {
  if (!credentialsDir) {
    const dir = mkdtempSync(join(tmpdir(), 'kube-locks-e2e-'))
    credentialsDir = dir
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }))
  }
  return writeServiceAccountKubeconfig(
    kubeconfigPath(),
    namespace,
    name,
    join(credentialsDir, `${namespace}-${name}`),
  )
}

export interface WaitOptions {
  /** @default 10_000 */
  readonly timeoutMs?: number
  /** @default 50 */
  readonly intervalMs?: number
}

/**
 * Polls `check` until it returns something other than `undefined`/`false`, or fails with
 * `what` and the last value or error when the deadline passes.
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  options: WaitOptions = {},
): Promise<T> {
  const { timeoutMs = 10_000, intervalMs = 50 } = options
  const deadline = performance.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const value = await check()
      if (value !== undefined && value !== false) return value
      last = value
    } catch (error) {
      last = error
    }
    if (performance.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${String(last)})`)
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}

export interface CommandResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Runs kubectl against the cluster under test; never throws on a non-zero exit. */
export function kubectl(args: readonly string[], kubeconfig = kubeconfigPath()): Promise<CommandResult> {
  return runCommand(inject('kubectlPath'), ['--kubeconfig', kubeconfig, ...args])
}

/** Runs helm against the cluster under test; never throws on a non-zero exit. */
export function helm(args: readonly string[], kubeconfig = kubeconfigPath()): Promise<CommandResult> {
  return runCommand(inject('helmPath'), ['--kubeconfig', kubeconfig, ...args])
}

export function runCommand(command: string, args: readonly string[]): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(command, args, { maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0
      resolve({ code, stdout, stderr })
    })
  })
}

export interface ApiResponse {
  readonly status: number
  /** The parsed JSON body (a Status object for errors). */
  readonly body: {
    reason?: string
    message?: string
    metadata?: { resourceVersion?: string; uid?: string }
  } & Record<string, unknown>
}

/**
 * A raw JSON request to the API server, for tests that pin down what the server itself
 * accepts and answers, with no client library in between.
 */
export async function apiRequest(
  method: string,
  path: string,
  body?: unknown,
  config = adminKubeConfig(),
): Promise<ApiResponse> {
  const server = config.getCurrentCluster()?.server
  if (!server) throw new Error('the kubeconfig has no current cluster')
  const payload = body === undefined ? undefined : JSON.stringify(body)
  // An explicit length: a DELETE body sent chunked is ignored by the API server.
  const headers = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload ?? '') }
  const options: RequestOptions = { method, headers }
  await config.applyToHTTPSOptions(options)
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`${server}${path}`, options, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        text += chunk
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : {} }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(payload)
  })
}
