/**
 * How tails learn that there may be new durable records: the flush report
 * callback rings the bell. Kept out of the modules the public declarations
 * load, because its `#` field would need an ES2015 target there.
 */

/**
 * Wakes every follower at the next flush report, failure or close. Waiting
 * costs one shared promise, however many followers there are.
 */
export class FollowerBell {
  #next: { promise: Promise<void>; ring: () => void } | undefined

  /** A promise that resolves at the next `ring()`. */
  next(): Promise<void> {
    if (this.#next === undefined) {
      let ring!: () => void
      const promise = new Promise<void>((resolve) => (ring = resolve))
      this.#next = { promise, ring }
    }
    return this.#next.promise
  }

  /** Wakes everyone waiting. */
  ring(): void {
    const next = this.#next
    this.#next = undefined
    next?.ring()
  }
}
