import { readdir, readFile, readlink } from 'node:fs/promises'
import { createConnection, createServer, type Server, type Socket } from 'node:net'

/** Listens on a free loopback port; resolves with the server once it listens. */
async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const address = server.address()
  if (typeof address !== 'object' || address === null) throw new Error('the relay is not listening')
  return address.port
}

/** Joins two sockets both ways; either side closing or failing ends the other. */
function pipeBoth(a: Socket, b: Socket): void {
  a.on('error', () => b.destroy())
  b.on('error', () => a.destroy())
  a.on('close', () => b.destroy())
  b.on('close', () => a.destroy())
  a.pipe(b)
  b.pipe(a)
}

/**
 * A TCP front for several API servers, in the place of the `kubernetes` Service: each new connection
 * goes to the next server in turn. A server that refuses the connection (killed, not started yet) is
 * skipped for the next one, as a load balancer that health-checks its backends would; once the
 * connection is made, its bytes pass untouched (TLS end to end, the client verifies the server's
 * certificate for 127.0.0.1).
 */
export class RoundRobinFront {
  readonly port: number
  /** Connections made to each target, by index. */
  readonly connections: number[]
  readonly #server: Server
  readonly #targets: readonly number[]
  readonly #sockets = new Set<Socket>()
  #next = 0

  private constructor(server: Server, port: number, targets: readonly number[]) {
    this.#server = server
    this.port = port
    this.#targets = targets
    this.connections = targets.map(() => 0)
  }

  static async start(targets: readonly number[]): Promise<RoundRobinFront> {
    const accept: { to?: (client: Socket) => void } = {}
    const server = createServer((client) => accept.to?.(client))
    const front = new RoundRobinFront(server, await listen(server), targets)
    accept.to = (client) => front.#accept(client)
    return front
  }

  #accept(client: Socket): void {
    this.#track(client)
    client.pause()
    client.on('error', () => {})
    const first = this.#next
    this.#next = (this.#next + 1) % this.#targets.length
    const attempt = (tried: number) => {
      if (client.destroyed) return
      if (tried === this.#targets.length) {
        client.destroy()
        return
      }
      const index = (first + tried) % this.#targets.length
      const upstream = createConnection({ host: '127.0.0.1', port: this.#targets[index] as number })
      this.#track(upstream)
      const refused = () => attempt(tried + 1)
      upstream.once('error', refused)
      upstream.once('connect', () => {
        upstream.off('error', refused)
        this.connections[index] = (this.connections[index] ?? 0) + 1
        pipeBoth(client, upstream)
        client.resume()
      })
    }
    attempt(0)
  }

  #track(socket: Socket): void {
    this.#sockets.add(socket)
    socket.once('close', () => this.#sockets.delete(socket))
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}

/**
 * The peer link of one etcd member: the member's advertised peer URL points here, and every byte
 * other members send it, or receive from it over connections they opened, passes through. With one
 * such link per member, all raft traffic crosses a link, and each connection is classified by the
 * process that opened it (its client port is looked up in `/proc/net/tcp` and in the members'
 * file descriptors), so the plane can cut one member off in both directions: its own link and, on
 * the others' links, the connections it opened. A cut resets those connections and refuses new
 * ones, as a firewall rule that rejects would. A connection whose process could not be told is
 * treated as the cut-off member's (cut, at worst, along with it).
 */
export class PeerLink {
  readonly port: number
  /** Connections whose member could not be told; while any member is cut off, they are refused too. */
  unclassified = 0
  readonly #server: Server
  readonly #target: number
  /** Open connections, with the index of the member that opened each (undefined: not a member). */
  readonly #connections = new Map<Socket, { upstream: Socket; from: number | undefined }>()
  readonly #owner: (from: number, to: number) => Promise<number | 'closed' | undefined>
  readonly #blocked: (from: number | undefined) => boolean

  private constructor(
    server: Server,
    port: number,
    target: number,
    owner: (from: number, to: number) => Promise<number | 'closed' | undefined>,
    blocked: (from: number | undefined) => boolean,
  ) {
    this.#server = server
    this.port = port
    this.#target = target
    this.#owner = owner
    this.#blocked = blocked
  }

  /**
   * `owner` names the member whose process holds the connection from local port `from` to port `to`
   * (`'closed'`: its opener has closed it already); `blocked` says whether a connection opened by
   * that member may pass right now.
   */
  static async start(
    target: number,
    owner: (from: number, to: number) => Promise<number | 'closed' | undefined>,
    blocked: (from: number | undefined) => boolean,
  ): Promise<PeerLink> {
    const accept: { to?: (client: Socket) => void } = {}
    const server = createServer((client) => accept.to?.(client))
    const link = new PeerLink(server, await listen(server), target, owner, blocked)
    accept.to = (client) => link.#accept(client)
    return link
  }

  #accept(client: Socket): void {
    client.pause()
    client.on('error', () => {})
    const { remotePort, localPort } = client
    const classify = async () => {
      if (remotePort === undefined || localPort === undefined) return undefined
      return this.#owner(remotePort, localPort).catch(() => undefined)
    }
    classify().then((from) => {
      // A connection its opener gave up on while it was classified (a dial abandoned, a member
      // killed) has no one left to tell apart: it ends here.
      if (from === 'closed' || client.destroyed) {
        client.destroy()
        return
      }
      if (from === undefined) this.unclassified++
      if (this.#blocked(from)) {
        client.resetAndDestroy()
        return
      }
      const upstream = createConnection({ host: '127.0.0.1', port: this.#target })
      this.#connections.set(client, { upstream, from })
      client.once('close', () => this.#connections.delete(client))
      pipeBoth(client, upstream)
      client.resume()
    })
  }

  /** Resets every open connection that `blocked` now refuses. */
  enforce(): void {
    for (const [client, { upstream, from }] of this.#connections) {
      if (!this.#blocked(from)) continue
      client.resetAndDestroy()
      upstream.resetAndDestroy()
    }
  }

  async close(): Promise<void> {
    for (const [client, { upstream }] of this.#connections) {
      client.destroy()
      upstream.destroy()
    }
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}

/**
 * Which of `pids` holds the TCP connection from 127.0.0.1:`from` to 127.0.0.1:`to`: the inode of
 * that socket from `/proc/net/tcp`, then the process whose file descriptors include it. Both ends
 * are matched: one local port serves connections to different destinations at once. `'closed'`:
 * its opener has closed it (or died) already, so no process holds that end any more; `undefined`:
 * it is open, held by none of `pids`.
 */
export async function socketOwner(
  from: number,
  to: number,
  pids: readonly (number | undefined)[],
): Promise<number | 'closed' | undefined> {
  const table = await readFile('/proc/net/tcp', 'utf8')
  const loopback = (port: number) => `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`
  const [local, remote] = [loopback(from), loopback(to)]
  const fields = table
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .find((row) => row[1] === local && row[2] === remote)
  // Closed by its opener, the socket leaves ESTABLISHED (01) for the FIN states, with no inode.
  if (fields === undefined || fields[3] !== '01' || fields[9] === '0') return 'closed'
  const wanted = `socket:[${fields[9]}]`
  for (const [index, pid] of pids.entries()) {
    if (pid === undefined) continue
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])
    for (const fd of fds) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')
      if (target === wanted) return index
    }
  }
  return undefined
}
