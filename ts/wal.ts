/**
 * The `Wal` class: the public face of the log.
 */
import { EventEmitter } from 'node:events'
import type { Readable, Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import type { FlushNotice, NativeWal } from '../native/binding'
import { checkSignal, untilAborted, type WaitOptions } from './abort'
import { BufferGate } from './backpressure'
import { DurabilityWaiters } from './durability'
import { awaitNative, callNative, fromNative, invalidArgument, WalError } from './errors'
import { FollowerBell } from './follower-bell'
import { binding } from './native'
import { checkCount, checkKeys, checkLsn, normalizeOptions, type WalOptions } from './options'
import { type ReadOnlyOptions, WalReader } from './reader'
import { iterateReplay, type WalRecord } from './replay'
import { createReadStream, createWriteStream, type ReadStreamOptions, type WriteStreamOptions } from './streams'
import { type TailOptions, tailOf } from './tail'

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
  /** Data syncs (fdatasync or equivalent) issued by the flusher since open; with group commit far fewer than records. */
  syncs: number
  /** LSN of the last appended record; 0 when the log is empty. */
  lastLsn: number
  /** Highest LSN on stable storage; 0 when none. */
  durableLsn: number
  /** Bytes of records appended and not yet durable (with their headers), waiting or being written. */
  bufferedBytes: number
  /** Segment files in the log now. */
  segments: number
  /** Bytes those files take (preallocated size, not only what records fill). */
  bytesOnDisk: number
}

/** Per-call options of `write`. */
export interface WriteOptions {
  /**
   * `true`: wait until the record is durable (requesting a sync now);
   * `false`: resolve once appended. Default: as the sync policy says.
   */
  durable?: boolean
  /**
   * Aborting it rejects the write's promise with `WAL_ABORTED` if it is still
   * waiting; the record stays appended (and becomes durable as it would have).
   */
  signal?: AbortSignal
}

/** LSN range of an appended batch, from `appendBatch`. */
export interface BatchRange {
  /** LSN of the batch's first record. */
  first: number
  /** LSN of the batch's last record: `first + records.length - 1`. */
  last: number
}

/** Which records `replay` reads; both ends are inclusive. */
export interface ReplayRange {
  /**
   * First LSN to read, an integer from 0 to `MAX_LSN`. Default 1 (the first
   * record). An LSN below `firstLsn` (removed by truncation) starts at `firstLsn`.
   */
  from?: number
  /**
   * `true`: start at the latest durable checkpoint (`lastCheckpoint`), or at
   * the first record when there is none. Not together with `from`.
   */
  fromCheckpoint?: boolean
  /**
   * Last LSN to read, an integer from 0 to `MAX_LSN`. Default, and upper bound
   * whatever is given: the durable LSN when `replay` is called.
   */
  to?: number
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

/** The state behind one `Wal`. */
interface WalState {
  readonly native: NativeWal
  readonly waiters: DurabilityWaiters
  /** `write()` waits for durability unless told otherwise (`'always'` and `{ intervalMs }`). */
  readonly writeWaits: boolean
  /** `write()` requests a sync unless told otherwise (`'always'`). */
  readonly writeRequestsSync: boolean
  /** Callers of `ready()` waiting for the buffered bytes to fall below `maxBufferedBytes`. */
  readonly bufferGate: BufferGate
  /** `close()`'s promise, once it was called. */
  closing: Promise<void> | undefined
  /** `truncateAfter` calls in progress; appends are refused meanwhile. */
  truncating: number
  /** Wakes tails after each flush report, failure and close. */
  readonly bell: FollowerBell
  /** The new last LSN of each `truncateAfter`, in order, for tails to check what they yielded. */
  readonly cuts: number[]
}

/**
 * The state of every `Wal`, keyed by the instance, instead of `#private`
 * fields: a class with `#` members declares `#private;` in its .d.ts, which
 * TypeScript rejects for targets below ES2015 (TS18028), the default target
 * of a bare `tsc`, unless the user sets skipLibCheck. TypeScript `private`
 * members would declare fine, but they are ordinary properties at runtime
 * that any caller can read or overwrite (and `console.log` shows). A
 * module-level WeakMap keeps the state as unreachable from outside as `#`
 * fields do (TypeScript compiles `#` fields to WeakMaps for older targets),
 * for one lookup per call (about 10 ns, against the microsecond or so of a
 * native append).
 */
const states = new WeakMap<Wal, WalState>()

/**
 * Runs a native append. One refused at the buffer limit asks for a flush and
 * marks the pressure, so that `'drain'` follows once the buffer falls below
 * `maxBufferedBytes`, whatever the sync policy.
 */
function appendUnderPressure<T>(state: WalState, append: () => T): T {
  if (state.truncating > 0) {
    throw new WalError('WAL_BUSY', 'truncateAfter is cutting the log; append once its promise settles')
  }
  try {
    return callNative(append)
  } catch (error) {
    if (error instanceof WalError && error.code === 'WAL_BACKPRESSURE') {
      state.bufferGate.press()
      callNative(() => state.native.requestSync(state.native.lastLsn))
    }
    throw error
  }
}

/** The events a `Wal` emits, with their arguments. */
export interface WalEvents {
  /**
   * The bytes appended and not yet durable fell below `maxBufferedBytes` after
   * a producer met the pressure (a `ready()` that waited, or an append refused
   * with `WAL_BACKPRESSURE`).
   */
  drain: []
}

/** Only `Wal.open` holds this, so `new Wal()` from anywhere else is refused. */
const constructing = Symbol('Wal.open')

/** `dir` as a path: a non-empty string, or a `file:` URL. */
function checkDir(dir: unknown): string {
  if (dir instanceof URL) {
    if (dir.protocol !== 'file:') throw invalidArgument(`dir must be a path or a file: URL; got ${dir.href}`)
    return fileURLToPath(dir)
  }
  if (typeof dir !== 'string' || dir.length === 0)
    throw invalidArgument('dir must be a non-empty string or a file: URL')
  return dir
}

function stateOf(wal: Wal): WalState {
  const state = states.get(wal)
  if (state === undefined) throw invalidArgument('not a Wal opened by Wal.open')
  return state
}

/** The state of `wal`, refusing a log that is closed or closing. */
function openStateOf(wal: Wal): WalState {
  const state = stateOf(wal)
  if (state.closing !== undefined) throw new WalError('WAL_CLOSED', 'log is closed')
  return state
}

async function closeLog(state: WalState): Promise<void> {
  try {
    await awaitNative(() => state.native.close())
  } finally {
    // Whatever fails here, every waiter is still settled.
    let failure: WalError | undefined
    try {
      state.waiters.advance(state.native.durableLsn)
      state.native.checkHealth()
    } catch (error) {
      failure = fromNative(error)
    }
    state.waiters.fail(failure ?? new WalError('WAL_CLOSED', 'log was closed before the record became durable'))
    state.bufferGate.fail(failure ?? new WalError('WAL_CLOSED', 'log was closed while waiting for ready()'))
    state.bell.ring()
  }
}

/**
 * Tells `gate` how many bytes are buffered after a flush. It reads the live
 * count, not one computed on the flush thread: appends made since then count
 * too, or `ready()` would resolve above the mark. Runs in the flush notice's
 * callback, so nothing may escape it: a failure fails the gate instead.
 */
function reportBuffer(wal: Wal, native: NativeWal, gate: BufferGate): void {
  let outcome: ReturnType<BufferGate['report']>
  try {
    outcome = gate.report(native.bufferedBytes)
    // Someone still waits above the mark: ask for another flush, since under
    // some policies nothing else would flush what was appended meanwhile.
    if (outcome === 'waiting') native.requestSync(native.lastLsn)
  } catch (error) {
    gate.fail(fromNative(error))
    return
  }
  if (outcome === 'drained') wal.emit('drain')
}

declare global {
  interface SymbolConstructor {
    /**
     * Declared here as well (as `@types/node` and TypeScript's
     * `esnext.disposable` lib do) so that `Wal`'s declaration compiles for
     * users whose `lib` and `@types/node` predate explicit resource management.
     */
    readonly asyncDispose: unique symbol
  }
}

/**
 * An open write-ahead log, from `Wal.open`.
 *
 * `append` copies the bytes and returns the LSN at once; `sync`/`write`
 * resolve once records are on stable storage. When a promise from `sync` or
 * `write` resolves, the record survives a process crash and a power loss.
 *
 * Every error thrown or rejected with is a {@link WalError}; its `code` says
 * what happened. Methods that return a promise never throw synchronously:
 * the promise rejects.
 */
export class Wal extends EventEmitter<WalEvents> {
  /** What open found (records, segments, bytes cut and why, I/O mode). Frozen. */
  readonly recovery: RecoveryInfo

  private constructor(token: typeof constructing, state: WalState, recovery: RecoveryInfo) {
    if (token !== constructing) {
      throw invalidArgument('a Wal cannot be constructed with new: use `await Wal.open(dir, options)`')
    }
    super()
    states.set(this, state)
    this.recovery = recovery
  }

  /**
   * Opens the log in `dir`, creating the directory (and its parents) when
   * missing, takes its lock and recovers what is on disk as `options.recovery`
   * says (see {@link Wal.recovery} for what it found).
   *
   * @param dir - The log's directory; a non-empty string.
   * @param options - See {@link WalOptions}; every option has a default.
   * @returns The open log.
   * @throws {@link WalError} `WAL_INVALID_ARGUMENT` (the promise rejects) for an empty or non-string `dir`, a bad option,
   * or `directIo: true` where the filesystem refuses O_DIRECT.
   * @throws {@link WalError} `WAL_LOCKED` when another writer (in this process, a worker thread or another process) has the log open.
   * @throws {@link WalError} `WAL_CORRUPT` for damage the recovery mode refuses, or a file in the way (`path`, `offset`).
   * @throws {@link WalError} `WAL_IO` when an OS call fails (`syscall`, `path`; the OS error as `cause`).
   * @throws {@link WalError} `WAL_INTERNAL` for a bug in durawal.
   */
  static async open(dir: string | URL, options?: WalOptions): Promise<Wal> {
    dir = checkDir(dir)
    const normalized = normalizeOptions(options)
    const nativeOptions = normalized.native
    const bufferGate = new BufferGate(normalized.maxBufferedBytes)
    const bell = new FollowerBell()
    let waiters: DurabilityWaiters | undefined
    let native: NativeWal | undefined
    let wal: Wal | undefined
    const onFlush = (notice: FlushNotice): void => {
      if (waiters === undefined || native === undefined) return
      if (notice.failed) {
        try {
          native.checkHealth()
        } catch (error) {
          waiters.fail(fromNative(error))
          bufferGate.fail(fromNative(error))
        }
      } else {
        // A report can arrive after a truncateAfter moved the durable LSN
        // back; what it says beyond the live durable LSN no longer holds.
        let durable = notice.durableLsn
        try {
          durable = Math.min(durable, native.durableLsn)
        } catch {
          // A broken getter is reported by every other call; keep the report as is.
        }
        waiters.report(durable)
        if (wal !== undefined) reportBuffer(wal, native, bufferGate)
      }
      bell.ring()
    }
    const opened = await awaitNative(() => binding.open(dir, nativeOptions, onFlush))
    try {
      const found = callNative(() => opened.recovery())
      const recovery = Object.freeze({ ...found, truncatedReason: found.truncatedReason ?? null }) as RecoveryInfo
      waiters = new DurabilityWaiters(callNative(() => opened.durableLsn))
      native = opened
      const policy = nativeOptions.sync
      wal = new Wal(
        constructing,
        {
          native: opened,
          waiters,
          writeWaits: policy === 'always' || policy === 'interval',
          writeRequestsSync: policy === 'always',
          bufferGate,
          closing: undefined,
          truncating: 0,
          bell,
          cuts: [],
        },
        recovery,
      )
      return wal
    } catch (error) {
      // The caller gets no `Wal` to close, so close the native log here:
      // left to the garbage collector it would hold the directory's lock.
      // Its own failure, if any, follows from this one, which is reported.
      await awaitNative(() => opened.close()).catch(() => {})
      throw fromNative(error)
    }
  }

  /**
   * Opens the log in `dir` for reading only: no lock is taken and nothing is
   * written, so it works while another process writes the log, on a
   * read-only directory and on a full disk. It sees only records the writer
   * made durable (published in the log's `DURABLE` file) and follows new ones
   * without polling (`tail()`). Damage is judged as `options.recovery` says,
   * without repairing anything.
   *
   * @param dir - The log's directory; a non-empty string or a `file:` URL.
   * @param options - See {@link ReadOnlyOptions}.
   * @returns The reader.
   * @throws {@link WalError} `WAL_INVALID_ARGUMENT` (the promise rejects) for a bad `dir` or option; `WAL_CORRUPT` for
   * damage the recovery mode refuses; `WAL_IO` when a read fails or the directory cannot be watched.
   */
  static async openReadOnly(dir: string | URL, options?: ReadOnlyOptions): Promise<WalReader> {
    return WalReader.open(checkDir(dir), options)
  }

  /**
   * Copies `data` into the log as one record. Not durable until a `sync`
   * (or the sync policy) covers it; `data` can be reused at once.
   *
   * @param data - The record's payload, 0 to `maxRecordSize` bytes.
   * @returns Its LSN: the previous record's plus 1, starting at 1 and continuing across reopens.
   * @throws {@link WalError} `WAL_INVALID_ARGUMENT` when `data` is not a `Uint8Array` (a `Buffer` is one) or is detached.
   * @throws {@link WalError} `WAL_TOO_LARGE` when `data` is over `maxRecordSize` (`size`, `limit`).
   * @throws {@link WalError} `WAL_CLOSED` after `close()`.
   * @throws {@link WalError} `WAL_POISONED` after a failed write or sync (its `WAL_IO` error is the `cause`).
   * @throws {@link WalError} `WAL_LSN_EXHAUSTED` when the LSN would pass `MAX_LSN`.
   * @throws {@link WalError} `WAL_BACKPRESSURE` when the record would take the bytes not yet durable past `bufferLimit` (`buffered`, `size`, `limit`); see `ready()`.
   * @throws {@link WalError} `WAL_IO` when the OS random source fails while starting a new segment.
   * @throws {@link WalError} `WAL_INTERNAL` for a bug in durawal.
   */
  append(data: Uint8Array): number {
    const state = openStateOf(this)
    checkData('data', data)
    return appendUnderPressure(state, () => state.native.append(data))
  }

  /**
   * Appends `records` as one atomic batch: after a crash, all of them or none.
   * Not durable until a `sync` (or the sync policy) covers it.
   *
   * @param records - One or more payloads, each 0 to `maxRecordSize` bytes; together they must fit in one segment.
   * @returns The LSNs of the first and last record; the records in between are numbered densely.
   * @throws {@link WalError} `WAL_INVALID_ARGUMENT` when `records` is not a non-empty array of `Uint8Array`, or one is detached.
   * @throws {@link WalError} `WAL_TOO_LARGE` when a record is over `maxRecordSize`, or the batch over a segment's capacity (`size`, `limit`).
   * @throws {@link WalError} `WAL_CLOSED` after `close()`.
   * @throws {@link WalError} `WAL_POISONED` after a failed write or sync (its `WAL_IO` error is the `cause`).
   * @throws {@link WalError} `WAL_LSN_EXHAUSTED` when the last LSN would pass `MAX_LSN`.
   * @throws {@link WalError} `WAL_BACKPRESSURE` when the batch would take the bytes not yet durable past `bufferLimit`; see `ready()`.
   * @throws {@link WalError} `WAL_IO` when the OS random source fails while starting a new segment.
   * @throws {@link WalError} `WAL_INTERNAL` for a bug in durawal.
   */
  appendBatch(records: readonly Uint8Array[]): BatchRange {
    const state = openStateOf(this)
    if (!Array.isArray(records) || records.length === 0) {
      throw invalidArgument('records must be a non-empty array of Uint8Array')
    }
    for (const [index, record] of records.entries()) checkData(`records[${index}]`, record)
    return appendUnderPressure(state, () => state.native.appendBatch(records as Uint8Array[]))
  }

  /**
   * Appends `data` as a checkpoint record (application state, or an empty
   * buffer as a marker), requests a sync and waits until it is durable. From
   * then on it is `lastCheckpoint`, where `replay({ fromCheckpoint: true })`
   * starts. It replays like any record, with `checkpoint: true`.
   *
   * @param data - The checkpoint's payload, 0 to `maxRecordSize` bytes.
   * @param options - `signal` stops the wait (`WAL_ABORTED`); the checkpoint stays appended.
   * @returns Its LSN, once durable.
   * @throws {@link WalError} (the promise rejects) every code `append` throws, and every code `sync` rejects with.
   */
  async checkpoint(data: Uint8Array, options: WaitOptions = {}): Promise<number> {
    const state = openStateOf(this)
    checkData('data', data)
    const signal = checkSignal(options.signal)
    const lsn = appendUnderPressure(state, () => state.native.checkpoint(data))
    await this.sync(lsn, signal === undefined ? {} : { signal })
    return lsn
  }

  /**
   * LSN of the latest durable checkpoint still in the log; `null` when there is none.
   *
   * @throws {@link WalError} `WAL_INTERNAL` for a bug in durawal.
   */
  get lastCheckpoint(): number | null {
    const { native } = stateOf(this)
    return callNative(() => native.lastCheckpoint) ?? null
  }

  /**
   * Removes the whole segments all of whose records have LSNs below `lsn`:
   * what a log needs once a snapshot covers everything before `lsn`. Only
   * durable records go, never the segment appends go to, and never records
   * a `replay` or `tail` in progress still has to read (it removes what it
   * can now; call again later for the rest). Crash-safe: a crash at any
   * point leaves the log as it was or as it is after.
   *
   * @param lsn - An integer from 0 to `MAX_LSN`.
   * @returns The log's first LSN afterwards (`firstLsn`), at most `lsn`; 0 for an empty log.
   * @throws {@link WalError} (the promise rejects) `WAL_INVALID_ARGUMENT` for a bad `lsn`; `WAL_CLOSED`; `WAL_POISONED`
   * when the log is poisoned, or a removal fails (which poisons it, like a failed write).
   */
  async truncateBefore(lsn: number): Promise<number> {
    const state = openStateOf(this)
    checkLsn('lsn', lsn)
    return awaitNative(() => state.native.truncateBefore(lsn))
  }

  /**
   * Cuts the log back to `lsn`: every record after it is removed, and the
   * next append gets `lsn + 1`. What a Raft log needs when a new leader
   * overwrites its tail. A batch that holds `lsn` and later LSNs is removed
   * whole (it is atomic), and then the log ends before it. Everything
   * appended is made durable first; appends meanwhile throw `WAL_BUSY`.
   * Promises still waiting for records that are cut reject with
   * `WAL_TRUNCATED`, and a `tail()` that had yielded them throws it.
   * Crash-safe: a crash at any point recovers the old tail or the new one.
   *
   * @param lsn - An integer from `firstLsn - 1` to `MAX_LSN`; at or past `lastLsn` nothing changes.
   * @returns The LSN of the last record kept.
   * @throws {@link WalError} (the promise rejects) `WAL_INVALID_ARGUMENT` for a bad `lsn` or one below `firstLsn - 1`;
   * `WAL_CLOSED`; `WAL_POISONED` when the log is poisoned or a step of the cut fails (which poisons it).
   */
  async truncateAfter(lsn: number): Promise<number> {
    const state = openStateOf(this)
    checkLsn('lsn', lsn)
    state.truncating++
    try {
      const lastKept = await awaitNative(() => state.native.truncateAfter(lsn))
      state.waiters.rewind(
        lastKept,
        new WalError('WAL_TRUNCATED', `truncateAfter(${lsn}) removed this record`, { lsn: lastKept + 1 }),
      )
      state.cuts.push(lastKept)
      state.bell.ring()
      return lastKept
    } finally {
      state.truncating--
    }
  }

  /**
   * Requests a sync and waits until every record up to `lsn` is on stable
   * storage. Concurrent calls share one write and sync (group commit).
   *
   * @param lsn - An integer from 0 to `MAX_LSN`; an LSN past the last appended one waits for the last. Default: the last appended LSN.
   * @returns The durable LSN when it resolves: at least `lsn` (or the last appended LSN, if lower).
   * @throws {@link WalError} `WAL_INVALID_ARGUMENT` (the promise rejects) when `lsn` is not an integer from 0 to `MAX_LSN`.
   * @throws {@link WalError} `WAL_CLOSED` when called after `close()`, or when the log closes first.
   * @throws {@link WalError} `WAL_POISONED` when a write or sync fails, now or earlier (its `WAL_IO` error is the `cause`).
   * @throws {@link WalError} `WAL_INTERNAL` for a bug in durawal.
   */
  sync(lsn?: number, options: WaitOptions = {}): Promise<number> {
    try {
      const state = openStateOf(this)
      const target = lsn === undefined ? this.lastLsn : checkLsn('lsn', lsn)
      const signal = checkSignal(options.signal)
      // Not settled from the durable LSN this returns, only from flush
      // reports: see `DurabilityWaiters` for why and why nothing hangs.
      callNative(() => state.native.requestSync(target))
      return untilAborted(state.waiters.wait(Math.min(target, this.lastLsn)), signal)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /**
   * Resolves when the log holds less than `maxBufferedBytes` of records
   * appended and not yet durable: at once when it does, otherwise after the
   * flush that brings it below (which this requests). A producer that awaits
   * `ready()` before appending never meets `WAL_BACKPRESSURE` and keeps memory
   * within the mark plus what it appends between two checks.
   *
   * @returns A promise that resolves when appending can go on.
   * @throws {@link WalError} `WAL_CLOSED` (the promise rejects) when called after `close()`, or when the log closes first.
   * @throws {@link WalError} `WAL_POISONED` when a write or sync fails, now or earlier (its `WAL_IO` error is the `cause`).
   * @throws {@link WalError} `WAL_INTERNAL` for a bug in durawal.
   */
  ready(options: WaitOptions = {}): Promise<void> {
    try {
      const state = openStateOf(this)
      const { native, bufferGate } = state
      const signal = checkSignal(options.signal)
      if (bufferGate.isBelow(callNative(() => native.bufferedBytes))) return Promise.resolve()
      const waiting = bufferGate.wait()
      // A report follows a flush; ask for one so that it comes whatever the
      // sync policy (under 'none' nothing else may flush below 4 MiB).
      callNative(() => native.requestSync(this.lastLsn))
      return untilAborted(waiting, signal)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /**
   * Appends `data` as one record, then waits as the sync policy says:
   * `'always'` requests a sync and waits for it, `{ intervalMs }` waits for
   * the next interval's sync, `'none'` and `{ bytes }` do not wait.
   *
   * @param data - The record's payload, 0 to `maxRecordSize` bytes.
   * @param options - `durable: true` always requests a sync and waits, `false` never waits. Default: as the policy says.
   * @returns The record's LSN.
   * @throws {@link WalError} (the promise rejects) every code `append` throws, and when it waits, every code `sync` rejects with.
   */
  async write(data: Uint8Array, options: WriteOptions = {}): Promise<number> {
    const state = stateOf(this)
    const signal = checkSignal(options.signal)
    const lsn = this.append(data)
    const durable = options.durable
    if (durable === true || (durable === undefined && state.writeRequestsSync)) {
      await this.sync(lsn, signal === undefined ? {} : { signal })
    } else if (durable === undefined && state.writeWaits) {
      await untilAborted(state.waiters.wait(lsn), signal)
    }
    return lsn
  }

  /**
   * Reads the durable records with LSNs from `range.from` to `range.to`, in
   * order, in batches read on the libuv pool. Only records durable when
   * `replay` is called are included: `await wal.sync()` first to include
   * records appended just before. Replays can run alongside appends and each
   * other.
   *
   * @param range - Inclusive LSN bounds; see {@link ReplayRange}. Default: every durable record.
   * @returns An async iterator of `{ lsn, data }`; `data` is a view into a batch buffer (copy it to keep it).
   * @throws {@link WalError} `WAL_INVALID_ARGUMENT` when `from` or `to` is not an integer from 0 to `MAX_LSN`.
   * @throws {@link WalError} `WAL_CLOSED` after `close()`.
   * @throws {@link WalError} `WAL_POISONED` after a failed write or sync.
   * @throws {@link WalError} `WAL_CORRUPT`, `WAL_IO` (the iterator's `next()` rejects) for damage or a failed read on the way; the records before it were yielded intact.
   * @throws {@link WalError} `WAL_INTERNAL` for a bug in durawal.
   */
  replay(range: ReplayRange = {}): AsyncIterableIterator<WalRecord> {
    const state = openStateOf(this)
    checkKeys('range', range, ['from', 'to', 'fromCheckpoint'])
    const { fromCheckpoint } = range
    if (fromCheckpoint !== undefined && typeof fromCheckpoint !== 'boolean') {
      throw invalidArgument('fromCheckpoint must be a boolean')
    }
    if (fromCheckpoint === true && range.from !== undefined) {
      throw invalidArgument('give from or fromCheckpoint: true, not both')
    }
    const from = fromCheckpoint === true ? (this.lastCheckpoint ?? 1) : checkLsn('from', range.from ?? 1)
    const to = range.to === undefined ? this.durableLsn : checkLsn('to', range.to)
    return iterateReplay(callNative(() => state.native.replay(from, to)))
  }

  /**
   * Yields the durable records from `options.from` on, then follows the log:
   * each record is yielded once it is durable, across segment rotations,
   * until `options.signal` aborts or the log closes (the loop then just
   * ends). It holds the records it has still to read against truncation and
   * retention. While it waits for records it keeps the process alive.
   *
   * @param options - See {@link TailOptions}.
   * @returns An async iterator of `{ lsn, data, checkpoint }`; `data` is a view into a batch buffer (copy it to keep it).
   * @throws {@link WalError} `WAL_INVALID_ARGUMENT` for a bad `from`, `signal` or unknown key; `WAL_CLOSED` after `close()`.
   * @throws {@link WalError} (the iterator's `next()` rejects) `WAL_TRUNCATED` when `from` is below `firstLsn`, or a
   * `truncateAfter` removed records it had yielded, or retention stopped waiting for it; `WAL_POISONED` when the log
   * fails; `WAL_CORRUPT`, `WAL_IO` for damage or a failed read.
   */
  tail(options: TailOptions = {}): AsyncIterableIterator<WalRecord> {
    const state = openStateOf(this)
    return tailOf(state.native, options, {
      bell: state.bell,
      isClosed: () => state.closing !== undefined,
      cuts: state.cuts,
    })
  }

  /**
   * A `Writable` (object mode) that appends each chunk as one record and calls
   * its write callback once the record is durable, whatever the sync policy:
   * `stream.pipeline(source, wal.createWriteStream())` gets backpressure from
   * the disk. Chunks buffered while a sync runs are appended and synced
   * together (group commit). Past `bufferLimit` it waits for `ready()` rather
   * than failing. Ending the stream leaves the log open.
   *
   * @param options - See {@link WriteStreamOptions}.
   * @returns The stream; it emits `'error'` with a {@link WalError} for a chunk that is not a `Uint8Array` or too large
   * (`WAL_INVALID_ARGUMENT`, `WAL_TOO_LARGE`), after `close()` (`WAL_CLOSED`), or when a write or sync fails (`WAL_POISONED`).
   * @throws {@link WalError} `WAL_INVALID_ARGUMENT` when `options.highWaterMark` is not an integer from 1.
   */
  createWriteStream(options: WriteStreamOptions = {}): Writable {
    stateOf(this)
    if (options.highWaterMark !== undefined) checkCount('highWaterMark', options.highWaterMark)
    return createWriteStream(this, options)
  }

  /**
   * A `Readable` (object mode) of the durable records `{ lsn, data, checkpoint }`, in order:
   * `replay(options)` as a stream, or with `live: true`, `tail(options)` as one (it follows
   * new records until destroyed or the log closes).
   *
   * @param options - `replay`'s range, or `live: true` with `tail`'s `from`; see {@link ReadStreamOptions}.
   * @returns The stream; it emits `'error'` with the {@link WalError} the iterator rejects with.
   * @throws {@link WalError} as `replay()` or `tail()` does when it starts.
   */
  createReadStream(options: ReadStreamOptions = {}): Readable {
    return createReadStream(this, options)
  }

  /**
   * LSN of the first record in the log; 0 when the log is empty.
   *
   * @throws {@link WalError} `WAL_INTERNAL` for a bug in durawal.
   */
  get firstLsn(): number {
    const { native } = stateOf(this)
    return callNative(() => native.firstLsn)
  }

  /**
   * LSN of the last appended record, durable or not; 0 when the log is empty.
   *
   * @throws {@link WalError} `WAL_INTERNAL` for a bug in durawal.
   */
  get lastLsn(): number {
    const { native } = stateOf(this)
    return callNative(() => native.lastLsn)
  }

  /**
   * Highest LSN on stable storage; 0 when none. Every record up to it survives a crash.
   *
   * @throws {@link WalError} `WAL_INTERNAL` for a bug in durawal.
   */
  get durableLsn(): number {
    const { native } = stateOf(this)
    return callNative(() => native.durableLsn)
  }

  /**
   * Counters since open; works after `close()` too.
   *
   * @returns A new object each call: data syncs issued, last and durable LSN, bytes appended and not yet durable.
   * @throws {@link WalError} `WAL_INTERNAL` for a bug in durawal.
   */
  stats(): WalStats {
    const { native } = stateOf(this)
    return {
      syncs: callNative(() => native.syncCount),
      lastLsn: this.lastLsn,
      durableLsn: this.durableLsn,
      bufferedBytes: callNative(() => native.bufferedBytes),
      segments: callNative(() => native.segmentCount),
      bytesOnDisk: callNative(() => native.segmentBytes),
    }
  }

  /** True once `close()` was called (even while it is still closing). */
  get closed(): boolean {
    return stateOf(this).closing !== undefined
  }

  /**
   * Flushes and syncs what was appended, settles every pending promise
   * (those not made durable reject with `WAL_CLOSED`), stops the flush
   * thread and releases the lock. Idempotent: later calls return the same
   * promise. The lock is released even when it rejects.
   *
   * @returns A promise that resolves once the log is closed.
   * @throws {@link WalError} `WAL_POISONED` (the promise rejects) when a write or sync failed, now or earlier: records not yet durable then are lost.
   * @throws {@link WalError} `WAL_INTERNAL` for a bug in durawal.
   */
  close(): Promise<void> {
    const state = stateOf(this)
    state.closing ??= closeLog(state)
    return state.closing
  }

  /**
   * `await using wal = await Wal.open(...)` closes the log at the end of the scope; the same as `close()`.
   *
   * @returns `close()`'s promise.
   * @throws {@link WalError} as `close()`.
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }
}
