import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { socketOwner } from './tcp-relay.ts'

const servers: Server[] = []
const sockets: Socket[] = []
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy()
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve))
})

/** A loopback server that keeps every connection it accepts open. */
async function holdingServer(): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => sockets.push(socket))
  servers.push(server)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  if (typeof address !== 'object' || address === null) throw new Error('not listening')
  return { server, port: address.port }
}

/** Connects to `port` and resolves once the server has accepted the connection too. */
async function connect({ server, port }: { server: Server; port: number }): Promise<Socket> {
  const accepted = once(server, 'connection')
  const socket = createConnection({ host: '127.0.0.1', port })
  sockets.push(socket)
  await Promise.all([once(socket, 'connect'), accepted])
  return socket
}

describe.runIf(existsSync('/proc/net/tcp'))('socketOwner', () => {
  it('names the process that holds the connection, and none for a process that does not', async () => {
    const server = await holdingServer()
    const client = await connect(server)
    const port = server.port
    expect(await socketOwner(client.localPort as number, port, [undefined, process.pid])).toBe(1)
    // A process that exists but does not hold the socket: PID 1 (as root its descriptors are readable).
    expect(await socketOwner(client.localPort as number, port, [1])).toBeUndefined()
  })

  it('says "closed" once its opener has closed its end, though the accepting end is still open', async () => {
    const server = await holdingServer()
    const client = await connect(server)
    const from = client.localPort as number
    client.destroy()
    await once(client, 'close')
    expect(await socketOwner(from, server.port, [process.pid])).toBe('closed')
  })
})
