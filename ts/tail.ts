/**
 * Following the log: `wal.tail()` yields the durable records from `from` on
 * and then each new one as it becomes durable.
 *
 * It reads through one native cursor for its whole life. The cursor pins
 * the segments it still has to read (retention waits for it) and is
 * extended to the durable LSN after every flush report, going on from where
 * it stopped rather than rescanning.
 */
import type { NativeBatch, NativeReplay } from '../native/binding'
import { checkSignal } from './abort'
import { awaitNative, callNative, WalError } from './errors'
import { KeepAlive } from './keepalive'
import { checkKeys, checkTailStart } from './options'
import { BATCH_BYTES, BATCH_RECORDS, recordsOf, type WalRecord } from './replay'

/** Options of `wal.tail()`. */
export interface TailOptions {
  /**
   * First LSN to yield, an integer from 1 to `MAX_LSN`. Default: the log's
   * first record. An LSN below `firstLsn` (removed by truncation) makes the
   * iterator throw `WAL_TRUNCATED`; one past the end waits for it.
   */
  from?: number
  /** Aborting it ends the iteration (cleanly: the loop just ends). */
  signal?: AbortSignal
}

/** What a tail needs of the log it follows. */
export interface FollowedLog {
  /** A cursor from `from` to the durable LSN now. */
  cursor(from: number): NativeReplay
  /** The log's first LSN now (0 when empty). */
  firstLsn(): number
  /** Its `next()` resolves after the next flush report, failure or close (a `FollowerBell`). */
  readonly bell: { next(): Promise<void> }
  /** True once the log is closed or closing: the tail ends. */
  isClosed(): boolean
  /** Throws the poisoning error, if any. */
  checkHealth(): void
  /** The new last LSN of every `truncateAfter` so far, in order. */
  readonly cuts: readonly number[]
}

/** A promise that resolves when `signal` aborts (never without one), and a way to stop listening. */
function whenAborted(signal: AbortSignal | undefined): { aborted: Promise<void>; stop: () => void } {
  if (signal === undefined) return { aborted: new Promise<void>(() => {}), stop: () => {} }
  let onAbort!: () => void
  const aborted = new Promise<void>((resolve) => {
    onAbort = resolve
    signal.addEventListener('abort', onAbort, { once: true })
  })
  return { aborted, stop: () => signal.removeEventListener('abort', onAbort) }
}

function truncatedUnder(lastKept: number, delivered: number): WalError {
  return new WalError(
    'WAL_TRUNCATED',
    `truncateAfter(${lastKept}) removed records this tail had already yielded or was reading (it had yielded up to LSN ${delivered})`,
    { lsn: lastKept + 1 },
  )
}

/** Yields the durable records of `log` from `from` on, following it until abort or close. */
export async function* follow(
  log: FollowedLog,
  from: number | undefined,
  signal: AbortSignal | undefined,
): AsyncGenerator<WalRecord, void, undefined> {
  const start = from ?? Math.max(1, log.firstLsn())
  const cursor = log.cursor(start)
  // Checked after the cursor pinned `start`: nothing below it goes from now on.
  const first = log.firstLsn()
  if (first > start) {
    callNative(() => cursor.close())
    throw new WalError(
      'WAL_TRUNCATED',
      `records from LSN ${start} to ${first - 1} were removed by truncation before this tail started`,
      { lsn: start },
    )
  }
  // The last LSN yielded (0 before the first): what a cut can take back from this tail.
  let delivered = 0
  let cutsSeen = log.cuts.length
  const keepAlive = new KeepAlive()
  const abort = whenAborted(signal)
  const aborted = (): boolean => signal?.aborted === true
  try {
    for (;;) {
      // Armed before the durable LSN is read, so no report is missed.
      const woken = log.bell.next()
      // The durable LSN moves back only when the log was cut (seen here by
      // a reader in another process, which gets no other word of it).
      const durable = callNative(() => cursor.follow())
      if (durable < delivered) throw truncatedUnder(durable, delivered)
      for (;;) {
        if (aborted()) return
        let batch: NativeBatch | null
        try {
          batch = await awaitNative(() => cursor.next(BATCH_RECORDS, BATCH_BYTES))
        } catch (error) {
          // Reading where a cut was being made fails in whatever way the
          // bytes looked at that moment; the cut is what happened.
          if (log.cuts.length > cutsSeen) throw truncatedUnder(log.cuts.at(-1)!, delivered)
          throw error
        }
        if (batch === null) break
        for (const record of recordsOf(batch)) {
          yield record
          delivered = record.lsn
        }
      }
      if (aborted() || log.isClosed()) return
      keepAlive.hold()
      await Promise.race([woken, abort.aborted])
      keepAlive.release()
      if (aborted() || log.isClosed()) return
      log.checkHealth()
      for (const lastKept of log.cuts.slice(cutsSeen)) {
        if (delivered > lastKept) throw truncatedUnder(lastKept, delivered)
      }
      cutsSeen = log.cuts.length
    }
  } finally {
    keepAlive.release()
    abort.stop()
    callNative(() => cursor.close())
  }
}

/** What a tail reads through: the native side of a `Wal` or of a `WalReader`. */
export interface NativeLog {
  replay(from: number, to: number): NativeReplay
  readonly durableLsn: number
  readonly firstLsn: number
  checkHealth(): void
}

/** `tail(options)` over `native`: the options checked, then `follow`. */
export function tailOf(
  native: NativeLog,
  options: TailOptions,
  watch: Pick<FollowedLog, 'bell' | 'isClosed' | 'cuts'>,
): AsyncIterableIterator<WalRecord> {
  checkKeys('options', options, ['from', 'signal'])
  const from = options.from === undefined ? undefined : checkTailStart(options.from)
  const signal = checkSignal(options.signal)
  return follow(
    {
      cursor: (start) => callNative(() => native.replay(start, native.durableLsn)),
      firstLsn: () => callNative(() => native.firstLsn),
      checkHealth: () => callNative(() => native.checkHealth()),
      ...watch,
    },
    from,
    signal,
  )
}
