import { readdirSync, rmSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Binaries, ensureBinaries } from './binaries.ts'
import { writeServiceAccountKubeconfig } from './credentials.ts'
import { type KeyPair, serviceAccountKeys, TestPki } from './pki.ts'
import { isAlive, ServerProcess } from './process.ts'

export interface ControlPlaneOptions {
  /**
   * Let etcd fsync its writes, for tests that crash etcd and expect acknowledged writes to survive.
   * @default false (faster; a SIGKILLed etcd may lose its last writes)
   */
  readonly fsync?: boolean
  /**
   * etcd's automatic compaction, for tests that need watches to outrun etcd's history.
   * `'5s'` compacts every five seconds (`--auto-compaction-mode=periodic`).
   * @default undefined (no compaction besides the API server's own every 5 minutes)
   */
  readonly etcdCompaction?: string
  /** Progress lines (binary builds, start-up). @default no output */
  readonly log?: (line: string) => void
  /** @default found or built by `ensureBinaries()` */
  readonly binaries?: Binaries
}

export const DIR_PREFIX = 'kube-locks-cp-'
const READY_TIMEOUT_MS = 90_000

/**
 * A real etcd and kube-apiserver as local processes, the way controller-runtime's envtest
 * runs them: no kubelet, no controller manager, so namespaces are never finalised and pods
 * never run. The API server authorises with RBAC; the admin credentials are a client
 * certificate in `system:masters`.
 */
export class ControlPlane {
  readonly binaries: Binaries
  readonly dir: string
  /** `https://127.0.0.1:<port>` */
  readonly server: string
  /** A kubeconfig with admin credentials. */
  readonly kubeconfigPath: string
  readonly etcd: ServerProcess
  readonly apiserver: ServerProcess
  private readonly pki: TestPki
  private readonly admin: KeyPair
  /** `http://127.0.0.1:<port>`: etcd's client URL, for tests that act on the storage directly. */
  readonly etcdUrl: string

  private constructor(init: {
    binaries: Binaries
    dir: string
    server: string
    kubeconfigPath: string
    etcd: ServerProcess
    apiserver: ServerProcess
    pki: TestPki
    admin: KeyPair
    etcdUrl: string
  }) {
    this.binaries = init.binaries
    this.dir = init.dir
    this.server = init.server
    this.kubeconfigPath = init.kubeconfigPath
    this.etcd = init.etcd
    this.apiserver = init.apiserver
    this.pki = init.pki
    this.admin = init.admin
    this.etcdUrl = init.etcdUrl
  }

  static async start(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
    const log = options.log ?? (() => {})
    const binaries = options.binaries ?? (await ensureBinaries(log))
    removeStaleDirs()
    const dir = await mkdtemp(join(tmpdir(), `${DIR_PREFIX}${process.pid}-`))
    try {
      const pkiDir = join(dir, 'pki')
      await mkdir(pkiDir)
      const pki = await TestPki.create(pkiDir)
      const serving = await pki.serving('apiserver')
      const admin = await pki.client('admin', 'kube-locks-admin', ['system:masters'])
      const sa = serviceAccountKeys()
      await writeFile(join(pkiDir, 'sa.pub'), sa.publicKey)
      await writeFile(join(pkiDir, 'sa.key'), sa.privateKey, { mode: 0o600 })

      const [clientPort, peerPort, apiPort] = [await freePort(), await freePort(), await freePort()]
      const etcdUrl = `http://127.0.0.1:${clientPort}`
      const peerUrl = `http://127.0.0.1:${peerPort}`
      const etcd = new ServerProcess(
        'etcd',
        binaries.etcd,
        [
          '--name=default',
          `--data-dir=${join(dir, 'etcd')}`,
          `--listen-client-urls=${etcdUrl}`,
          `--advertise-client-urls=${etcdUrl}`,
          `--listen-peer-urls=${peerUrl}`,
          `--initial-advertise-peer-urls=${peerUrl}`,
          `--initial-cluster=default=${peerUrl}`,
          '--log-level=warn',
          ...(options.fsync ? [] : ['--unsafe-no-fsync']),
          ...(options.etcdCompaction
            ? ['--auto-compaction-mode=periodic', `--auto-compaction-retention=${options.etcdCompaction}`]
            : []),
        ],
        join(dir, 'etcd.log'),
      )
      const server = `https://127.0.0.1:${apiPort}`
      const apiserver = new ServerProcess(
        'kube-apiserver',
        binaries.kubeApiserver,
        apiserverArgs({ etcdServers: [etcdUrl], port: apiPort, dir, pkiDir, pki, serving }),
        join(dir, 'kube-apiserver.log'),
      )
      const kubeconfigPath = join(dir, 'kubeconfig')
      await writeFile(kubeconfigPath, kubeconfig(server, pki.ca.cert, 'kube-locks-admin', { cert: admin }), {
        mode: 0o600,
      })
      const plane = new ControlPlane({
        binaries,
        dir,
        server,
        kubeconfigPath,
        etcd,
        apiserver,
        pki,
        admin,
        etcdUrl,
      })
      try {
        log('starting etcd')
        await plane.startEtcd()
        log('starting kube-apiserver')
        await plane.startApiserver()
      } catch (error) {
        await plane.stop()
        throw error
      }
      return plane
    } catch (error) {
      await rm(dir, { recursive: true, force: true })
      throw error
    }
  }

  /** Starts etcd (again, keeping its data) and waits until it is healthy. */
  async startEtcd(): Promise<void> {
    this.etcd.start()
    await this.waitReady(this.etcd, () =>
      get(`${this.etcdUrl}/health`).then((r) => r.body.includes('"true"')),
    )
  }

  /** Starts the API server (again) and waits for `/readyz`. */
  async startApiserver(): Promise<void> {
    this.apiserver.start()
    await this.waitReady(this.apiserver, () => this.request('GET', '/readyz').then((r) => r.status === 200))
  }

  async restartEtcd(how: 'stop' | 'kill' = 'stop'): Promise<void> {
    await (how === 'kill' ? this.etcd.kill() : this.etcd.stop())
    await this.startEtcd()
  }

  async restartApiserver(how: 'stop' | 'kill' = 'stop'): Promise<void> {
    await (how === 'kill' ? this.apiserver.kill() : this.apiserver.stop())
    await this.startApiserver()
  }

  /**
   * A kubeconfig that authenticates as `user` in `groups` (a client certificate), for RBAC
   * tests. The user has no rights until a (Cluster)RoleBinding grants them.
   */
  async userKubeconfig(user: string, groups: readonly string[] = []): Promise<string> {
    const file = safeFileName(`user-${user}`)
    const cert = await this.pki.client(file, user, groups)
    const path = join(this.dir, `${file}.kubeconfig`)
    await writeFile(path, kubeconfig(this.server, this.pki.ca.cert, user, { cert }), { mode: 0o600 })
    return path
  }

  /**
   * A kubeconfig with a token of service account `namespace/name` (created if missing),
   * as a pod running under it would have.
   */
  serviceAccountKubeconfig(namespace: string, name: string, expirationSeconds = 3600): Promise<string> {
    const path = join(this.dir, `${safeFileName(`sa-${namespace}-${name}`)}.kubeconfig`)
    return writeServiceAccountKubeconfig(this.kubeconfigPath, namespace, name, path, expirationSeconds)
  }

  /** An admin request to the API server, for the harness's own needs. */
  request(method: string, path: string, body?: unknown): Promise<{ status: number; body: string }> {
    return adminRequest(this.server, this.pki.ca, this.admin, method, path, body)
  }

  /** Stops both servers and removes every file of this control plane. */
  async stop(): Promise<void> {
    await this.apiserver.stop()
    await this.etcd.stop()
    await rm(this.dir, { recursive: true, force: true })
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop()
  }

  private waitReady(server: ServerProcess, ready: () => Promise<boolean>): Promise<void> {
    return waitReady(server, ready, [this.etcd, this.apiserver], 30)
  }
}

/**
 * Waits until `ready` holds, failing at the deadline or when `server` exits, with the tail of the
 * logs of `servers`.
 */
export async function waitReady(
  server: ServerProcess,
  ready: () => Promise<boolean>,
  servers: readonly ServerProcess[],
  logLines: number,
): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS
  let last: unknown
  while (Date.now() < deadline) {
    if (!server.running) break
    try {
      if (await ready()) return
    } catch (error) {
      last = error
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  const why = server.running ? `not ready within ${READY_TIMEOUT_MS / 1000}s` : 'exited'
  const logs = servers.map((p) => `--- ${p.name} log (${p.logFile}) ---\n${p.logTail(logLines)}`).join('\n')
  throw new Error(`${server.name} ${why}${last ? ` (last error: ${String(last)})` : ''}\n${logs}`)
}

type Credentials = { cert: KeyPair } | { token: string }

export function kubeconfig(
  server: string,
  ca: string,
  user: string,
  credentials: Credentials,
  namespace = 'default',
): string {
  const b64 = (text: string) => Buffer.from(text).toString('base64')
  const auth =
    'cert' in credentials
      ? `    client-certificate-data: ${b64(credentials.cert.cert)}\n    client-key-data: ${b64(credentials.cert.key)}`
      : `    token: ${credentials.token}`
  return `apiVersion: v1
kind: Config
clusters:
- name: kube-locks-test
  cluster:
    server: ${server}
    certificate-authority-data: ${b64(ca)}
users:
- name: ${JSON.stringify(user)}
  user:
${auth}
contexts:
- name: kube-locks-test
  context:
    cluster: kube-locks-test
    user: ${JSON.stringify(user)}
    namespace: ${namespace}
current-context: kube-locks-test
`
}

/** A port that was free a moment ago; the servers bind it right after. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      )
    })
  })
}

export function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { timeout: 5_000 }, (res) => collect(res, resolve, reject))
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)))
    req.on('error', reject)
    req.end()
  })
}

/** The arguments of a kube-apiserver on `port` that stores in `etcdServers`. */
export function apiserverArgs(init: {
  readonly etcdServers: readonly string[]
  readonly port: number
  /** The control plane's folder; the server's own certificates go to `<dir>/<certDir>`. */
  readonly dir: string
  readonly certDir?: string
  readonly pkiDir: string
  readonly pki: TestPki
  readonly serving: KeyPair
  readonly extra?: readonly string[]
}): string[] {
  const { pkiDir, pki, serving } = init
  return [
    `--etcd-servers=${init.etcdServers.join(',')}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    `--secure-port=${init.port}`,
    `--cert-dir=${join(init.dir, init.certDir ?? 'apiserver-certs')}`,
    `--tls-cert-file=${serving.certFile}`,
    `--tls-private-key-file=${serving.keyFile}`,
    `--client-ca-file=${pki.ca.certFile}`,
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    `--service-account-key-file=${join(pkiDir, 'sa.pub')}`,
    `--service-account-signing-key-file=${join(pkiDir, 'sa.key')}`,
    '--service-cluster-ip-range=10.0.0.0/24',
    '--authorization-mode=RBAC',
    '--disable-admission-plugins=ServiceAccount',
    '--allow-privileged=true',
    ...(init.extra ?? []),
  ]
}

/** A request with the admin's client certificate to the API server at `server`. */
export function adminRequest(
  server: string,
  ca: KeyPair,
  admin: KeyPair,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: string }> {
  const payload = body === undefined ? undefined : JSON.stringify(body)
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      `${server}${path}`,
      {
        method,
        ca: ca.cert,
        cert: admin.cert,
        key: admin.key,
        headers: payload ? { 'content-type': 'application/json' } : {},
        timeout: 10_000,
      },
      (res) => collect(res, resolve, reject),
    )
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)))
    req.on('error', reject)
    req.end(payload)
  })
}

/** A JSON POST over plain HTTP (etcd's gRPC gateway). */
export function postJson(url: string, body: unknown): Promise<{ status: number; body: string }> {
  const payload = JSON.stringify(body)
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method: 'POST', headers: { 'content-type': 'application/json' }, timeout: 5_000 },
      (res) => collect(res, resolve, reject),
    )
    req.on('timeout', () => req.destroy(new Error(`POST ${url} timed out`)))
    req.on('error', reject)
    req.end(payload)
  })
}

function collect(
  res: import('node:http').IncomingMessage,
  resolve: (value: { status: number; body: string }) => void,
  reject: (error: Error) => void,
): void {
  let body = ''
  res.setEncoding('utf8')
  res.on('data', (chunk: string) => {
    body += chunk
  })
  res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
  res.on('error', reject)
}

export function safeFileName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '_')
}

/**
 * Removes the folders of control planes whose process is gone (killed before it could
 * clean up); the servers themselves died with it (see ServerProcess).
 */
export function removeStaleDirs(): void {
  for (const entry of readdirSync(tmpdir())) {
    if (!entry.startsWith(DIR_PREFIX)) continue
    const pid = Number(entry.slice(DIR_PREFIX.length).split('-')[0])
    if (Number.isInteger(pid) && !isAlive(pid))
      rmSync(join(tmpdir(), entry), { recursive: true, force: true })
  }
}
