/**
 * Pins backpressure: an append that would take the bytes appended and not
 * yet durable past `bufferLimit` throws WAL_BACKPRESSURE and appends nothing
 * (so a producer that never waits cannot grow memory without bound), while a
 * producer that awaits `ready()` before each append never meets it, whatever
 * the sync policy; `'drain'` fires when the buffer falls below the mark
 * after such pressure; `stats().bufferedBytes` counts what is not yet
 * durable; `ready()` settles on close; the options are validated.
 */
import test from 'ava'
import { Wal } from '../ts/index'
import { assertWalError, rejectionOf } from './helpers/errors'
import { collect, openWal, payload, tempDir } from './helpers/wal'

const RECORD = 1000
/** A record of RECORD bytes on disk: 24-byte header, payload, padding to 8. */
const RECORD_BYTES = 1024

test('appends that outrun the disk stop at bufferLimit with WAL_BACKPRESSURE; what was appended stays intact', async (t) => {
  const dir = tempDir(t)
  const bufferLimit = 64 * RECORD_BYTES
  const wal = await openWal(t, dir, {
    sync: 'none',
    maxRecordSize: RECORD,
    maxBufferedBytes: 16 * RECORD_BYTES,
    bufferLimit,
  })
  let appended = 0
  let refusal: unknown
  try {
    // Under 'none' nothing flushes before 4 MiB are pending: the limit is met first.
    for (; appended < 100_000; appended++) wal.append(payload(appended + 1, RECORD))
  } catch (error) {
    refusal = error
  }
  const error = assertWalError(t, refusal, 'WAL_BACKPRESSURE', 'the append past the limit')
  t.is(appended, bufferLimit / RECORD_BYTES, 'appends are refused exactly at the limit')
  t.is(error?.limit, bufferLimit)
  t.is(error?.buffered, bufferLimit)
  t.is(error?.size, RECORD_BYTES)
  t.is(wal.lastLsn, appended, 'the refused append appended nothing')
  // The refusal asked for a flush (so that 'drain' follows), which may already be
  // running: the buffer is at the limit or on its way down, never above it.
  t.true(wal.stats().bufferedBytes <= bufferLimit)

  await wal.sync()
  t.is(wal.stats().bufferedBytes, 0)
  t.is(wal.append(payload(appended + 1, RECORD)), appended + 1, 'appends go on once the bytes are durable')
  await wal.close()
  const reopened = await openWal(t, dir)
  const records = await collect(reopened)
  t.is(records.length, appended + 1)
  t.true(records.every(({ lsn, data }) => data.equals(payload(lsn, RECORD))))
})

for (const sync of ['none', 'always', { bytes: 1 << 20 }, { intervalMs: 50 }] as const) {
  test(`a producer that awaits ready() before appending never meets WAL_BACKPRESSURE (sync ${JSON.stringify(sync)})`, async (t) => {
    const dir = tempDir(t)
    const maxBufferedBytes = 16 * RECORD_BYTES
    const wal = await openWal(t, dir, { sync, maxRecordSize: RECORD, maxBufferedBytes, bufferLimit: 20 * RECORD_BYTES })
    let waits = 0
    let peak = 0
    for (let lsn = 1; lsn <= 2000; lsn++) {
      const buffered = wal.stats().bufferedBytes
      if (buffered >= maxBufferedBytes) waits++
      await wal.ready()
      t.true(wal.stats().bufferedBytes < maxBufferedBytes || lsn === 1, 'ready() resolved above the mark')
      t.is(wal.append(payload(lsn, RECORD)), lsn)
      peak = Math.max(peak, wal.stats().bufferedBytes)
    }
    t.log(`${waits} appends had to wait for ready(); peak ${peak} bytes buffered`)
    t.true(peak <= maxBufferedBytes + RECORD_BYTES)
    await wal.close()
    const reopened = await openWal(t, dir)
    t.is((await collect(reopened)).length, 2000)
  })
}

test('ready() resolves at once below the mark, and rejects with WAL_CLOSED after close or when close comes first', async (t) => {
  const dir = tempDir(t)
  const wal = await Wal.open(dir, {
    sync: 'none',
    maxRecordSize: RECORD,
    maxBufferedBytes: 4 * RECORD_BYTES,
    bufferLimit: 64 * RECORD_BYTES,
  })
  await wal.ready()
  for (let lsn = 1; lsn <= 10; lsn++) wal.append(payload(lsn, RECORD))
  // Above the mark: ready() asks for a flush and waits for its report, or
  // close settles it; either way it does not hang.
  const waiting = wal.ready().then(
    () => 'resolved',
    (error: { code?: string }) => String(error.code),
  )
  await wal.close()
  t.true(['resolved', 'WAL_CLOSED'].includes(await waiting))
  assertWalError(t, await rejectionOf(t, wal.ready(), 'ready after close'), 'WAL_CLOSED', 'ready after close')
})

test('ready() resolves under sync none even when more is appended after it asked for a flush', async (t) => {
  const dir = tempDir(t)
  const options = {
    sync: 'none',
    maxRecordSize: RECORD,
    maxBufferedBytes: 4 * RECORD_BYTES,
    bufferLimit: 64 * RECORD_BYTES,
  } as const
  const wal = await openWal(t, dir, options)
  let lsn = 0
  for (; lsn < 10; lsn++) wal.append(payload(lsn + 1, RECORD))
  const ready = wal.ready()
  // Appended once ready()'s flush has most likely been taken: if its report
  // still finds these above the mark, nothing under 'none' flushes them
  // unless ready() asks again.
  await new Promise((resolve) => setTimeout(resolve, 5))
  for (; lsn < 20; lsn++) wal.append(payload(lsn + 1, RECORD))
  // Before the fix this waited forever (ava fails a test whose promise never settles).
  t.is(await ready, undefined)
  await wal.close()
  t.is((await collect(await openWal(t, dir, options))).length, 20)
})

test("'drain' fires once the buffer falls below the mark after an append was refused at the limit (sync none)", async (t) => {
  const wal = await openWal(t, tempDir(t), {
    sync: 'none',
    maxRecordSize: RECORD,
    maxBufferedBytes: 4 * RECORD_BYTES,
    bufferLimit: 8 * RECORD_BYTES,
  })
  let drains = 0
  wal.on('drain', () => drains++)
  let appended = 0
  try {
    for (; appended < 100; appended++) wal.append(payload(appended + 1, RECORD))
  } catch (error) {
    assertWalError(t, error, 'WAL_BACKPRESSURE', 'the append past the limit')
  }
  t.is(appended, 8)
  // Nothing else flushes under 'none': the refused append asked for the flush that drains.
  await new Promise<void>((resolve) => wal.once('drain', resolve))
  t.is(drains, 1)
  t.true(wal.stats().bufferedBytes < 4 * RECORD_BYTES)
  t.is(wal.append(payload(appended + 1, RECORD)), appended + 1)
  await wal.sync()
  t.is(drains, 1, "'drain' fires only after pressure, not after every flush")
})

test('maxBufferedBytes and bufferLimit are validated', async (t) => {
  const dir = tempDir(t)
  for (const [options, label] of [
    [{ maxBufferedBytes: 0 }, 'a mark of 0'],
    [{ maxBufferedBytes: 1.5 }, 'a fractional mark'],
    [{ maxBufferedBytes: 1 << 20, bufferLimit: 1 << 19 }, 'a limit below the mark'],
    [{ maxRecordSize: 4096, maxBufferedBytes: 1024, bufferLimit: 2048 }, 'a limit below one record'],
  ] as const) {
    assertWalError(t, await rejectionOf(t, Wal.open(dir, options), label), 'WAL_INVALID_ARGUMENT', label)
  }
})
