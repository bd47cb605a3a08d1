/**
 * The native completion handle is weak so that an idle open log never keeps
 * the process alive. While a promise waits for the flusher, a `KeepAlive`
 * does, so that `await wal.write(...)` or `await wal.ready()` at the top level
 * cannot end the process before its promise settles.
 */

/** Long enough never to fire in practice; its only job is to be a live handle. */
const KEEPALIVE_MS = 2 ** 30

/** Holds the event loop open between `hold()` and `release()`. */
export class KeepAlive {
  #timer: NodeJS.Timeout | undefined

  /** Keeps the event loop alive (idempotent). */
  hold(): void {
    this.#timer ??= setInterval(() => {}, KEEPALIVE_MS)
  }

  /** Lets the event loop end again (idempotent). */
  release(): void {
    if (this.#timer !== undefined) {
      clearInterval(this.#timer)
      this.#timer = undefined
    }
  }
}
