import { clientNode } from './connection.ts'

/**
 * YAML as kubectl prints Kubernetes objects, for a CLI's `-o yaml`: an object with a known
 * `apiVersion` and `kind` goes through that type's serializer (fields the type does not have are
 * dropped); `sortKeys` orders keys alphabetically, as kubectl does. Loads `@kubernetes/client-node` on
 * first use, like the kubeconfig reader.
 */
export function dumpYaml(object: object, options: { readonly sortKeys?: boolean } = {}): string {
  return clientNode().dumpYaml(object, { ...options })
}
