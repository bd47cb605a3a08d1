/**
 * Node streams over the log, for `stream.pipeline`: a `Writable` whose write
 * callbacks fire once records are durable, so the pipeline's backpressure
 * follows the disk, and a `Readable` over replay.
 */
import { Readable, Writable } from 'node:stream'
import { invalidArgument, WalError } from './errors'
import { checkKeys } from './options'
import type { WalRecord } from './replay'

/** What the streams need of a `Wal` (it is passed in to keep this module free of `wal.ts`). */
export interface StreamableLog {
  append(data: Uint8Array): number
  sync(lsn?: number): Promise<number>
  ready(): Promise<void>
  replay(range?: { from?: number; to?: number; fromCheckpoint?: boolean }): AsyncIterableIterator<WalRecord>
  tail(options?: { from?: number }): AsyncIterableIterator<WalRecord>
}

/** Options of `wal.createReadStream`. */
export interface ReadStreamOptions {
  /** First LSN to read; see `replay` (or with `live`, `tail`). */
  from?: number
  /** Last LSN to read; see `replay`. Not with `live`. */
  to?: number
  /** Start at the latest checkpoint; see `replay`. Not with `live`. */
  fromCheckpoint?: boolean
  /** `true`: follow new records as they become durable, as `tail()` does. Default `false`. */
  live?: boolean
}

/** Options of `wal.createWriteStream`. */
export interface WriteStreamOptions {
  /** Records the stream buffers before `write()` returns false. An integer from 1. Default 1024. */
  highWaterMark?: number
}

/**
 * Appends `chunks` and waits until they are durable. Past `bufferLimit` it
 * waits for `ready()` and goes on, so the stream never fails with
 * `WAL_BACKPRESSURE`: it slows down instead, as a stream should.
 */
async function appendDurably(log: StreamableLog, chunks: readonly { chunk: unknown }[]): Promise<void> {
  let last = 0
  for (const { chunk } of chunks) {
    for (;;) {
      try {
        last = log.append(chunk as Uint8Array)
        break
      } catch (error) {
        if (!(error instanceof WalError) || error.code !== 'WAL_BACKPRESSURE') throw error
        await log.ready()
      }
    }
  }
  if (last > 0) await log.sync(last)
}

/** An object-mode `Writable`: each chunk (a `Uint8Array`) becomes one record. */
export function createWriteStream(log: StreamableLog, options: WriteStreamOptions = {}): Writable {
  return new Writable({
    objectMode: true,
    highWaterMark: options.highWaterMark ?? 1024,
    // writev hands over everything buffered while the last group was being
    // synced: one append each and one sync for all, i.e. group commit.
    writev(chunks, callback) {
      appendDurably(log, chunks).then(() => callback(), callback)
    },
  })
}

/**
 * An object-mode `Readable` of `{ lsn, data, checkpoint }`, over
 * `wal.replay()`, or `wal.tail()` when `live`. Destroying it ends the iteration.
 */
export function createReadStream(log: Pick<StreamableLog, 'replay' | 'tail'>, options: ReadStreamOptions): Readable {
  const given: unknown = options
  checkKeys('options', given, ['from', 'to', 'fromCheckpoint', 'live'])
  const { live, ...range } = options
  if (live !== undefined && typeof live !== 'boolean') throw invalidArgument('live must be a boolean')
  if (live !== true) return Readable.from(log.replay(range), { objectMode: true })
  if (range.to !== undefined || range.fromCheckpoint !== undefined) {
    throw invalidArgument('a live read stream takes from only (not to or fromCheckpoint)')
  }
  return Readable.from(log.tail(range.from === undefined ? {} : { from: range.from }), { objectMode: true })
}
