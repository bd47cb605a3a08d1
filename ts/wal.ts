/**
 * The `Wal` class: the public face of the log.
 */
import type { FlushNotice, NativeWal } from '../native/binding'
import { DurabilityWaiters } from './durability'
import { awaitNative, callNative, fromNative, invalidArgument, WalError } from './errors'
import { binding } from './native'
import { checkLsn, normalizeOptions, type WalOptions } from './options'
import { iterateReplay, type WalRecord } from './replay'

/** What `Wal.open` found and did, from `wal.recovery`. */
export interface RecoveryInfo {
  /** Segment files in the log after recovery. */
  segments: number
  /** Records in the log after recovery. */
  records: number
  /** Bytes cut from the end of the last segment (a torn or damaged tail), 0 when none. */
  truncatedBytes: number
  /** Why they were cut, naming file and offset; `null` when nothing was cut. */
  truncatedReason: string | null
  /** Damaged regions skipped (`recovery: 'skip-corrupted'` only). */
  skippedRegions: number
  /** LSNs lost in those regions. */
  skippedRecords: number
  /** Files recovery deleted: a leftover prepared segment, or segments after damage in point-in-time mode. */
  removedFiles: string[]
  /** Files in the directory that are not part of the log; left alone. */
  strayFiles: string[]
  /** How writes reach the disk: `'direct'` (O_DIRECT) or `'buffered'` (page cache + fdatasync). */
  ioMode: 'direct' | 'buffered'
}

/** Counters since open, from `wal.stats()`. */
export interface WalStats {
  /** Data syncs (fdatasync or equivalent) issued by the flusher; with group commit far fewer than records. */
  syncs: number
  /** LSN of the last appended record. */
  lastLsn: number
  /** Highest durable LSN. */
  durableLsn: number
}

/** Per-call options of `write`. */
export interface WriteOptions {
  /**
   * `true`: wait until the record is durable (requesting a sync now);
   * `false`: resolve once appended. Default: as the sync policy says.
   */
  durable?: boolean
}

/** LSN range of an appended batch. */
export interface BatchRange {
  first: number
  last: number
}

function checkData(name: string, data: unknown): Uint8Array {
  if (!(data instanceof Uint8Array)) {
    throw invalidArgument(`${name} must be a Uint8Array or Buffer; got ${data === null ? 'null' : typeof data}`)
  }
  if (data.byteLength === 0) {
    // A detached buffer reads as empty; refuse it instead of logging an empty record.
    try {
      new Uint8Array(data.buffer, 0, 0)
    } catch {
      throw invalidArgument(`${name} is backed by a detached ArrayBuffer`)
    }
  }
  return data
}

/**
 * An open write-ahead log.
 *
 * `append` copies the bytes and returns the LSN at once; `sync`/`write`
 * resolve once records are on stable storage. When a promise from `sync` or
 * `write` resolves, the record survives a process crash and a power loss.
 */
export class Wal implements AsyncDisposable {
  readonly #native: NativeWal
  readonly #waiters: DurabilityWaiters
  readonly #writeWaits: boolean
  readonly #writeRequestsSync: boolean
  #closing: Promise<void> | undefined

  /** What open found (records, segments, bytes cut and why, I/O mode). */
  readonly recovery: RecoveryInfo

  private constructor(native: NativeWal, waiters: DurabilityWaiters, policy: string, recovery: RecoveryInfo) {
    this.#native = native
    this.#waiters = waiters
    this.#writeWaits = policy === 'always' || policy === 'interval'
    this.#writeRequestsSync = policy === 'always'
    this.recovery = recovery
  }

  /** Opens the log in `dir` (created when missing), recovering what is on disk. */
  static async open(dir: string, options?: WalOptions): Promise<Wal> {
    if (typeof dir !== 'string' || dir.length === 0) throw invalidArgument('dir must be a non-empty string')
    const nativeOptions = normalizeOptions(options)
    let waiters: DurabilityWaiters | undefined
    let native: NativeWal | undefined
    const onFlush = (notice: FlushNotice): void => {
      if (waiters === undefined || native === undefined) return
      if (notice.failed) {
        try {
          native.checkHealth()
        } catch (error) {
          waiters.fail(fromNative(error))
        }
      } else {
        waiters.report(notice.durableLsn)
      }
    }
    const opened = await awaitNative(() => binding.open(dir, nativeOptions, onFlush))
    try {
      const found = callNative(() => opened.recovery())
      const recovery = Object.freeze({ ...found, truncatedReason: found.truncatedReason ?? null }) as RecoveryInfo
      waiters = new DurabilityWaiters(callNative(() => opened.durableLsn))
      native = opened
      return new Wal(opened, waiters, nativeOptions.sync, recovery)
    } catch (error) {
      // The caller gets no `Wal` to close, so close the native log here:
      // left to the garbage collector it would hold the directory's lock.
      // Its own failure, if any, follows from this one, which is reported.
      await awaitNative(() => opened.close()).catch(() => {})
      throw fromNative(error)
    }
  }

  #checkOpen(): void {
    if (this.#closing !== undefined) throw new WalError('WAL_CLOSED', 'log is closed')
  }

  /** Copies `data` into the log and returns its LSN. Not durable until `sync`. */
  append(data: Uint8Array): number {
    this.#checkOpen()
    checkData('data', data)
    return callNative(() => this.#native.append(data))
  }

  /** Appends `records` as one atomic batch: after a crash, all of them or none. */
  appendBatch(records: readonly Uint8Array[]): BatchRange {
    this.#checkOpen()
    if (!Array.isArray(records) || records.length === 0) {
      throw invalidArgument('records must be a non-empty array of Uint8Array')
    }
    for (const [index, record] of records.entries()) checkData(`records[${index}]`, record)
    return callNative(() => this.#native.appendBatch(records as Uint8Array[]))
  }

  /**
   * Resolves with the durable LSN once every record up to `lsn` (default:
   * everything appended so far) is on stable storage.
   */
  sync(lsn?: number): Promise<number> {
    try {
      this.#checkOpen()
      const target = lsn === undefined ? this.lastLsn : checkLsn('lsn', lsn)
      // Not settled from the durable LSN this returns, only from flush
      // reports: see `DurabilityWaiters` for why and why nothing hangs.
      callNative(() => this.#native.requestSync(target))
      return this.#waiters.wait(Math.min(target, this.lastLsn))
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /** Appends `data`, then waits as the sync policy (or `options.durable`) says; resolves with its LSN. */
  async write(data: Uint8Array, options?: WriteOptions): Promise<number> {
    const lsn = this.append(data)
    const durable = options?.durable
    if (durable === true || (durable === undefined && this.#writeRequestsSync)) {
      await this.sync(lsn)
    } else if (durable === undefined && this.#writeWaits) {
      await this.#waiters.wait(lsn)
    }
    return lsn
  }

  /**
   * The durable records with LSNs from `from` (default: the first) to `to`
   * (default and upper bound: the durable LSN when replay starts), in order.
   * Call `await wal.sync()` first to include records appended just before.
   */
  replay(range: { from?: number; to?: number } = {}): AsyncIterable<WalRecord> {
    this.#checkOpen()
    const from = range.from === undefined ? 1 : checkLsn('from', range.from)
    const to = range.to === undefined ? this.durableLsn : checkLsn('to', range.to)
    return iterateReplay(callNative(() => this.#native.replay(from, to)))
  }

  /** LSN of the first record in the log; 0 when empty. */
  get firstLsn(): number {
    return callNative(() => this.#native.firstLsn)
  }

  /** LSN of the last appended record; 0 when empty. */
  get lastLsn(): number {
    return callNative(() => this.#native.lastLsn)
  }

  /** Highest LSN on stable storage; 0 when none. */
  get durableLsn(): number {
    return callNative(() => this.#native.durableLsn)
  }

  /** Counters since open. */
  stats(): WalStats {
    return { syncs: callNative(() => this.#native.syncCount), lastLsn: this.lastLsn, durableLsn: this.durableLsn }
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.#closing !== undefined
  }

  /**
   * Flushes and syncs what was appended, settles every pending promise and
   * releases the lock. Idempotent: later calls return the same promise.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    try {
      await awaitNative(() => this.#native.close())
    } finally {
      // Whatever fails here, every waiter is still settled.
      let failure: WalError | undefined
      try {
        this.#waiters.advance(this.#native.durableLsn)
        this.#native.checkHealth()
      } catch (error) {
        failure = fromNative(error)
      }
      this.#waiters.fail(failure ?? new WalError('WAL_CLOSED', 'log was closed before the record became durable'))
    }
  }

  /** `await using wal = await Wal.open(...)` closes the log at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }
}
