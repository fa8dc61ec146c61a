import { createServer, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { HttpTransport } from './http.ts'

let server: Server | undefined
let transport: HttpTransport | undefined

async function serve(handler: (response: ServerResponse, url: string) => void): Promise<HttpTransport> {
  server = createServer((request, response) => handler(response, request.url ?? ''))
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  transport = new HttpTransport({
    server: `http://127.0.0.1:${port}`,
    tls: {},
    headers: () => ({ Authorization: 'Bearer t' }),
  })
  return transport
}

afterEach(async () => {
  transport?.close()
  server?.closeAllConnections()
  await new Promise((resolve) => server?.close(resolve))
  server = undefined
})

describe('HttpTransport', () => {
  it('sends JSON with the connection headers and the query, and parses the answer', async () => {
    let seen = ''
    const http = await serve((response, url) => {
      seen = url
      response.writeHead(201, { 'content-type': 'application/json' })
      response.end('{"ok":true}')
    })
    const answer = await http.request('POST', '/x', { query: { a: 'b', none: undefined }, body: { n: 1 } })
    expect(answer).toMatchObject({ status: 201, body: { ok: true } })
    expect(seen).toBe('/x?a=b')
  })

  it('ends a stream when its signal aborts, even while the server keeps it open', async () => {
    const http = await serve((response) => {
      response.writeHead(200)
      response.write('{"a":1}\n')
    })
    const controller = new AbortController()
    const objects: unknown[] = []
    await http.stream('/', { signal: controller.signal }, (object) => {
      objects.push(object)
      controller.abort()
    })
    expect(objects).toEqual([{ a: 1 }])
  })

  it('splits lines across chunks, and rejects a stream cut off mid-way', async () => {
    const http = await serve((response) => {
      response.writeHead(200)
      response.write('{"a":')
      setTimeout(() => {
        response.write('1}\n{"b":2}\n')
        setTimeout(() => response.socket?.destroy(), 20)
      }, 20)
    })
    const objects: unknown[] = []
    await expect(http.stream('/', {}, (object) => objects.push(object))).rejects.toMatchObject({
      code: 'ECONNRESET',
    })
    expect(objects).toEqual([{ a: 1 }, { b: 2 }])
  })

  it('rejects a request its signal aborts with the signal reason', async () => {
    const http = await serve(() => {})
    const reason = new Error('deadline')
    const controller = new AbortController()
    const pending = http.request('GET', '/slow', { signal: controller.signal })
    setTimeout(() => controller.abort(reason), 20)
    await expect(pending).rejects.toBe(reason)
  })
})
