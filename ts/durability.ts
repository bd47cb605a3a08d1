/**
 * Promises waiting for records to become durable.
 *
 * The flusher reports the durable LSN once per flush; one report settles
 * every waiter at or below it, however many records the flush carried.
 */
import type { WalError } from './errors'

interface Waiter {
  lsn: number
  resolve: (durableLsn: number) => void
  reject: (error: WalError) => void
}

/**
 * The native completion handle is weak so an idle open log never keeps the
 * process alive; while promises are pending this timer does, so that
 * `await wal.write(...)` at the top level cannot end the process early.
 */
const KEEPALIVE_MS = 2 ** 30

/** Waiters sorted by LSN, settled as the durable LSN advances. */
export class DurabilityWaiters {
  #waiters: Waiter[] = []
  #durableLsn: number
  #failure: WalError | undefined
  #keepAlive: NodeJS.Timeout | undefined

  constructor(durableLsn: number) {
    this.#durableLsn = durableLsn
  }

  /** Highest LSN known durable. */
  get durableLsn(): number {
    return this.#durableLsn
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
      this.#keepAlive ??= setInterval(() => {}, KEEPALIVE_MS)
    })
  }

  /** Settles every waiter at or below `durableLsn`. */
  advance(durableLsn: number): void {
    if (durableLsn <= this.#durableLsn) return
    this.#durableLsn = durableLsn
    const waiters = this.#waiters
    let settled = 0
    while (settled < waiters.length && waiters[settled]!.lsn <= durableLsn) settled++
    for (const waiter of waiters.splice(0, settled)) waiter.resolve(durableLsn)
    this.#releaseIfIdle()
  }

  /** Rejects every waiter, now and later, with `error`. */
  fail(error: WalError): void {
    this.#failure ??= error
    for (const waiter of this.#waiters.splice(0)) waiter.reject(error)
    this.#releaseIfIdle()
  }

  #releaseIfIdle(): void {
    if (this.#waiters.length === 0 && this.#keepAlive !== undefined) {
      clearInterval(this.#keepAlive)
      this.#keepAlive = undefined
    }
  }
}
