/**
 * Seeded randomness for fault workloads, so that a failed run can be replayed: every random choice of a
 * run (which lock, how long a pause, which fault next) comes from one seed, printed when a test fails.
 * Set `FAULTS_SEED` to replay a run's choices (timing on a loaded machine still varies).
 */

/** The run's seed: `FAULTS_SEED` when set, else a fresh random one. */
export function faultsSeed(env: NodeJS.ProcessEnv = process.env): number {
  const text = env.FAULTS_SEED
  if (text === undefined || text === '') return Math.floor(Math.random() * 2 ** 32)
  const seed = Number(text)
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) {
    throw new Error(`Expected \`FAULTS_SEED\` to be an integer from 0 to 2^32 − 1, got \`${text}\``)
  }
  return seed
}

/** A seed for one part of a run (a worker, the fault schedule), derived from the run's seed and a label. */
export function deriveSeed(seed: number, label: string): number {
  let h = seed >>> 0
  for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193) >>> 0
  return h
}

/** Uniform numbers in [0, 1) from a 32-bit seed (mulberry32). */
export function createRandom(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
  }
}
