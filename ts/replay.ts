/**
 * Replay as an async iterator. Each native call returns a whole batch (one
 * Buffer plus end offsets and LSNs), so the per-record cost is JavaScript only.
 */
import type { NativeBatch, NativeReplay } from '../native/binding'
import { awaitNative, callNative } from './errors'

/** A record read back from the log. */
export interface WalRecord {
  /** Its log sequence number. */
  lsn: number
  /** Its bytes (a view into the batch buffer; copy it to keep it beyond the batch). */
  data: Buffer
  /** True for a record written by `wal.checkpoint()`. */
  checkpoint: boolean
}

/** Records fetched per native call. */
export const BATCH_RECORDS = 4096
/** Payload bytes fetched per native call (a larger single record still comes whole). */
export const BATCH_BYTES = 1 << 20

/** The records of one native batch, in order. */
export function* recordsOf(batch: NativeBatch): Generator<WalRecord, void, undefined> {
  const { data, ends, lsns, checkpoints } = batch
  let start = 0
  let nextCheckpoint = 0
  for (let index = 0; index < lsns.length; index++) {
    const end = ends[index]!
    const checkpoint = checkpoints[nextCheckpoint] === index
    if (checkpoint) nextCheckpoint++
    yield { lsn: lsns[index]!, data: data.subarray(start, end), checkpoint }
    start = end
  }
}

/**
 * Yields the records of `cursor` in LSN order, and closes it when the
 * iteration ends in any way (the end, `break`, `return()`, an error), so
 * that truncation no longer waits for it.
 */
export async function* iterateReplay(cursor: NativeReplay): AsyncGenerator<WalRecord, void, undefined> {
  try {
    for (;;) {
      const batch = await awaitNative(() => cursor.next(BATCH_RECORDS, BATCH_BYTES))
      if (batch === null) return
      yield* recordsOf(batch)
    }
  } finally {
    callNative(() => cursor.close())
  }
}
