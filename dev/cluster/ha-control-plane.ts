import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Binaries, ensureBinaries } from './binaries.ts'
import {
  adminRequest,
  apiserverArgs,
  DIR_PREFIX,
  freePort,
  get,
  kubeconfig,
  postJson,
  removeStaleDirs,
  waitReady,
} from './control-plane.ts'
import { type KeyPair, serviceAccountKeys, TestPki } from './pki.ts'
import { ServerProcess } from './process.ts'
import { PeerLink, RoundRobinFront, socketOwner } from './tcp-relay.ts'

export interface HaControlPlaneOptions {
  /** Members of the etcd cluster (a real raft cluster; 3 tolerates the loss of one). @default 3 */
  readonly etcdMembers?: number
  /** API servers, each storing in every etcd member. @default 2 */
  readonly apiServers?: number
  /** Let etcd fsync its writes. @default false (SIGKILL keeps written data; only a power loss would not) */
  readonly fsync?: boolean
  /** Progress lines (binary builds, start-up). @default no output */
  readonly log?: (line: string) => void
  /** @default found or built by `ensureBinaries()` */
  readonly binaries?: Binaries
}

/**
 * Raft timing: a heartbeat every 200 ms and an election after 2 s without one (etcd's defaults are
 * 100 ms and 1 s). Five processes on a small, shared machine miss 1 s deadlines often enough to
 * hold needless elections; the longer timeout keeps leader changes to the faults the tests inject.
 */
const HEARTBEAT_MS = 200
const ELECTION_MS = 2_000
/** How long a member may take to stop on SIGTERM before it is SIGKILLed. */
const STOP_GRACE_MS = 3_000

/** One etcd member: its process, its client URL, and the link its peers reach it through. */
export interface EtcdMember {
  readonly index: number
  readonly name: string
  readonly process: ServerProcess
  /** `http://127.0.0.1:<port>`: the member's client URL (and gRPC gateway). */
  readonly clientUrl: string
  /** The port the member listens on for peers; they reach it through `link`. */
  readonly peerPort: number
  readonly link: PeerLink
}

/** One kube-apiserver, with a kubeconfig that reaches it directly, bypassing the front. */
export interface ApiServer {
  readonly index: number
  readonly process: ServerProcess
  /** `https://127.0.0.1:<port>` */
  readonly server: string
  readonly kubeconfigPath: string
}

/** What a member says of itself through `POST /v3/maintenance/status`. */
export interface EtcdStatus {
  readonly memberId: string
  readonly leaderId: string
  readonly raftTerm: string
}

/**
 * A highly available control plane on loopback: an etcd cluster of several members (3 by default)
 * and several kube-apiservers (2 by default), each storing in every member, with clients reaching
 * the API servers through a round-robin TCP front, as they would through the `kubernetes` Service.
 * Every process runs like the single control plane's (`setpriv --pdeathsig SIGKILL`, its own process
 * group) and can be stopped, SIGKILLed, paused and started again on its own; an etcd member can also
 * be cut off from its peers (see `PeerLink`): a real network cut of its raft traffic, both ways,
 * while its clients still reach it.
 */
export class HaControlPlane {
  readonly binaries: Binaries
  readonly dir: string
  /** `https://127.0.0.1:<port>`: the front. */
  readonly server: string
  /** Admin kubeconfig through the front. */
  readonly kubeconfigPath: string
  readonly etcd: readonly EtcdMember[]
  readonly apiServers: readonly ApiServer[]
  readonly front: RoundRobinFront
  /** Members cut off from their peers. */
  readonly #isolated = new Set<number>()
  /** Members stopped by SIGSTOP. */
  readonly #paused = new Set<number>()
  readonly #ca: KeyPair
  readonly #admin: KeyPair

  private constructor(init: {
    binaries: Binaries
    dir: string
    etcd: EtcdMember[]
    apiServers: ApiServer[]
    front: RoundRobinFront
    kubeconfigPath: string
    ca: KeyPair
    admin: KeyPair
  }) {
    this.binaries = init.binaries
    this.dir = init.dir
    this.etcd = init.etcd
    this.apiServers = init.apiServers
    this.front = init.front
    this.server = `https://127.0.0.1:${init.front.port}`
    this.kubeconfigPath = init.kubeconfigPath
    this.#ca = init.ca
    this.#admin = init.admin
  }

  static async start(options: HaControlPlaneOptions = {}): Promise<HaControlPlane> {
    const log = options.log ?? (() => {})
    const members = options.etcdMembers ?? 3
    const servers = options.apiServers ?? 2
    if (!Number.isInteger(members) || members < 1)
      throw new Error(`Expected etcdMembers >= 1, got ${members}`)
    if (!Number.isInteger(servers) || servers < 1) throw new Error(`Expected apiServers >= 1, got ${servers}`)
    const binaries = options.binaries ?? (await ensureBinaries(log))
    removeStaleDirs()
    const dir = await mkdtemp(join(tmpdir(), `${DIR_PREFIX}${process.pid}-ha-`))
    const links: PeerLink[] = []
    let front: RoundRobinFront | undefined
    try {
      const pkiDir = join(dir, 'pki')
      await mkdir(pkiDir)
      const pki = await TestPki.create(pkiDir)
      const serving = await pki.serving('apiserver')
      const admin = await pki.client('admin', 'kube-locks-admin', ['system:masters'])
      const sa = serviceAccountKeys()
      await writeFile(join(pkiDir, 'sa.pub'), sa.publicKey)
      await writeFile(join(pkiDir, 'sa.key'), sa.privateKey, { mode: 0o600 })

      // The links first: their ports are the members' advertised peer URLs.
      const holder: { plane?: HaControlPlane } = {}
      const peerPorts: number[] = []
      for (let i = 0; i < members; i++) {
        const peerPort = await freePort()
        peerPorts.push(peerPort)
        links.push(
          await PeerLink.start(
            peerPort,
            (from, to) => (holder.plane ? holder.plane.#memberOf(from, to) : Promise.resolve(undefined)),
            (from) => (holder.plane ? holder.plane.#blocked(i, from) : false),
          ),
        )
      }
      const names = links.map((_, i) => `m${i}`)
      const initialCluster = links.map((link, i) => `${names[i]}=http://127.0.0.1:${link.port}`).join(',')
      const token = `kube-locks-${randomBytes(4).toString('hex')}`
      const etcd: EtcdMember[] = []
      for (let i = 0; i < members; i++) {
        const name = names[i] as string
        const clientUrl = `http://127.0.0.1:${await freePort()}`
        const link = links[i] as PeerLink
        const args = [
          `--name=${name}`,
          `--data-dir=${join(dir, `etcd-${name}`)}`,
          `--listen-client-urls=${clientUrl}`,
          `--advertise-client-urls=${clientUrl}`,
          `--listen-peer-urls=http://127.0.0.1:${peerPorts[i]}`,
          `--initial-advertise-peer-urls=http://127.0.0.1:${link.port}`,
          `--initial-cluster=${initialCluster}`,
          '--initial-cluster-state=new',
          `--initial-cluster-token=${token}`,
          `--heartbeat-interval=${HEARTBEAT_MS}`,
          `--election-timeout=${ELECTION_MS}`,
          '--log-level=warn',
          ...(options.fsync ? [] : ['--unsafe-no-fsync']),
        ]
        const proc = new ServerProcess(`etcd ${name}`, binaries.etcd, args, join(dir, `etcd-${name}.log`))
        etcd.push({ index: i, name, process: proc, clientUrl, peerPort: peerPorts[i] as number, link })
      }
      const apiServers: ApiServer[] = []
      for (let i = 0; i < servers; i++) {
        const port = await freePort()
        const server = `https://127.0.0.1:${port}`
        const args = apiserverArgs({
          etcdServers: etcd.map((m) => m.clientUrl),
          port,
          dir,
          certDir: `apiserver-${i}-certs`,
          pkiDir,
          pki,
          serving,
          // Both servers advertise 127.0.0.1; the endpoint reconciler would have them rewrite the
          // `kubernetes` Endpoints' port in turn forever. Nothing here routes through that Service.
          extra: ['--endpoint-reconciler-type=none'],
        })
        const proc = new ServerProcess(
          `kube-apiserver ${i}`,
          binaries.kubeApiserver,
          args,
          join(dir, `kube-apiserver-${i}.log`),
        )
        const kubeconfigPath = join(dir, `kubeconfig-apiserver-${i}`)
        await writeFile(
          kubeconfigPath,
          kubeconfig(server, pki.ca.cert, 'kube-locks-admin', { cert: admin }),
          {
            mode: 0o600,
          },
        )
        apiServers.push({ index: i, process: proc, server, kubeconfigPath })
      }
      front = await RoundRobinFront.start(apiServers.map((a) => Number(new URL(a.server).port)))
      const kubeconfigPath = join(dir, 'kubeconfig')
      await writeFile(
        kubeconfigPath,
        kubeconfig(`https://127.0.0.1:${front.port}`, pki.ca.cert, 'kube-locks-admin', { cert: admin }),
        { mode: 0o600 },
      )
      const plane = new HaControlPlane({
        binaries,
        dir,
        etcd,
        apiServers,
        front,
        kubeconfigPath,
        ca: pki.ca,
        admin,
      })
      holder.plane = plane
      try {
        log(`starting ${members} etcd members`)
        await Promise.all(etcd.map((m) => plane.startEtcdMember(m.index)))
        log(`starting ${servers} kube-apiservers`)
        await Promise.all(apiServers.map((a) => plane.startApiServer(a.index)))
      } catch (error) {
        await plane.stop()
        throw error
      }
      return plane
    } catch (error) {
      await front?.close()
      await Promise.all(links.map((link) => link.close()))
      await rm(dir, { recursive: true, force: true })
      throw error
    }
  }

  /** Starts member `index` (again, keeping its data) and waits until it is healthy (it has a leader). */
  async startEtcdMember(index: number): Promise<void> {
    const member = this.#member(index)
    member.process.start()
    await this.#waitReady(member.process, () =>
      get(`${member.clientUrl}/health`).then((r) => r.body.includes('"true"')),
    )
  }

  /** Stops (`stop`: SIGTERM) or SIGKILLs (`kill`) member `index`, then starts it again. */
  async restartEtcdMember(index: number, how: 'stop' | 'kill' = 'stop'): Promise<void> {
    const { process: proc } = this.#member(index)
    await (how === 'kill' ? proc.kill() : proc.stop())
    await this.startEtcdMember(index)
  }

  /**
   * Cuts member `index` off from its peers: its raft connections, both ways, are reset and new ones
   * refused until `healEtcdMember`. Its clients (the API servers) still reach it.
   */
  isolateEtcdMember(index: number): void {
    this.#member(index)
    this.#isolated.add(index)
    for (const member of this.etcd) member.link.enforce()
  }

  healEtcdMember(index: number): void {
    this.#isolated.delete(index)
  }

  /** SIGSTOPs member `index`: it keeps its connections and answers nothing until `resumeEtcdMember`. */
  async pauseEtcdMember(index: number): Promise<void> {
    this.#paused.add(index)
    await this.#member(index).process.pause()
  }

  async resumeEtcdMember(index: number): Promise<void> {
    await this.#member(index).process.resume()
    this.#paused.delete(index)
  }

  /** What member `index` says of itself and its leader. */
  async etcdStatus(index: number): Promise<EtcdStatus> {
    const res = await postJson(`${this.#member(index).clientUrl}/v3/maintenance/status`, {})
    if (res.status !== 200)
      throw new Error(`etcd ${this.#member(index).name} status: ${res.status} ${res.body}`)
    const body = JSON.parse(res.body) as {
      header?: { member_id?: string }
      leader?: string
      raftTerm?: string
    }
    return {
      memberId: body.header?.member_id ?? '',
      leaderId: body.leader ?? '0',
      raftTerm: body.raftTerm ?? '0',
    }
  }

  /** The members as the cluster lists them (`POST /v3/cluster/member/list` on any reachable member). */
  async etcdMemberList(): Promise<{ id: string; name: string; peerUrls: string[]; clientUrls: string[] }[]> {
    let last: unknown
    for (const member of this.etcd) {
      if (!member.process.running) continue
      try {
        const res = await postJson(`${member.clientUrl}/v3/cluster/member/list`, { linearizable: true })
        if (res.status !== 200) throw new Error(`${res.status} ${res.body}`)
        const body = JSON.parse(res.body) as {
          members?: { ID: string; name: string; peerURLs?: string[]; clientURLs?: string[] }[]
        }
        return (body.members ?? []).map((m) => ({
          id: m.ID,
          name: m.name,
          peerUrls: m.peerURLs ?? [],
          clientUrls: m.clientURLs ?? [],
        }))
      } catch (error) {
        last = error
      }
    }
    throw new Error(`no etcd member answered the member list (last error: ${String(last)})`)
  }

  /**
   * The index of the etcd leader, once every running member that is neither cut off nor paused (a
   * majority of them, at least) names the same leader among themselves; waits for that until
   * `timeoutMs`.
   */
  async etcdLeader(timeoutMs = 30_000): Promise<number> {
    const deadline = performance.now() + timeoutMs
    let last = 'no answer yet'
    for (;;) {
      const voters = this.etcd.filter(
        (m) => m.process.running && !this.#isolated.has(m.index) && !this.#paused.has(m.index),
      )
      try {
        const statuses = await Promise.all(voters.map((m) => this.etcdStatus(m.index)))
        const leaders = new Set(statuses.map((s) => s.leaderId))
        const [leaderId] = leaders
        const leader = statuses.findIndex((s) => s.memberId === leaderId)
        if (leaders.size === 1 && leader >= 0 && voters.length > this.etcd.length / 2) {
          return (voters[leader] as EtcdMember).index
        }
        last = voters.map((m, i) => `${m.name}: leader ${statuses[i]?.leaderId}`).join(', ')
      } catch (error) {
        last = String(error)
      }
      if (performance.now() >= deadline)
        throw new Error(`no etcd leader agreed within ${timeoutMs} ms (${last})`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }

  /** Starts API server `index` (again) and waits for its `/readyz`. */
  async startApiServer(index: number): Promise<void> {
    const api = this.#apiServer(index)
    api.process.start()
    await this.#waitReady(api.process, () =>
      this.request('GET', '/readyz', undefined, index).then((r) => r.status === 200),
    )
  }

  async restartApiServer(index: number, how: 'stop' | 'kill' = 'stop'): Promise<void> {
    const { process: proc } = this.#apiServer(index)
    await (how === 'kill' ? proc.kill() : proc.stop())
    await this.startApiServer(index)
  }

  /** An admin request through the front, or to API server `apiServer` directly. */
  request(
    method: string,
    path: string,
    body?: unknown,
    apiServer?: number,
  ): Promise<{ status: number; body: string }> {
    const server = apiServer === undefined ? this.server : this.#apiServer(apiServer).server
    return adminRequest(server, this.#ca, this.#admin, method, path, body)
  }

  /** Process ids of every server of this plane that is running. */
  pids(): number[] {
    return [...this.etcd.map((m) => m.process.pid), ...this.apiServers.map((a) => a.process.pid)].filter(
      (pid): pid is number => pid !== undefined,
    )
  }

  /** Stops the API servers, then the etcd members, closes the front and links, removes every file. */
  async stop(): Promise<void> {
    await Promise.all(this.apiServers.map((a) => a.process.stop()))
    // A member told to stop hands its leadership on first; with its peers stopping too there is no
    // one to take it, and it would wait out the whole grace. Nothing of the data is kept anyway.
    await Promise.all(this.etcd.map((m) => m.process.stop(STOP_GRACE_MS)))
    await this.front.close()
    await Promise.all(this.etcd.map((m) => m.link.close()))
    await rm(this.dir, { recursive: true, force: true })
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop()
  }

  /** Whether link `link` must refuse a connection opened by member `from`. */
  #blocked(link: number, from: number | undefined): boolean {
    if (this.#isolated.has(link)) return true
    return from === undefined ? this.#isolated.size > 0 : this.#isolated.has(from)
  }

  #memberOf(from: number, to: number): Promise<number | 'closed' | undefined> {
    return socketOwner(
      from,
      to,
      this.etcd.map((m) => (m.process.running ? m.process.pid : undefined)),
    )
  }

  #member(index: number): EtcdMember {
    const member = this.etcd[index]
    if (!member) throw new Error(`no etcd member ${index} (there are ${this.etcd.length})`)
    return member
  }

  #apiServer(index: number): ApiServer {
    const api = this.apiServers[index]
    if (!api) throw new Error(`no API server ${index} (there are ${this.apiServers.length})`)
    return api
  }

  #waitReady(server: ServerProcess, ready: () => Promise<boolean>): Promise<void> {
    const all = [...this.etcd.map((m) => m.process), ...this.apiServers.map((a) => a.process)]
    return waitReady(server, ready, all, 15)
  }
}
