/**
 * Pins `wal.tail()` and `createReadStream({ live: true })`: a tail yields the
 * durable records from its start, then follows new ones across segment
 * rotations, every LSN once, in order, byte-exact; it ends cleanly (the loop
 * just ends) on abort or `close()`; it throws WAL_TRUNCATED when it starts
 * below firstLsn or when truncateAfter removed records it had yielded (and
 * goes on with the new records when it had yielded none of them); it keeps
 * the process alive while it waits (fixtures/tail-keepalive.ts); and
 * truncateBefore racing it (retention in a loop while writers append) never
 * costs it a record.
 */
import { setTimeout as delay } from 'node:timers/promises'
import test from 'ava'
import type { Wal, WalRecord } from '../ts'
import { assertWalError, rejectionOf, thrownBy } from './helpers/errors'
import { fixture, runTsFixture, startNode, waitForOutput } from './helpers/processes'
import {
  assertExpected,
  blockUntil,
  copyRecord,
  type Expected,
  fill,
  type ReadRecord,
  recordBytes,
  SMALL_SEGMENT,
  segmentStarts,
  sleep,
} from './helpers/retention'
import { openWal, tempDir } from './helpers/wal'

/** About 1 KiB with its header: some 59 records per 64 KiB segment. */
const RECORD = 1000

/**
 * Reads `records` until it yields `lastLsn` (then aborts `abort`, so that
 * the loop must end by itself) or ends; returns copies of what it read.
 */
async function readUntil(records: AsyncIterable<WalRecord>, lastLsn: number, abort?: AbortController) {
  const read: ReadRecord[] = []
  for await (const record of records) {
    read.push(copyRecord(record))
    if (record.lsn >= lastLsn) abort?.abort()
  }
  return read
}

/** Writes `count` records of known content, `concurrency` writers at a time; notes them in `expected`. */
async function writeConcurrently(wal: Wal, expected: Expected, count: number, concurrency: number): Promise<void> {
  let left = count
  const writer = async (): Promise<void> => {
    while (left > 0) {
      left--
      const lsn = wal.lastLsn + 1
      const data = recordBytes(lsn, RECORD)
      expected.set(lsn, data)
      const got = await wal.write(data)
      if (got !== lsn) throw new Error(`write got LSN ${got}, expected ${lsn}`)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, writer))
}

test('tail yields what is there, then follows new records across many rotations, each once and byte-exact', async (t) => {
  const dir = tempDir(t)
  const wal = await openWal(t, dir, { segmentSize: SMALL_SEGMENT })
  const expected: Expected = new Map()
  await fill(wal, expected, 100, RECORD)
  const abort = new AbortController()
  const reading = readUntil(wal.tail({ signal: abort.signal }), 600, abort)
  for (let round = 0; round < 10; round++) {
    await writeConcurrently(wal, expected, 50, 4)
    await sleep(round % 3)
  }
  const read = await reading
  assertExpected(t, read, expected, 1, 600, 'tail')
  t.false(
    read.some((record) => record.checkpoint),
    'no checkpoint flags',
  )
  t.true(segmentStarts(dir).length >= 9, `${segmentStarts(dir).length} segments`)
})

test('tail({ from }) starts there, and one past the end waits for it', async (t) => {
  const wal = await openWal(t, tempDir(t), { segmentSize: SMALL_SEGMENT })
  const expected: Expected = new Map()
  await fill(wal, expected, 30, RECORD)
  const early = new AbortController()
  const fromMiddle = readUntil(wal.tail({ from: 12, signal: early.signal }), 30, early)
  const ahead = new AbortController()
  const fromAhead = readUntil(wal.tail({ from: 35, signal: ahead.signal }), 40, ahead)
  assertExpected(t, await fromMiddle, expected, 12, 30, 'from 12')
  await fill(wal, expected, 10, RECORD)
  assertExpected(t, await fromAhead, expected, 35, 40, 'from 35, written after it started')
})

test('aborting ends a waiting tail without an error; an aborted signal yields nothing', async (t) => {
  const wal = await openWal(t, tempDir(t))
  const expected: Expected = new Map()
  await fill(wal, expected, 5, 100)
  const abort = new AbortController()
  const reading = readUntil(wal.tail({ signal: abort.signal }), Number.POSITIVE_INFINITY)
  await sleep(50)
  abort.abort()
  assertExpected(t, await reading, expected, 1, 5, 'before the abort')
  t.deepEqual(await readUntil(wal.tail({ signal: AbortSignal.abort() }), 1), [])
})

test('close() ends a waiting tail without an error', async (t) => {
  const wal = await openWal(t, tempDir(t))
  const expected: Expected = new Map()
  await fill(wal, expected, 5, 100)
  const reading = readUntil(wal.tail(), Number.POSITIVE_INFINITY)
  await sleep(50)
  await wal.close()
  assertExpected(t, await reading, expected, 1, 5, 'before close')
})

test('tail from below firstLsn throws WAL_TRUNCATED; from firstLsn (the default) it starts there', async (t) => {
  const wal = await openWal(t, tempDir(t), { segmentSize: SMALL_SEGMENT })
  const expected: Expected = new Map()
  await fill(wal, expected, 300, RECORD)
  const first = await wal.truncateBefore(250)
  t.true(first > 1)
  const error = await rejectionOf(t, wal.tail({ from: first - 1 }).next(), 'tail from firstLsn - 1')
  t.is(assertWalError(t, error, 'WAL_TRUNCATED', 'tail from firstLsn - 1')?.lsn, first - 1)
  for (const options of [{ from: first }, {}]) {
    const abort = new AbortController()
    const read = await readUntil(wal.tail({ ...options, signal: abort.signal }), 300, abort)
    assertExpected(t, read, expected, first, 300, `tail(${JSON.stringify(options)})`)
  }
})

test('a tail that yielded records past a truncateAfter cut throws WAL_TRUNCATED', async (t) => {
  const wal = await openWal(t, tempDir(t), { segmentSize: SMALL_SEGMENT })
  const expected: Expected = new Map()
  await fill(wal, expected, 100, RECORD)
  const tail = wal.tail()
  const read: ReadRecord[] = []
  for (let lsn = 1; lsn <= 100; lsn++) {
    const step = await tail.next()
    if (step.done) break
    read.push(copyRecord(step.value))
  }
  assertExpected(t, read, expected, 1, 100, 'before the cut')
  const waiting = tail.next()
  t.is(await wal.truncateAfter(50), 50)
  const error = await rejectionOf(t, waiting, 'the tail after the cut')
  t.is(assertWalError(t, error, 'WAL_TRUNCATED', 'the tail after the cut')?.lsn, 51)
})

test('a tail that yielded nothing past the cut goes on with the records written after it', async (t) => {
  const wal = await openWal(t, tempDir(t), { sync: 'none', segmentSize: SMALL_SEGMENT })
  const expected: Expected = new Map()
  await fill(wal, expected, 50, RECORD)
  const abort = new AbortController()
  const reading = readUntil(wal.tail({ signal: abort.signal }), 60, abort)
  await sleep(20)
  for (let lsn = 51; lsn <= 60; lsn++) wal.append(recordBytes(lsn, RECORD))
  const cutting = wal.truncateAfter(50)
  // The tail sees no flush report before the cut is done, so it never reads 51..60 of the first generation.
  blockUntil(() => wal.lastLsn === 50 && wal.durableLsn === 50, 'the cut to LSN 50')
  t.is(await cutting, 50)
  await fill(wal, expected, 10, RECORD, 1)
  assertExpected(t, await reading, expected, 1, 60, 'tail across the cut')
})

test('createReadStream({ live: true }) delivers records written after it started', async (t) => {
  const wal = await openWal(t, tempDir(t), { segmentSize: SMALL_SEGMENT })
  const expected: Expected = new Map()
  await fill(wal, expected, 20, RECORD)
  const stream = wal.createReadStream({ live: true, from: 5 })
  const read: ReadRecord[] = []
  const reading = new Promise<void>((resolve, reject) => {
    stream.on('data', (record: WalRecord) => {
      read.push(copyRecord(record))
      if (record.lsn === 120) stream.destroy()
    })
    stream.on('close', resolve)
    stream.on('error', reject)
  })
  await writeConcurrently(wal, expected, 100, 3)
  await reading
  assertExpected(t, read, expected, 5, 120, 'live stream')
})

test('a live read stream ends when the log closes', async (t) => {
  const wal = await openWal(t, tempDir(t))
  const expected: Expected = new Map()
  await fill(wal, expected, 3, 100)
  const stream = wal.createReadStream({ live: true })
  const read: ReadRecord[] = []
  stream.on('data', (record: WalRecord) => read.push(copyRecord(record)))
  const ended = new Promise<void>((resolve, reject) => {
    stream.on('end', resolve)
    stream.on('error', reject)
  })
  await sleep(50)
  await wal.close()
  await ended
  assertExpected(t, read, expected, 1, 3, 'live stream')
})

test('bad tail options throw WAL_INVALID_ARGUMENT', async (t) => {
  const wal = await openWal(t, tempDir(t))
  await wal.write(recordBytes(1, 10))
  const bad: [string, unknown][] = [
    ['from: -1', { from: -1 }],
    ['from: 1.5', { from: 1.5 }],
    ["from: '1'", { from: '1' }],
    ['an unknown key', { to: 3 }],
    ['a signal that is not one', { signal: 'abort' }],
  ]
  for (const [label, options] of bad) {
    assertWalError(
      t,
      thrownBy(t, () => wal.tail(options as never), label),
      'WAL_INVALID_ARGUMENT',
      label,
    )
  }
  const stream = thrownBy(t, () => wal.createReadStream({ live: true, to: 3 }), 'a live stream with to')
  assertWalError(t, stream, 'WAL_INVALID_ARGUMENT', 'a live stream with to')
})

test('tail({ from: 0 }) throws WAL_INVALID_ARGUMENT: from starts at 1 (TailOptions)', async (t) => {
  const wal = await openWal(t, tempDir(t))
  await wal.write(recordBytes(1, 10))
  let error: unknown
  try {
    await wal.tail({ from: 0 }).next()
  } catch (caught) {
    error = caught
  }
  assertWalError(t, error, 'WAL_INVALID_ARGUMENT', 'from: 0')
})

test('a waiting tail keeps the process alive until a record comes', async (t) => {
  const dir = tempDir(t)
  const result = await runTsFixture('tail-keepalive.ts', [dir, 'append'], { timeoutMs: 20_000 })
  t.is(result.stderr, '')
  t.is(result.stdout, 'ready\nrecord 1 late record\ndone\n')
  t.is(result.code, 0)
})

test('a tail with nothing to read does not let the process exit', async (t) => {
  const dir = tempDir(t)
  const running = startNode(['--import', 'tsx', fixture('tail-keepalive.ts'), dir, 'idle'], { timeoutMs: 20_000 })
  await waitForOutput(running.child, 'ready')
  await delay(1500)
  t.is(running.child.exitCode, null, 'the child exited while its tail was waiting')
  running.child.kill('SIGKILL')
  const result = await running.result
  t.is(result.signal, 'SIGKILL')
  t.is(result.stdout, 'ready\n')
})

test('retention racing a tail: truncateBefore in a loop while writers append never costs the tail a record', async (t) => {
  const dir = tempDir(t)
  const wal = await openWal(t, dir, { segmentSize: SMALL_SEGMENT })
  const expected: Expected = new Map()
  const total = 3000
  await fill(wal, expected, 100, RECORD)
  const abort = new AbortController()
  let wrong: string | undefined
  let next = 1
  const reading = (async () => {
    for await (const { lsn, data } of wal.tail({ signal: abort.signal })) {
      if (lsn !== next || !data.equals(expected.get(lsn)!)) wrong ??= `got LSN ${lsn} (expected ${next})`
      next = lsn + 1
      if (lsn === total) abort.abort()
    }
  })()
  let writing = true
  let truncations = 0
  const retention = (async () => {
    while (writing) {
      await wal.truncateBefore(wal.lastLsn)
      truncations++
      await sleep(2)
    }
  })()
  await writeConcurrently(wal, expected, total - 100, 8)
  writing = false
  await Promise.all([reading, retention])
  t.is(wrong, undefined, 'a record out of order or with the wrong bytes')
  t.is(next, total + 1, 'the tail delivered every LSN up to the last')
  t.log(`${truncations} truncateBefore calls; firstLsn ${wal.firstLsn}, ${segmentStarts(dir).length} segments left`)
  t.true(wal.firstLsn > 1000, `retention removed what the tail had read (firstLsn ${wal.firstLsn})`)
})
