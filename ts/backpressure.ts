/**
 * Backpressure: callers of `wal.ready()` waiting for the bytes appended and
 * not yet durable to fall below the high-water mark (`maxBufferedBytes`),
 * and when to say that it did (the `'drain'` event).
 *
 * The gate is told the buffered bytes after every flush (the `Wal` reads the
 * live count when the flush notice arrives), so it opens from those reports,
 * like durability waiters, never by polling. Whoever meets the pressure (a
 * `ready()` that must wait, an append refused at the limit) also asks for a
 * flush, so a report follows whatever the sync policy.
 */
import type { WalError } from './errors'
import { KeepAlive } from './keepalive'

interface ReadyWaiter {
  resolve: () => void
  reject: (error: WalError) => void
}

/** Callers of `ready()` waiting for the buffered bytes to fall below the mark. */
export class BufferGate {
  readonly #highWaterMark: number
  #waiting: ReadyWaiter[] = []
  #failure: WalError | undefined
  readonly #keepAlive = new KeepAlive()
  /** A producer met the pressure since the buffer was last below the mark. */
  #pressed = false

  /** @param highWaterMark - `maxBufferedBytes`: below it, `ready()` resolves. */
  constructor(highWaterMark: number) {
    this.#highWaterMark = highWaterMark
  }

  /** True when `bufferedBytes` is below the mark. */
  isBelow(bufferedBytes: number): boolean {
    return bufferedBytes < this.#highWaterMark
  }

  /** Resolves once a flush reports the buffered bytes below the mark; rejects when the log fails or closes first. */
  wait(): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure)
    this.#pressed = true
    this.#keepAlive.hold()
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }))
  }

  /**
   * Takes a flush report. Below the mark, every waiter resolves, and
   * `'drained'` says that a producer had met the pressure since the last time
   * (the caller emits `'drain'`). `'waiting'` says someone still waits above
   * the mark, so the caller asks for another flush: the bytes now buffered
   * were appended after the flush that was asked for, and under some
   * policies nothing else flushes them.
   */
  report(bufferedBytes: number): 'waiting' | 'drained' | 'idle' {
    if (!this.isBelow(bufferedBytes)) return this.#waiting.length > 0 || this.#pressed ? 'waiting' : 'idle'
    for (const waiter of this.#waiting.splice(0)) waiter.resolve()
    this.#keepAlive.release()
    const drained = this.#pressed
    this.#pressed = false
    return drained ? 'drained' : 'idle'
  }

  /** Notes that a producer met the pressure (an append refused at the limit): the next fall below the mark drains. */
  press(): void {
    this.#pressed = true
  }

  /** Rejects every waiter, now and later, with `error`. */
  fail(error: WalError): void {
    this.#failure ??= error
    for (const waiter of this.#waiting.splice(0)) waiter.reject(error)
    this.#keepAlive.release()
  }
}
