/**
 * `Wal.openReadOnly`: a log read without writing it, typically from another
 * process while the writer runs. See `LogReader` in the core for how it
 * sees only durable records and learns of new ones.
 */
import type { Readable } from 'node:stream'
import type { NativeReader } from '../native/binding'
import { awaitNative, callNative, invalidArgument, WalError } from './errors'
import { FollowerBell } from './follower-bell'
import { binding } from './native'
import { checkKeys, checkLsn, type WalOptions } from './options'
import { iterateReplay, type WalRecord } from './replay'
import { createReadStream } from './streams'
import { type TailOptions, tailOf } from './tail'

/** Options of `Wal.openReadOnly`. */
export interface ReadOnlyOptions {
  /** How damage is judged; as `WalOptions.recovery`, but nothing is repaired. Default `'tolerate-tail'`. */
  recovery?: WalOptions['recovery']
}

/** What recovery would find and do if a writer opened the log now; nothing was changed. */
export interface ReaderRecoveryInfo {
  /** Segment files in the log. */
  segments: number
  /** Records recovery would keep. */
  records: number
  /** Bytes recovery would cut from the end of the last segment. */
  truncatedBytes: number
  /** Why, naming file and offset; `null` when nothing would be cut. */
  truncatedReason: string | null
  /** Damaged regions recovery would skip (`'skip-corrupted'` only). */
  skippedRegions: number
  /** LSNs lost in those regions. */
  skippedRecords: number
  /** Files recovery would delete. */
  removedFiles: string[]
  /** Files in the directory that are not part of the log. */
  strayFiles: string[]
}

const recoveryModes = new Set(['tolerate-tail', 'absolute', 'point-in-time', 'skip-corrupted'])

/** The state behind one `WalReader` (a WeakMap, as for `Wal`: see wal.ts). */
interface ReaderState {
  readonly native: NativeReader
  /** Rung when the writer publishes, and at close. */
  readonly bell: FollowerBell
  closed: boolean
}

const readers = new WeakMap<WalReader, ReaderState>()
const constructing = Symbol('WalReader')

function stateOf(reader: WalReader): ReaderState {
  const state = readers.get(reader)
  if (state === undefined) throw invalidArgument('not a WalReader opened by Wal.openReadOnly')
  return state
}

function openStateOf(reader: WalReader): ReaderState {
  const state = stateOf(reader)
  if (state.closed) throw new WalError('WAL_CLOSED', 'reader is closed')
  return state
}

/**
 * A log opened with `Wal.openReadOnly`: it takes no lock and never writes
 * (no file is created, changed or removed), so it works beside a writer in
 * another process, on a read-only directory and on a full disk. It reads
 * only records the writer has made durable.
 */
export class WalReader {
  /** What recovery would find and do if a writer opened the log now. Frozen. */
  readonly recovery: ReaderRecoveryInfo

  private constructor(token: typeof constructing, native: NativeReader, bell: FollowerBell) {
    if (token !== constructing)
      throw invalidArgument('a WalReader cannot be constructed with new: use Wal.openReadOnly(dir)')
    readers.set(this, { native, bell, closed: false })
    const { ioMode: _ioMode, ...found } = callNative(() => native.recovery())
    this.recovery = Object.freeze({ ...found, truncatedReason: found.truncatedReason ?? null })
  }

  /** For `Wal.openReadOnly`. */
  static async open(dir: string, options: unknown): Promise<WalReader> {
    if (options === undefined) options = {}
    checkKeys('options', options, ['recovery'])
    const recovery = options.recovery ?? 'tolerate-tail'
    if (typeof recovery !== 'string' || !recoveryModes.has(recovery)) {
      throw invalidArgument(`recovery must be one of ${[...recoveryModes].join(', ')}; got ${JSON.stringify(recovery)}`)
    }
    const bell = new FollowerBell()
    const native = await awaitNative(() => binding.openReadOnly(dir, recovery, () => bell.ring()))
    try {
      return new WalReader(constructing, native, bell)
    } catch (error) {
      // The caller gets no reader to close: stop watching here.
      try {
        native.close()
      } catch {
        // The error being thrown is the one to report.
      }
      throw error
    }
  }

  /**
   * Reads the durable records from `range.from` to `range.to`, as `Wal.replay` does.
   *
   * @throws {@link WalError} as `Wal.replay`; `WAL_TRUNCATED` (the iterator rejects) when the writer removed a segment
   * before it was read.
   */
  replay(range: { from?: number; to?: number } = {}): AsyncIterableIterator<WalRecord> {
    const state = openStateOf(this)
    checkKeys('range', range, ['from', 'to'])
    const from = checkLsn('from', range.from ?? 1)
    const to = range.to === undefined ? this.durableLsn : checkLsn('to', range.to)
    return iterateReplay(callNative(() => state.native.replay(from, to)))
  }

  /**
   * Yields the durable records from `options.from` on and follows the writer, as `Wal.tail` does; it is woken by
   * the operating system when the writer publishes (no polling). Ends on abort or `close()`.
   *
   * @throws {@link WalError} as `Wal.tail`; `WAL_TRUNCATED` also when the writer cut back records it had yielded.
   */
  tail(options: TailOptions = {}): AsyncIterableIterator<WalRecord> {
    const state = openStateOf(this)
    return tailOf(state.native, options, {
      bell: state.bell,
      isClosed: () => state.closed,
      cuts: [],
    })
  }

  /** `replay` or, with `live: true`, `tail` as an object-mode `Readable`. */
  createReadStream(options: { from?: number; to?: number; live?: boolean } = {}): Readable {
    return createReadStream(this, options)
  }

  /** LSN of the first durable record; 0 when there is none. */
  get firstLsn(): number {
    const { native } = stateOf(this)
    return callNative(() => native.firstLsn)
  }

  /** The durable LSN the writer last published. */
  get durableLsn(): number {
    const { native } = stateOf(this)
    return callNative(() => native.durableLsn)
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return stateOf(this).closed
  }

  /** Stops watching the log and ends its tails. Idempotent. */
  async close(): Promise<void> {
    const state = stateOf(this)
    if (state.closed) return
    state.closed = true
    callNative(() => state.native.close())
    state.bell.ring()
  }

  /** `await using reader = await Wal.openReadOnly(dir)`: the same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }
}
