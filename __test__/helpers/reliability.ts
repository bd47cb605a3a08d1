/**
 * The knobs every randomized harness shares (shared/RELIABILITY.md): the
 * seed (`DURAWAL_SEED`, else a fresh one, printed so that a failure can be
 * replayed) and the tier (`DURAWAL_RELIABILITY=full` for the release tier,
 * which may take hours; the per-push tier otherwise). A harness may also
 * take its own count override, for trying the full tier's code path in
 * minutes.
 */

/** The seed of this run: `DURAWAL_SEED` when set, else a fresh random one. */
export const RUN_SEED: number = seedFromEnvironment()

function seedFromEnvironment(): number {
  const given = process.env.DURAWAL_SEED
  if (given === undefined || given === '') return Math.floor(Math.random() * 2 ** 32)
  const seed = Number(given)
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) {
    throw new Error(`DURAWAL_SEED must be an integer from 0 to 2^32 - 1; got ${JSON.stringify(given)}`)
  }
  return seed
}

/** Which tier runs: `DURAWAL_RELIABILITY=full` is the release tier. */
export const FULL_TIER: boolean = process.env.DURAWAL_RELIABILITY === 'full'

/** How to replay this run, for failure messages. */
export const REPLAY_HINT = `seed ${RUN_SEED}; DURAWAL_SEED=${RUN_SEED}${FULL_TIER ? ' DURAWAL_RELIABILITY=full' : ''} replays it`

/**
 * How many iterations a harness runs: the count in the environment variable
 * `override` when set, else the tier's.
 */
export function iterations(override: string, tiers: { push: number; full: number }): number {
  const given = process.env[override]
  if (given === undefined || given === '') return FULL_TIER ? tiers.full : tiers.push
  const count = Number(given)
  if (!Number.isInteger(count) || count < 1) throw new Error(`${override} must be a positive integer; got ${given}`)
  return count
}
