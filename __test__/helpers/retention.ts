/**
 * Plumbing for the retention, checkpoint and tail tests: where the segments
 * of a log start, filling a log with known records, reading records with
 * their checkpoint flag, and holding the event loop still while the native
 * side works (so that no flush report is seen before a cut is complete).
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import type { ExecutionContext } from 'ava'
import type { Wal, WalRecord } from '../../ts'
import { payload, segmentFiles } from './wal'

/** Segment size of these tests: the smallest allowed, so that a few hundred records roll many segments. */
export const SMALL_SEGMENT = 65_536

/** First LSN of each segment file in `dir`, in log order (from the file names). */
export function segmentStarts(dir: string): number[] {
  return segmentFiles(dir).map((name) => Number.parseInt(name, 10))
}

/** Bytes the segment files of `dir` take, from `stat`. */
export function segmentBytes(dir: string): number {
  return segmentFiles(dir).reduce((sum, name) => sum + fs.statSync(path.join(dir, name)).size, 0)
}

/** Whether the control file (or leftover) `name` is in `dir`. */
export function hasFile(dir: string, name: string): boolean {
  return fs.existsSync(path.join(dir, name))
}

/** The expected content of every LSN, as the test wrote it. */
export type Expected = Map<number, Buffer>

/**
 * The bytes of `lsn` written in `generation` (0 for the first write; a
 * rewrite after `truncateAfter` uses a later one, so old and new differ).
 */
export function recordBytes(lsn: number, size: number, generation = 0): Buffer {
  return payload(lsn + generation * 1_000_000, size)
}

/**
 * Appends `count` records of `size` bytes (generation `generation`),
 * checking that each gets the LSN after the last, notes them in `expected`
 * and syncs. Returns the last LSN.
 */
export async function fill(wal: Wal, expected: Expected, count: number, size: number, generation = 0): Promise<number> {
  for (let i = 0; i < count; i++) {
    const lsn = wal.lastLsn + 1
    const data = recordBytes(lsn, size, generation)
    const got = wal.append(data)
    if (got !== lsn) throw new Error(`append returned LSN ${got}, expected ${lsn}`)
    expected.set(lsn, data)
  }
  await wal.sync()
  return wal.lastLsn
}

/** A record read back, copied out of its batch buffer. */
export interface ReadRecord {
  lsn: number
  data: Buffer
  checkpoint: boolean
}

/** Copies a record out of its batch buffer. */
export function copyRecord({ lsn, data, checkpoint }: WalRecord): ReadRecord {
  return { lsn, data: Buffer.from(data), checkpoint }
}

/** Reads `records` to the end, copying each. */
export async function readAll(records: AsyncIterable<WalRecord>): Promise<ReadRecord[]> {
  const read: ReadRecord[] = []
  for await (const record of records) read.push(copyRecord(record))
  return read
}

/**
 * Asserts that `records` are exactly the LSNs `from..=to`, in order, each
 * holding the bytes `expected` has for it. Reports the first difference.
 */
export function assertExpected(
  t: ExecutionContext,
  records: readonly ReadRecord[],
  expected: Expected,
  from: number,
  to: number,
  label: string,
): void {
  const wantedLsns = Array.from({ length: Math.max(0, to - from + 1) }, (_, index) => from + index)
  t.deepEqual(
    records.map(({ lsn }) => lsn),
    wantedLsns,
    `${label}: LSNs`,
  )
  const wrong = records.find(({ lsn, data }) => !data.equals(expected.get(lsn) ?? Buffer.alloc(0)))
  t.is(wrong?.lsn, undefined, `${label}: bytes of LSN ${wrong?.lsn} differ from what was written`)
}

/**
 * Blocks the JavaScript thread (sleeping 1 ms at a time) until `condition`
 * holds; throws after `timeoutMs`. Native work on other threads goes on,
 * but no callback (flush report, promise) runs meanwhile.
 */
export function blockUntil(condition: () => boolean, what: string, timeoutMs = 10_000): void {
  const sleeper = new Int32Array(new SharedArrayBuffer(4))
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    Atomics.wait(sleeper, 0, 0, 1)
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
