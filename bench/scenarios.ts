/**
 * The benchmark's scenarios, one module each under `bench/scenarios/`; `waiting.ts` and `footprint.ts`
 * beside this file are scenarios too, with their own reports.
 */
export {
  CLIENT_GO_DEFAULTS,
  CLIENT_GO_TIGHT,
  type Context,
  candidate,
  type ElectionSettings,
  event,
  ROOT,
  sleep,
  type WorkerKind,
  wallNow,
  worker,
} from './scenarios/common.ts'
export { type CrashSamples, crashClientGo, crashLocks } from './scenarios/crash.ts'
export { handoverClientGo, handoverLocks } from './scenarios/handover.ts'
export { type ScaleResult, scale } from './scenarios/scale.ts'
export { type ThroughputResult, throughput } from './scenarios/throughput.ts'
export { type UncontendedResult, uncontended } from './scenarios/uncontended.ts'
export { type WatchDeliveryResult, watchDelivery } from './scenarios/watch-delivery.ts'
