export { type Binaries, ensureBinaries } from './binaries.ts'
export { ControlPlane, type ControlPlaneOptions } from './control-plane.ts'
export { writeServiceAccountKubeconfig } from './credentials.ts'
export {
  type ApiServer,
  type EtcdMember,
  type EtcdStatus,
  HaControlPlane,
  type HaControlPlaneOptions,
} from './ha-control-plane.ts'
export { VERSIONS } from './versions.ts'
