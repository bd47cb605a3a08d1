/**
 * Pins the stream API: `stream.pipeline` into `wal.createWriteStream()`
 * appends every chunk as one record and finishes only once they are all
 * durable (a write callback fires at durability, whatever the sync policy),
 * groups what it buffered into shared syncs, slows down at the buffer limit
 * instead of failing, and errors with a typed WalError on a bad chunk without
 * harming the log; `wal.createReadStream(range)` streams replay.
 */
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import test from 'ava'
import type { WalRecord } from '../ts'
import { assertWalError } from './helpers/errors'
import { collect, openWal, payload, tempDir } from './helpers/wal'

function* records(count: number, size: number) {
  for (let lsn = 1; lsn <= count; lsn++) yield payload(lsn, size)
}

for (const sync of ['none', 'always'] as const) {
  test(`pipeline into createWriteStream makes every record durable before it finishes (sync '${sync}')`, async (t) => {
    const dir = tempDir(t)
    const wal = await openWal(t, dir, { sync })
    await pipeline(Readable.from(records(5000, 100)), wal.createWriteStream())
    t.is(wal.durableLsn, 5000, 'the pipeline finished before its records were durable')
    t.log(`${wal.stats().syncs} data syncs for 5000 records`)
    t.true(wal.stats().syncs < 5000, 'buffered chunks share syncs')
    await wal.close()
    const replayed = await collect(await openWal(t, dir))
    t.is(replayed.length, 5000)
    t.true(replayed.every(({ lsn, data }) => data.equals(payload(lsn, 100))))
  })
}

test("a write's callback fires once its record is durable", async (t) => {
  const wal = await openWal(t, tempDir(t), { sync: 'none' })
  const stream = wal.createWriteStream()
  const durableAtCallback = await new Promise<number>((resolve, reject) =>
    stream.write(payload(1, 10), (error) => (error ? reject(error) : resolve(wal.durableLsn))),
  )
  t.is(durableAtCallback, 1)
  stream.end()
})

test('at the buffer limit the write stream waits for the disk instead of failing', async (t) => {
  const dir = tempDir(t)
  const options = { sync: 'none', maxRecordSize: 4096, maxBufferedBytes: 8192, bufferLimit: 16384 } as const
  const wal = await openWal(t, dir, options)
  // 1000 chunks buffered by the stream at once are far more than the limit.
  await pipeline(Readable.from(records(3000, 4000)), wal.createWriteStream({ highWaterMark: 1000 }))
  t.is(wal.durableLsn, 3000)
  await wal.close()
  t.is((await collect(await openWal(t, dir, options))).length, 3000)
})

test('a chunk that is not bytes errors the stream with WAL_INVALID_ARGUMENT; records before it stay', async (t) => {
  const dir = tempDir(t)
  const wal = await openWal(t, dir)
  const source = Readable.from([payload(1, 10), payload(2, 10), 'not bytes', payload(3, 10)])
  const error = await pipeline(source, wal.createWriteStream()).then(
    () => undefined,
    (reason: unknown) => reason,
  )
  assertWalError(t, error, 'WAL_INVALID_ARGUMENT', 'the string chunk')
  await wal.sync()
  t.deepEqual(
    (await collect(wal)).map(({ lsn }) => lsn),
    [1, 2],
  )
})

test('createReadStream streams the records of a range in order', async (t) => {
  const wal = await openWal(t, tempDir(t))
  for (let lsn = 1; lsn <= 300; lsn++) wal.append(payload(lsn, 50))
  await wal.sync()
  const seen: WalRecord[] = []
  await pipeline(
    wal.createReadStream({ from: 101, to: 250 }),
    new Writable({
      objectMode: true,
      write(record: WalRecord, _encoding, callback) {
        seen.push({ ...record, data: Buffer.from(record.data) })
        callback()
      },
    }),
  )
  t.deepEqual(
    seen.map(({ lsn }) => lsn),
    Array.from({ length: 150 }, (_, index) => 101 + index),
  )
  t.true(seen.every(({ lsn, data }) => data.equals(payload(lsn, 50))))
})
