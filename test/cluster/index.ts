export { type Binaries, ensureBinaries } from './binaries.ts'
export { ControlPlane, type ControlPlaneOptions } from './control-plane.ts'
export { writeServiceAccountKubeconfig } from './credentials.ts'
export { VERSIONS } from './versions.ts'
