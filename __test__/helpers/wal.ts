/**
 * Shared test plumbing: temp directories, logs that close themselves at the
 * end of a test, a deterministic payload generator (the oracle side of every
 * byte-exact comparison) and a replay collector that copies what it reads.
 */
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import type { ExecutionContext } from 'ava'
import { Wal, type WalOptions } from '../../ts'

/** A fresh empty directory under the OS temp dir, removed after the test. */
export function tempDir(t: ExecutionContext, prefix = 'durawal-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Opens a log that is closed when the test ends (close is idempotent). */
export async function openWal(t: ExecutionContext, dir: string, options?: WalOptions): Promise<Wal> {
  const wal = await Wal.open(dir, options)
  t.teardown(() => wal.close().catch(() => {}))
  return wal
}

/**
 * Deterministic bytes for record `index`: a small xorshift stream seeded by
 * the index, so neighbouring records differ in every position and a record
 * served from the wrong place or offset never compares equal by accident.
 */
export function payload(index: number, size: number): Buffer {
  const bytes = Buffer.allocUnsafe(size)
  let state = (index * 2654435761 + 0x9e3779b9) >>> 0 || 1
  for (let i = 0; i < size; i++) {
    state ^= state << 13
    state >>>= 0
    state ^= state >>> 17
    state ^= state << 5
    state >>>= 0
    bytes[i] = state & 0xff
  }
  return bytes
}

/** A size between `min` and `max` that depends only on `index`. */
export function sizeFor(index: number, min: number, max: number): number {
  return min + ((index * 7919) % (max - min + 1))
}

/** A record read back, copied out of the replay batch buffer. */
export interface Replayed {
  lsn: number
  data: Buffer
}

/** Reads `wal.replay(range)` to the end, copying every record. */
export async function collect(wal: Wal, range?: { from?: number; to?: number }): Promise<Replayed[]> {
  const records: Replayed[] = []
  for await (const { lsn, data } of wal.replay(range)) records.push({ lsn, data: Buffer.from(data) })
  return records
}

/**
 * Asserts that `actual` is exactly `expected`: same LSNs in the same order
 * and every payload byte-equal. Reports the first difference rather than
 * diffing megabytes of buffers.
 */
export function assertRecords(t: ExecutionContext, actual: Replayed[], expected: Replayed[], label = 'replay'): void {
  t.deepEqual(
    actual.map((record) => record.lsn),
    expected.map((record) => record.lsn),
    `${label}: LSNs`,
  )
  const firstWrong = expected.findIndex((record, index) => {
    const got = actual[index]
    return got === undefined || !got.data.equals(record.data)
  })
  t.is(
    firstWrong,
    -1,
    firstWrong === -1
      ? `${label}: bytes`
      : `${label}: bytes differ at LSN ${expected[firstWrong]!.lsn} (expected ${expected[firstWrong]!.data.length} bytes, got ${actual[firstWrong]?.data.length ?? 'nothing'})`,
  )
}

/** Plain-JS model of a log: what was appended, by LSN. */
export class Oracle {
  readonly records: Replayed[] = []

  /** Records a copy of `data` as appended at `lsn`. */
  add(lsn: number, data: Uint8Array): void {
    this.records.push({ lsn, data: Buffer.from(data) })
  }

  /** Records copies of a batch appended from LSN `first` on. */
  addBatch(first: number, batch: readonly Uint8Array[]): void {
    for (const [index, data] of batch.entries()) this.add(first + index, data)
  }

  /** The next LSN the model expects the log to assign. */
  get nextLsn(): number {
    return this.records.length + 1
  }

  /** Records with LSNs in `from..=to`. */
  range(from = 1, to = Number.MAX_SAFE_INTEGER): Replayed[] {
    return this.records.filter((record) => record.lsn >= from && record.lsn <= to)
  }
}

/** Names of the segment files in `dir`, in log order. */
export function segmentFiles(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((name) => /^\d{20}\.wal$/.test(name))
    .sort()
}
