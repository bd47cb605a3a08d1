/**
 * Promises waiting for records to become durable.
 *
 * The flusher reports the durable LSN once per flush; one report settles
 * every waiter at or below it, however many records the flush carried.
 *
 * Waiters are settled only from those reports (and by `close()`), and never
 * within the callback that delivers one. A settled `write()` typically
 * appends and waits again at once, so settling from a durable LSN read inside
 * `sync()` started the next round within the same microtask drain, which with
 * thousands of writers never ended. Settling in the report's callback is not
 * enough either: Node delivers queued threadsafe-function calls up to a
 * thousand in one go, and the flusher queues the next report while the
 * waiters of the last one run. So a report only records its LSN, and the
 * waiters are settled in the check phase (`setImmediate`), at most
 * `SETTLE_BATCH` per turn of the event loop: timers and I/O callbacks run
 * between two batches, however many writers there are.
 *
 * No waiter is left behind: the flusher publishes a durable LSN before it
 * sends the report carrying it, so whenever the native durable LSN is ahead
 * of what the waiters were settled to, a report is on its way.
 */
import type { WalError } from './errors'
import { KeepAlive } from './keepalive'

interface Waiter {
  lsn: number
  resolve: (durableLsn: number) => void
  reject: (error: WalError) => void
}

/**
 * Waiters settled per turn of the event loop. A settled `write()` usually
 * runs on (appends, requests a sync, waits again) before the loop moves on,
 * at some tens of microseconds each, so a batch holds timers and I/O back
 * for tens of milliseconds at most.
 */
const SETTLE_BATCH = 1000

/** Waiters sorted by LSN, settled as the durable LSN advances. */
export class DurabilityWaiters {
  #waiters: Waiter[] = []
  /** Highest LSN waiters were settled to. */
  #durableLsn: number
  /** Highest LSN reported durable; ahead of `#durableLsn` while `#settling` is scheduled. */
  #reportedLsn: number
  #settling: NodeJS.Immediate | undefined
  #failure: WalError | undefined
  readonly #keepAlive = new KeepAlive()

  constructor(durableLsn: number) {
    this.#durableLsn = durableLsn
    this.#reportedLsn = durableLsn
  }

  /** Resolves once `lsn` is durable; rejects when the log fails or closes first. */
  wait(lsn: number): Promise<number> {
    if (this.#failure) return Promise.reject(this.#failure)
    if (lsn <= this.#durableLsn) return Promise.resolve(this.#durableLsn)
    return new Promise<number>((resolve, reject) => {
      const waiters = this.#waiters
      // Appends are ordered, so new waiters almost always go at the end.
      let index = waiters.length
      while (index > 0 && waiters[index - 1]!.lsn > lsn) index--
      waiters.splice(index, 0, { lsn, resolve, reject })
      this.#keepAlive.hold()
    })
  }

  /** Takes a flush report: the waiters at or below `durableLsn` are settled from this turn's check phase on. */
  report(durableLsn: number): void {
    this.#reportedLsn = Math.max(this.#reportedLsn, durableLsn)
    this.#settling ??= setImmediate(() => this.#settleReported())
  }

  /** Settles a batch of the reported waiters, and the rest in the next turns. */
  #settleReported(): void {
    this.#settling = undefined
    this.advance(this.#reportedLsn, SETTLE_BATCH)
    if ((this.#waiters[0]?.lsn ?? Number.POSITIVE_INFINITY) <= this.#reportedLsn) {
      this.#settling = setImmediate(() => this.#settleReported())
    }
  }

  /**
   * Settles the waiters at or below `durableLsn`, the first `most` of them
   * (default: all, as on close, when no report can follow).
   */
  advance(durableLsn: number, most = Number.POSITIVE_INFINITY): void {
    this.#durableLsn = Math.max(this.#durableLsn, durableLsn)
    const waiters = this.#waiters
    let settled = 0
    while (settled < waiters.length && settled < most && waiters[settled]!.lsn <= durableLsn) settled++
    for (const waiter of waiters.splice(0, settled)) waiter.resolve(durableLsn)
    this.#releaseIfIdle()
  }

  /**
   * The log was cut back to `lastLsn` (`truncateAfter`): the LSNs after it
   * will be handed out again, so the durable LSN moves back, and waiters for
   * records that were cut reject with `error` (their records are gone, durable or not).
   */
  rewind(lastLsn: number, error: WalError): void {
    this.advance(Math.min(this.#reportedLsn, lastLsn))
    const waiters = this.#waiters
    let kept = waiters.length
    while (kept > 0 && waiters[kept - 1]!.lsn > lastLsn) kept--
    for (const waiter of waiters.splice(kept)) waiter.reject(error)
    this.#durableLsn = Math.min(this.#durableLsn, lastLsn)
    this.#reportedLsn = Math.min(this.#reportedLsn, lastLsn)
    this.#releaseIfIdle()
  }

  /** Rejects every waiter, now and later, with `error`; those already reported durable resolve first. */
  fail(error: WalError): void {
    this.advance(this.#reportedLsn)
    this.#failure ??= error
    for (const waiter of this.#waiters.splice(0)) waiter.reject(error)
    this.#releaseIfIdle()
  }

  #releaseIfIdle(): void {
    if (this.#waiters.length === 0) this.#keepAlive.release()
  }
}
