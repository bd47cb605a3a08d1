/**
 * Pins checkpoints: `wal.checkpoint(data)` resolves with the checkpoint's LSN
 * once it is durable; `lastCheckpoint` is the latest one still in the log
 * (null when none), also after a reopen, after truncateBefore removed its
 * segment, and after truncateAfter cut it (then the previous one); replay
 * marks `checkpoint: true` on checkpoint records only, byte-exact like any
 * record; `replay({ fromCheckpoint: true })` starts at the latest checkpoint
 * (at the first record without one) and refuses `from` beside it.
 */
import test from 'ava'
import type { Wal } from '../ts'
import { assertWalError, thrownBy } from './helpers/errors'
import {
  assertExpected,
  type Expected,
  fill,
  type ReadRecord,
  readAll,
  recordBytes,
  SMALL_SEGMENT,
  segmentStarts,
} from './helpers/retention'
import { openWal, tempDir } from './helpers/wal'

const RECORD = 1000

/** Writes a checkpoint holding `size` bytes of known content; checks and returns its LSN. */
async function checkpointOf(wal: Wal, expected: Expected, size: number): Promise<number> {
  const lsn = wal.lastLsn + 1
  const data = recordBytes(lsn, size, 7)
  expected.set(lsn, data)
  const got = await wal.checkpoint(data)
  if (got !== lsn) throw new Error(`checkpoint got LSN ${got}, expected ${lsn}`)
  return got
}

/** LSNs of the records replay marks as checkpoints. */
function checkpointLsns(records: readonly ReadRecord[]): number[] {
  return records.filter((record) => record.checkpoint).map((record) => record.lsn)
}

/** The LSNs of `records`. */
function lsns(records: readonly ReadRecord[]): number[] {
  return records.map((record) => record.lsn)
}

test('checkpoint resolves with its LSN once it is durable, and becomes lastCheckpoint', async (t) => {
  const wal = await openWal(t, tempDir(t), { sync: 'none' })
  t.is(wal.lastCheckpoint, null, 'a new log has none')
  for (let lsn = 1; lsn <= 5; lsn++) wal.append(recordBytes(lsn, 100))
  t.is(wal.durableLsn, 0, "sync 'none' has synced nothing yet")
  const lsn = await wal.checkpoint(Buffer.from('state at 5'))
  t.is(lsn, 6)
  t.true(wal.durableLsn >= 6, `durable LSN ${wal.durableLsn} when checkpoint resolved`)
  t.is(wal.lastCheckpoint, 6)
  wal.append(recordBytes(7, 100))
  t.is(await wal.checkpoint(Buffer.alloc(0)), 8, 'an empty checkpoint is a marker')
  t.is(wal.lastCheckpoint, 8)
})

test('replay marks checkpoint: true on checkpoint records only, with their bytes', async (t) => {
  const dir = tempDir(t)
  const wal = await openWal(t, dir, { segmentSize: SMALL_SEGMENT })
  const expected: Expected = new Map()
  await fill(wal, expected, 10, RECORD)
  const checkpoints = [await checkpointOf(wal, expected, 300)]
  const batch = [recordBytes(12, 40), recordBytes(13, 0), recordBytes(14, 40)]
  t.deepEqual(wal.appendBatch(batch), { first: 12, last: 14 })
  for (const [index, data] of batch.entries()) expected.set(12 + index, data)
  checkpoints.push(await checkpointOf(wal, expected, 0))
  await fill(wal, expected, 150, RECORD)
  checkpoints.push(await checkpointOf(wal, expected, 5000))
  const last = await fill(wal, expected, 3, RECORD)

  const records = await readAll(wal.replay())
  assertExpected(t, records, expected, 1, last, 'replay')
  t.deepEqual(checkpointLsns(records), checkpoints)
  t.deepEqual(checkpoints, [11, 15, 166])
  t.is(wal.lastCheckpoint, 166)
})

test('replay({ fromCheckpoint: true }) starts at the latest checkpoint, or at the first record without one', async (t) => {
  const wal = await openWal(t, tempDir(t), { segmentSize: SMALL_SEGMENT })
  const expected: Expected = new Map()
  await fill(wal, expected, 20, RECORD)
  assertExpected(t, await readAll(wal.replay({ fromCheckpoint: true })), expected, 1, 20, 'no checkpoint yet')
  await checkpointOf(wal, expected, 64)
  await fill(wal, expected, 100, RECORD)
  const latest = await checkpointOf(wal, expected, 64)
  const last = await fill(wal, expected, 100, RECORD)

  const records = await readAll(wal.replay({ fromCheckpoint: true }))
  assertExpected(t, records, expected, latest, last, 'from the checkpoint')
  t.true(records[0]?.checkpoint, 'it starts with the checkpoint record itself')
  const bounded = await readAll(wal.replay({ fromCheckpoint: true, to: latest + 2 }))
  assertExpected(t, bounded, expected, latest, latest + 2, 'with to')
  t.deepEqual(await readAll(wal.replay({ fromCheckpoint: false, from: 3, to: 4 })).then(lsns), [3, 4])
})

test('fromCheckpoint together with from, or not a boolean, throws WAL_INVALID_ARGUMENT', async (t) => {
  const wal = await openWal(t, tempDir(t))
  await wal.checkpoint(Buffer.from('x'))
  const both = thrownBy(t, () => wal.replay({ fromCheckpoint: true, from: 1 }), 'fromCheckpoint and from')
  assertWalError(t, both, 'WAL_INVALID_ARGUMENT', 'fromCheckpoint and from')
  const notBoolean = thrownBy(t, () => wal.replay({ fromCheckpoint: 1 as unknown as boolean }), 'fromCheckpoint: 1')
  assertWalError(t, notBoolean, 'WAL_INVALID_ARGUMENT', 'fromCheckpoint: 1')
  const live = thrownBy(t, () => wal.createReadStream({ live: true, fromCheckpoint: true }), 'live stream')
  assertWalError(t, live, 'WAL_INVALID_ARGUMENT', 'a live stream with fromCheckpoint')
})

test('checkpoints survive a reopen, also one in an earlier segment than the last', async (t) => {
  const dir = tempDir(t)
  const wal = await openWal(t, dir, { segmentSize: SMALL_SEGMENT })
  const expected: Expected = new Map()
  await fill(wal, expected, 5, RECORD)
  const first = await checkpointOf(wal, expected, 10)
  const second = await checkpointOf(wal, expected, 10)
  const last = await fill(wal, expected, 300, RECORD)
  t.true(segmentStarts(dir).filter((start) => start > second).length >= 3, 'later segments hold no checkpoint')
  await wal.close()

  const reopened = await openWal(t, dir, { segmentSize: SMALL_SEGMENT, recovery: 'absolute' })
  t.is(reopened.lastCheckpoint, second)
  const records = await readAll(reopened.replay())
  assertExpected(t, records, expected, 1, last, 'after reopen')
  t.deepEqual(checkpointLsns(records), [first, second])
  assertExpected(t, await readAll(reopened.replay({ fromCheckpoint: true })), expected, second, last, 'from it')
})

test('truncateAfter below the latest checkpoint moves lastCheckpoint back to the previous one', async (t) => {
  const dir = tempDir(t)
  const wal = await openWal(t, dir, { segmentSize: SMALL_SEGMENT })
  const expected: Expected = new Map()
  await fill(wal, expected, 9, RECORD)
  const early = await checkpointOf(wal, expected, 10)
  await fill(wal, expected, 140, RECORD)
  const middle = await checkpointOf(wal, expected, 10)
  await fill(wal, expected, 5, RECORD)
  const late = await checkpointOf(wal, expected, 10)
  await fill(wal, expected, 5, RECORD)
  t.deepEqual([early, middle, late], [10, 151, 157])
  t.true(
    segmentStarts(dir).some((start) => start > early && start <= middle),
    'early is in an earlier segment',
  )

  t.is(await wal.truncateAfter(late), late, 'cutting after it keeps it')
  t.is(wal.lastCheckpoint, late)
  t.is(await wal.truncateAfter(late - 1), late - 1)
  t.is(wal.lastCheckpoint, middle, 'within the segment')
  t.is(await wal.truncateAfter(middle - 20), middle - 20)
  t.is(wal.lastCheckpoint, early, 'back to an earlier segment')
  assertExpected(t, await readAll(wal.replay({ fromCheckpoint: true })), expected, early, middle - 20, 'replay')

  const rewritten = wal.lastLsn + 1
  t.is(await wal.write(recordBytes(rewritten, RECORD, 1)), rewritten, 'a data record where a checkpoint was')
  t.is(wal.lastCheckpoint, early)
  await wal.close()
  const reopened = await openWal(t, dir, { segmentSize: SMALL_SEGMENT, recovery: 'absolute' })
  t.is(reopened.lastCheckpoint, early, 'after a reopen')
  t.is(await reopened.truncateAfter(early - 1), early - 1)
  t.is(reopened.lastCheckpoint, null, 'none left')
  const records = await readAll(reopened.replay({ fromCheckpoint: true }))
  assertExpected(t, records, expected, 1, early - 1, 'without a checkpoint, from the first record')
})

test('truncateBefore that removes the segment of the only checkpoint leaves none', async (t) => {
  const dir = tempDir(t)
  const wal = await openWal(t, dir, { segmentSize: SMALL_SEGMENT })
  const expected: Expected = new Map()
  await checkpointOf(wal, expected, 10)
  const last = await fill(wal, expected, 300, RECORD)
  const first = await wal.truncateBefore(last)
  t.true(first > 1)
  t.is(wal.lastCheckpoint, null)
  assertExpected(t, await readAll(wal.replay({ fromCheckpoint: true })), expected, first, last, 'from firstLsn')
  await wal.close()
  t.is((await openWal(t, dir, { segmentSize: SMALL_SEGMENT })).lastCheckpoint, null, 'after a reopen')
})
