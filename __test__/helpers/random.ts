/**
 * Seeded randomness for the randomized harnesses and their child processes:
 * everything a run draws comes from one 32-bit seed, so the seed a failure
 * prints replays the same choices.
 */

/** A 32-bit mixing step (the murmur3 finalizer), for deriving seeds. */
export function mix32(value: number): number {
  let hash = value >>> 0
  hash = Math.imul(hash ^ (hash >>> 16), 0x85ebca6b)
  hash = Math.imul(hash ^ (hash >>> 13), 0xc2b2ae35)
  return (hash ^ (hash >>> 16)) >>> 0
}

/** mulberry32: a small seeded PRNG returning 32-bit unsigned integers. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let value = Math.imul(state ^ (state >>> 15), 1 | state)
    value = (value + Math.imul(value ^ (value >>> 7), 61 | value)) ^ value
    return (value ^ (value >>> 14)) >>> 0
  }
}

/** An integer from `min` to `max`, both included. */
export function between(random: () => number, min: number, max: number): number {
  return min + (random() % (max - min + 1))
}

/** One of `choices`, each as likely as its weight. */
export function weighted<T>(random: () => number, choices: readonly (readonly [weight: number, value: T])[]): T {
  const total = choices.reduce((sum, [weight]) => sum + weight, 0)
  let roll = random() % total
  for (const [weight, value] of choices) {
    if (roll < weight) return value
    roll -= weight
  }
  throw new Error('weighted() needs at least one choice with a positive weight')
}
