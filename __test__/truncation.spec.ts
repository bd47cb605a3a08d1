/**
 * Pins retention and cutting back (`truncateBefore`, `truncateAfter`):
 *
 * - truncateBefore removes whole segments only: firstLsn moves to a segment
 *   boundary at or below the LSN asked for, the files go, replay from 1
 *   starts at firstLsn, and a reopen keeps it. It never removes the segment
 *   appends go to, nor a segment a running replay or tail still has to read;
 *   once that reader is done (finished or closed early), it removes the rest.
 * - truncateAfter cuts inside the last segment and across segments (a batch
 *   holding the LSN goes whole); the next append takes the next LSN; what
 *   remains replays byte-exact, also after a reopen in 'absolute' recovery.
 *   Appends meanwhile throw WAL_BUSY; pending promises of cut records reject
 *   WAL_TRUNCATED; bad LSNs reject WAL_INVALID_ARGUMENT.
 *
 * Every comparison is against what the test wrote (`Expected`), never the
 * log's own output.
 */
import test, { type ExecutionContext } from 'ava'
import type { Wal } from '../ts'
import { BATCH_BYTES } from '../ts/replay'
import { assertWalError, rejectionOf, thrownBy } from './helpers/errors'
import {
  assertExpected,
  blockUntil,
  copyRecord,
  type Expected,
  fill,
  hasFile,
  readAll,
  recordBytes,
  SMALL_SEGMENT,
  segmentBytes,
  segmentStarts,
} from './helpers/retention'
import { openWal, tempDir } from './helpers/wal'

/** About 59 records of this size fit a 64 KiB segment. */
const RECORD = 1000
/** Records this large make the native reader's 1 MiB batches span many segments (3 records each). */
const LARGE_RECORD = 20_000

/** A log of `count` records of `size` bytes in 64 KiB segments; its directory, the log and what it holds. */
async function filledLog(t: ExecutionContext, count: number, size = RECORD) {
  const dir = tempDir(t)
  const wal = await openWal(t, dir, { segmentSize: SMALL_SEGMENT })
  const expected: Expected = new Map()
  await fill(wal, expected, count, size)
  return { dir, wal, expected, starts: segmentStarts(dir) }
}

/** Asserts that `wal` replays exactly `from..=to` as written, from LSN 1 (so a removed head is skipped). */
async function assertLog(t: ExecutionContext, wal: Wal, expected: Expected, from: number, to: number) {
  t.is(wal.firstLsn, from, 'firstLsn')
  t.is(wal.lastLsn, to, 'lastLsn')
  assertExpected(t, await readAll(wal.replay({ from: 1 })), expected, from, to, `replay of ${from}..${to}`)
}

test('truncateBefore removes the whole segments below lsn; firstLsn moves to a segment boundary at or below it', async (t) => {
  const { dir, wal, expected, starts } = await filledLog(t, 400)
  t.true(starts.length >= 6, `${starts.length} segments`)

  t.is(await wal.truncateBefore(starts[2]! + 7), starts[2], 'inside a segment: back to its start')
  t.deepEqual(segmentStarts(dir), starts.slice(2), 'the two first files are gone')
  t.true(hasFile(dir, 'HEAD'), 'HEAD names the new first segment')
  t.is(wal.stats().segments, starts.length - 2)
  t.is(wal.stats().bytesOnDisk, segmentBytes(dir))
  await assertLog(t, wal, expected, starts[2]!, 400)

  t.is(await wal.truncateBefore(starts[4]!), starts[4], 'at a boundary: that segment stays first')
  t.is(await wal.truncateBefore(1), starts[4], 'below firstLsn: nothing changes')
  t.deepEqual(segmentStarts(dir), starts.slice(4))
  assertExpected(t, await readAll(wal.replay({ from: 3 })), expected, starts[4]!, 400, 'replay from a removed LSN')
  await wal.close()

  const reopened = await openWal(t, dir, { segmentSize: SMALL_SEGMENT })
  await assertLog(t, reopened, expected, starts[4]!, 400)
  t.is(reopened.recovery.records, 400 - starts[4]! + 1, 'recovery counts the records kept')
  t.is(reopened.append(recordBytes(401, RECORD)), 401, 'appends continue after the last LSN')
})

test('truncateBefore never removes the segment appends go to', async (t) => {
  const { dir, wal, expected, starts } = await filledLog(t, 300)
  const last = starts.at(-1)!
  t.is(await wal.truncateBefore(Number.MAX_SAFE_INTEGER), last)
  t.deepEqual(segmentStarts(dir), [last])
  await assertLog(t, wal, expected, last, 300)
  await fill(wal, expected, 100, RECORD)
  await wal.close()
  await assertLog(t, await openWal(t, dir, { segmentSize: SMALL_SEGMENT }), expected, last, 400)
})

test('a replay in progress keeps the segments it still has to read; once finished, they can go', async (t) => {
  const { wal, expected, starts } = await filledLog(t, 200, LARGE_RECORD)
  const replay = wal.replay()
  const first = await replay.next()
  t.is(first.value?.lsn, 1)
  const firstAfter = await wal.truncateBefore(200)
  // The reader has fetched one batch (about BATCH_BYTES) at most: it is no further than that.
  const readAhead = Math.ceil(BATCH_BYTES / LARGE_RECORD) + 1
  t.true(firstAfter <= 1 + readAhead, `firstLsn ${firstAfter} passed the reader (at most ${1 + readAhead})`)
  t.true(firstAfter < starts.at(-1)!, 'segments were held back')
  const rest = []
  for await (const record of replay) rest.push(copyRecord(record))
  assertExpected(t, rest, expected, 2, 200, 'the rest of the replay')

  t.is(await wal.truncateBefore(200), starts.at(-1)!, 'the finished replay holds nothing back')
})

test('a replay closed early no longer holds truncation back', async (t) => {
  const { wal, starts } = await filledLog(t, 200, LARGE_RECORD)
  const replay = wal.replay()
  t.is((await replay.next()).value?.lsn, 1)
  await replay.return?.()
  t.is(await wal.truncateBefore(200), starts.at(-1)!, 'segments below the last one are removed')
})

test('a running tail keeps the segments it still has to read', async (t) => {
  const { wal, expected, starts } = await filledLog(t, 200, LARGE_RECORD)
  const abort = new AbortController()
  const tail = wal.tail({ signal: abort.signal })
  t.is((await tail.next()).value?.lsn, 1)
  const firstAfter = await wal.truncateBefore(200)
  t.true(firstAfter < starts.at(-1)!, `segments were held back (firstLsn ${firstAfter})`)
  const rest = []
  for (let lsn = 2; lsn <= 200; lsn++) {
    const step = await tail.next()
    if (step.done) break
    rest.push(copyRecord(step.value))
  }
  assertExpected(t, rest, expected, 2, 200, 'the rest of the tail')
  abort.abort()
  t.true((await tail.next()).done)
})

test('a tail ended by abort no longer holds truncation back', async (t) => {
  const { wal, starts } = await filledLog(t, 200, LARGE_RECORD)
  const abort = new AbortController()
  const tail = wal.tail({ signal: abort.signal })
  t.is((await tail.next()).value?.lsn, 1)
  abort.abort()
  while (!(await tail.next()).done) {}
  t.is(await wal.truncateBefore(200), starts.at(-1)!, 'segments below the last one are removed')
})

test('truncateAfter inside the last segment cuts the tail; appends continue at lastKept + 1', async (t) => {
  const { dir, wal, expected, starts } = await filledLog(t, 100)
  const cut = starts.at(-1)! + 5
  t.true(cut < 100)
  t.is(await wal.truncateAfter(cut), cut)
  t.is(wal.lastLsn, cut)
  t.is(wal.durableLsn, cut)
  t.deepEqual(segmentStarts(dir), starts)
  await assertLog(t, wal, expected, 1, cut)

  t.is(await fill(wal, expected, 30, RECORD, 1), cut + 30, 'the cut LSNs are written again')
  await assertLog(t, wal, expected, 1, cut + 30)
  await wal.close()
  t.false(hasFile(dir, 'TRUNCATE'))
  const reopened = await openWal(t, dir, { segmentSize: SMALL_SEGMENT, recovery: 'absolute' })
  await assertLog(t, reopened, expected, 1, cut + 30)
})

test('truncateAfter across segments removes the later segments', async (t) => {
  const { dir, wal, expected, starts } = await filledLog(t, 400)
  const cut = starts[2]! + 3
  t.is(await wal.truncateAfter(cut), cut)
  t.deepEqual(segmentStarts(dir), starts.slice(0, 3))
  t.is(wal.stats().segments, 3)
  await assertLog(t, wal, expected, 1, cut)

  const last = await fill(wal, expected, 200, RECORD, 1)
  t.is(last, cut + 200)
  t.true(segmentStarts(dir).length > 3, 'the rewritten tail rolls new segments')
  await assertLog(t, wal, expected, 1, last)
  await wal.close()
  await assertLog(t, await openWal(t, dir, { segmentSize: SMALL_SEGMENT, recovery: 'absolute' }), expected, 1, last)
})

test('truncateAfter just before a segment boundary: the next append takes that boundary LSN', async (t) => {
  const { dir, wal, expected, starts } = await filledLog(t, 400)
  const cut = starts[3]! - 1
  t.is(await wal.truncateAfter(cut), cut)
  t.true(
    segmentStarts(dir).every((first) => first <= starts[3]!),
    `no segment after LSN ${cut + 1}: ${segmentStarts(dir)}`,
  )
  await assertLog(t, wal, expected, 1, cut)
  t.is(await fill(wal, expected, 100, RECORD, 1), cut + 100)
  await wal.close()
  await assertLog(
    t,
    await openWal(t, dir, { segmentSize: SMALL_SEGMENT, recovery: 'absolute' }),
    expected,
    1,
    cut + 100,
  )
})

test('truncateAfter removes a batch holding lsn whole', async (t) => {
  const dir = tempDir(t)
  const wal = await openWal(t, dir)
  const expected: Expected = new Map()
  await fill(wal, expected, 10, 50)
  t.deepEqual(wal.appendBatch([1, 2, 3, 4, 5].map((index) => recordBytes(100 + index, 50))), { first: 11, last: 15 })
  await fill(wal, expected, 5, 50)
  t.is(await wal.truncateAfter(12), 10, 'the batch 11..15 goes whole')
  await assertLog(t, wal, expected, 1, 10)
  t.is(wal.append(recordBytes(11, 50, 1)), 11)
})

test('truncateAfter at or past lastLsn changes nothing', async (t) => {
  const { dir, wal, expected, starts } = await filledLog(t, 100)
  t.is(await wal.truncateAfter(100), 100)
  t.is(await wal.truncateAfter(5000), 100)
  t.deepEqual(segmentStarts(dir), starts)
  await assertLog(t, wal, expected, 1, 100)
})

test('appends while truncateAfter runs throw WAL_BUSY; after it, they continue at lastKept + 1', async (t) => {
  const { wal, expected } = await filledLog(t, 100)
  const cutting = wal.truncateAfter(50)
  assertWalError(
    t,
    thrownBy(t, () => wal.append(recordBytes(51, RECORD, 1)), 'append'),
    'WAL_BUSY',
    'append',
  )
  assertWalError(
    t,
    thrownBy(t, () => wal.appendBatch([recordBytes(51, 9)]), 'appendBatch'),
    'WAL_BUSY',
    'batch',
  )
  const write = wal.write(recordBytes(51, RECORD, 1))
  const checkpoint = wal.checkpoint(recordBytes(51, RECORD, 1))
  assertWalError(t, await rejectionOf(t, write, 'write'), 'WAL_BUSY', 'write')
  assertWalError(t, await rejectionOf(t, checkpoint, 'checkpoint'), 'WAL_BUSY', 'checkpoint')
  t.is(await cutting, 50)
  t.is(await fill(wal, expected, 1, RECORD, 1), 51)
  await assertLog(t, wal, expected, 1, 51)
})

test('pending write and sync promises of records the cut removes reject WAL_TRUNCATED; kept ones resolve', async (t) => {
  const dir = tempDir(t)
  const wal = await openWal(t, dir, { sync: 'none', segmentSize: SMALL_SEGMENT })
  const expected: Expected = new Map()
  await fill(wal, expected, 90, RECORD)
  for (let lsn = 91; lsn <= 105; lsn++) expected.set(lsn, recordBytes(lsn, RECORD))
  const write = (lsn: number): Promise<number> => wal.write(expected.get(lsn)!, { durable: true })
  for (let lsn = 91; lsn <= 94; lsn++) wal.append(expected.get(lsn)!)
  const kept = write(95)
  for (let lsn = 96; lsn <= 104; lsn++) wal.append(expected.get(lsn)!)
  const doomedSync = wal.sync(103)
  const doomedWrite = write(105)
  const cutting = wal.truncateAfter(100)
  // No callback runs until the cut is done: no flush report can settle 103
  // or 105 as durable before they are cut.
  blockUntil(() => wal.lastLsn === 100 && wal.durableLsn === 100, 'the cut to LSN 100')

  t.is(await kept, 95, 'a record the cut keeps')
  const syncError = assertWalError(t, await rejectionOf(t, doomedSync, 'sync(103)'), 'WAL_TRUNCATED', 'sync(103)')
  const writeError = assertWalError(t, await rejectionOf(t, doomedWrite, 'write 105'), 'WAL_TRUNCATED', 'write 105')
  t.is(syncError?.lsn, 101, 'the first LSN removed')
  t.is(writeError?.lsn, 101)
  t.is(await cutting, 100)
  await assertLog(t, wal, expected, 1, 100)
})

test('bad LSNs for truncateBefore and truncateAfter reject WAL_INVALID_ARGUMENT and change nothing', async (t) => {
  const { dir, wal, expected, starts } = await filledLog(t, 300)
  const first = await wal.truncateBefore(starts[2]!)
  t.is(first, starts[2])
  const bad = [first - 2, 1.5, -1, Number.NaN, Number.POSITIVE_INFINITY, '7' as unknown as number]
  for (const lsn of bad) {
    const after = await rejectionOf(t, wal.truncateAfter(lsn), `truncateAfter(${String(lsn)})`)
    assertWalError(t, after, 'WAL_INVALID_ARGUMENT', `truncateAfter(${String(lsn)})`)
  }
  for (const lsn of bad.slice(1)) {
    const before = await rejectionOf(t, wal.truncateBefore(lsn), `truncateBefore(${String(lsn)})`)
    assertWalError(t, before, 'WAL_INVALID_ARGUMENT', `truncateBefore(${String(lsn)})`)
  }
  await assertLog(t, wal, expected, first, 300)
  t.deepEqual(segmentStarts(dir), starts.slice(2))

  t.is(await wal.truncateAfter(first - 1), first - 1, 'firstLsn - 1 empties the log')
  t.is(wal.lastLsn, first - 1)
  t.deepEqual(await readAll(wal.replay()), [])
  await wal.close()
  const reopened = await openWal(t, dir, { segmentSize: SMALL_SEGMENT, recovery: 'absolute' })
  t.is(reopened.lastLsn, first - 1, 'the emptied log keeps its place after a reopen')
  t.is(reopened.append(recordBytes(first, RECORD, 1)), first, 'and continues at the LSN after the cut')
})
