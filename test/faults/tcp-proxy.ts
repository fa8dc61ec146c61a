import { readFileSync, writeFileSync } from 'node:fs'
import { createConnection, createServer, type Server, type Socket } from 'node:net'

/**
 * What the proxy does to traffic:
 * - `pass` — forwards both ways;
 * - `latency` — delays every chunk, both ways, by `latencyMs`;
 * - `blackhole` — forwards nothing, on open and new connections, and closes nothing: requests vanish
 *   and their answers never come;
 * - `reset` — forwards requests to the server, but resets the client's connection as soon as the server
 *   answers: the request may have applied and the client cannot know (an unknown outcome).
 */
export type ProxyMode = 'pass' | 'latency' | 'blackhole' | 'reset'

/**
 * A TCP proxy in this process between one client and the API server. It sees only TLS records (the
 * client verifies the server's certificate for 127.0.0.1 as usual), so faults act on connections and
 * bytes, not on particular requests.
 */
export class TcpProxy {
  mode: ProxyMode = 'pass'
  latencyMs = 0
  /** Client connections reset in `reset` mode. */
  resets = 0
  readonly #server: Server
  readonly #sockets = new Set<Socket>()
  readonly #timers = new Set<ReturnType<typeof setTimeout>>()
  readonly #target: { host: string; port: number }

  private constructor(target: { host: string; port: number }) {
    this.#target = target
    this.#server = createServer((client) => this.#connect(client))
  }

  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    const proxy = new TcpProxy(target)
    await new Promise<void>((resolve, reject) => {
      proxy.#server.once('error', reject)
      proxy.#server.listen(0, '127.0.0.1', () => resolve())
    })
    return proxy
  }

  get port(): number {
    const address = this.#server.address()
    if (typeof address !== 'object' || address === null) throw new Error('the proxy is not listening')
    return address.port
  }

  /** Writes a copy of `kubeconfigPath` whose clusters point at the proxy; returns its path. */
  kubeconfigFor(kubeconfigPath: string, outputPath: string): string {
    const text = readFileSync(kubeconfigPath, 'utf8')
    const proxied = text.replace(/server: https:\/\/[^\s]+/g, `server: https://127.0.0.1:${this.port}`)
    if (proxied === text) throw new Error(`no server URL to replace in ${kubeconfigPath}`)
    writeFileSync(outputPath, proxied, { mode: 0o600 })
    return outputPath
  }

  #connect(client: Socket): void {
    const upstream = createConnection(this.#target)
    this.#sockets.add(client)
    this.#sockets.add(upstream)
    const forget = (socket: Socket) => () => this.#sockets.delete(socket)
    client.once('close', forget(client))
    upstream.once('close', forget(upstream))
    client.on('error', () => upstream.destroy())
    upstream.on('error', () => client.destroy())
    client.on('end', () => upstream.end())
    upstream.on('end', () => client.end())
    client.on('data', (chunk) => this.#forward(chunk, upstream))
    upstream.on('data', (chunk) => {
      if (this.mode === 'reset') {
        this.resets++
        client.resetAndDestroy()
        upstream.destroy()
        return
      }
      this.#forward(chunk, client)
    })
  }

  #forward(chunk: Buffer, to: Socket): void {
    if (this.mode === 'blackhole') return
    if (this.mode === 'latency' && this.latencyMs > 0) {
      const timer = setTimeout(() => {
        this.#timers.delete(timer)
        if (!to.destroyed) to.write(chunk)
      }, this.latencyMs)
      this.#timers.add(timer)
      return
    }
    if (!to.destroyed) to.write(chunk)
  }

  /** Closes the listener and every connection. */
  async close(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer)
    this.#timers.clear()
    for (const socket of this.#sockets) socket.destroy()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}
