import { createServer, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import type { Cluster } from '../sdk/internal.ts'
import { ApiClient } from './api.ts'

// The store's errors as the command line words them, and `--verbose`.

let server: Server | undefined
let api: ApiClient | undefined

async function serve(
  answer: (response: ServerResponse) => void,
  trace?: (line: string) => void,
): Promise<ApiClient> {
  server = createServer((_request, response) => answer(response))
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const cluster: Cluster = {
    server: url,
    namespace: 'shop',
    context: 'dev',
    kubeConfig: undefined,
    connect: () => ({ server: url, tls: {}, headers: () => ({}) }),
  }
  api = new ApiClient(cluster, { requestTimeout: 5, trace })
  return api
}

afterEach(async () => {
  await api?.close()
  server?.closeAllConnections()
  await new Promise((resolve) => server?.close(resolve))
  server = undefined
})

const status = (code: number, reason: string, message: string) => (response: ServerResponse) => {
  response.writeHead(code, { 'content-type': 'application/json' })
  response.end(JSON.stringify({ kind: 'Status', code, reason, message }))
}

async function failure(api: ApiClient): Promise<string> {
  const error = await api.list('shop', { labelSelector: 'a=b', chunkSize: 0 }).catch((e: unknown) => e)
  return error instanceof Error ? error.message : String(error)
}

describe('ApiClient', () => {
  it('says whose credentials were refused', async () => {
    const client = await serve(status(401, 'Unauthorized', 'Unauthorized'))
    expect(await failure(client)).toBe(
      `the Kubernetes API server at ${client.server} did not accept the credentials of context \`dev\`: log in again or fix the user in the kubeconfig`,
    )
  })

  it('says a selector is not valid', async () => {
    const client = await serve(
      status(400, 'BadRequest', 'unable to parse requirement: invalid label selector'),
    )
    expect(await failure(client)).toBe(
      'the label selector is not valid: unable to parse requirement: invalid label selector',
    )
  })

  it('names status, reason and message of other refusals, on one line', async () => {
    const client = await serve(status(503, 'ServiceUnavailable', 'etcd is down\nretry later'))
    expect(await failure(client)).toBe(
      `the Kubernetes API server at ${client.server} answered 503 ServiceUnavailable to list leases in namespace \`shop\`: etcd is down; retry later`,
    )
  })

  it('asks whether a server that does not answer JSON is an API server', async () => {
    const client = await serve((response) => response.end('<html>login</html>'))
    expect(await failure(client)).toBe(
      `the server at ${client.server} did not answer with JSON: is it a Kubernetes API server?`,
    )
  })

  it('traces every request for --verbose', async () => {
    const lines: string[] = []
    const client = await serve(
      (response) => response.end(JSON.stringify({ items: [], metadata: { resourceVersion: '1' } })),
      (line) => lines.push(line),
    )
    await client.list(undefined, { labelSelector: 'a=b', chunkSize: 10 })
    expect(lines).toEqual([
      `GET ${client.server}/apis/coordination.k8s.io/v1/leases?labelSelector=a%3Db&limit=10`,
    ])
  })
})
