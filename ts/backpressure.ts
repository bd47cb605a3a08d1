/**
 * Backpressure: callers of `wal.ready()` waiting for the bytes appended and
 * not yet durable to fall below the high-water mark (`maxBufferedBytes`).
 *
 * The flusher reports the buffered bytes with every flush notice, so the
 * gate opens from those reports, like durability waiters, never by polling.
 * A caller that has to wait also asks for a flush (see `Wal.ready`), so a
 * report always follows, whatever the sync policy.
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
    this.#keepAlive.hold()
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }))
  }

  /**
   * Takes a flush report: below the mark, every waiter resolves. Returns true
   * when waiters are left (the buffer is still above the mark), so the caller
   * asks for another flush: the bytes now buffered were appended after the
   * flush `ready()` asked for, and under some policies nothing else flushes them.
   */
  report(bufferedBytes: number): boolean {
    if (!this.isBelow(bufferedBytes)) return this.#waiting.length > 0
    for (const waiter of this.#waiting.splice(0)) waiter.resolve()
    this.#keepAlive.release()
    return false
  }

  /** Rejects every waiter, now and later, with `error`. */
  fail(error: WalError): void {
    this.#failure ??= error
    for (const waiter of this.#waiting.splice(0)) waiter.reject(error)
    this.#keepAlive.release()
  }
}
