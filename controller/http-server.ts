import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Registry } from 'prom-client'

export interface HealthSource {
  /** `undefined` when ready, else why not (shown in the 503 body). */
  notReadyBecause(): string | undefined
}

/** Splits `host:port` (`:8080`, `0.0.0.0:8080`, `[::1]:8080`); an empty host means every interface. */
export function parseListen(text: string): { host: string | undefined; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text.trim())
  const port = Number(match?.[3])
  if (match === null || !Number.isInteger(port) || port > 65535) {
    throw new Error(
      `Expected \`--listen\` to be host:port (for example \`:8080\` or \`127.0.0.1:8080\`), got \`${text}\``,
    )
  }
  const host = match[1] ?? match[2]
  return { host: host === '' ? undefined : host, port }
}

/**
 * Serves `/metrics` (Prometheus text format), `/healthz` (the process serves requests) and `/readyz`
 * (every namespace in scope has been listed, and the process is not shutting down).
 */
export async function startHttpServer(
  listen: string,
  registry: Registry,
  health: HealthSource,
): Promise<{ readonly server: Server; readonly address: string; close(): Promise<void> }> {
  const { host, port } = parseListen(listen)
  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0]
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD' }).end()
      return
    }
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (error: unknown) => response.writeHead(500).end(`metrics failed: ${String(error)}\n`),
      )
    } else if (path === '/healthz') {
      response.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n')
    } else if (path === '/readyz') {
      const reason = health.notReadyBecause()
      if (reason === undefined) response.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n')
      else response.writeHead(503, { 'content-type': 'text/plain' }).end(`not ready: ${reason}\n`)
    } else {
      response
        .writeHead(404, { 'content-type': 'text/plain' })
        .end('not found: try /metrics, /healthz or /readyz\n')
    }
  })
  server.keepAliveTimeout = 5_000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const bound = server.address() as AddressInfo
  const address = `${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`
  return {
    server,
    address,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
