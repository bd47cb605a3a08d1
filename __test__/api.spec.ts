/**
 * The public API does what it promises on the happy path: dense LSNs from 1
 * that continue across restarts, sync/write resolving only once records are
 * durable, every sync policy ending with everything durable after sync() or
 * close(), and replay returning exactly the requested records byte-exact and
 * in order across many segment rotations. Each test compares the log with a
 * plain-JS model of what was appended, never with the log's own output.
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import test from 'ava'
import { MAX_LSN, type SyncPolicy, Wal } from '../ts'
import { assertRecords, collect, Oracle, openWal, payload, segmentFiles, sizeFor, tempDir } from './helpers/wal'

const SMALL_SEGMENT = 65_536

/** Appends `count` records of a few hundred bytes to `wal` and to `oracle`. */
function appendMany(wal: Wal, oracle: Oracle, count: number): void {
  for (let i = 0; i < count; i++) {
    const data = payload(oracle.nextLsn, sizeFor(oracle.nextLsn, 150, 650))
    oracle.add(wal.append(data), data)
  }
}

test('open creates a missing directory (and its parents) and starts empty', async (t) => {
  const dir = path.join(tempDir(t), 'nested', 'deeper', 'log')
  t.false(fs.existsSync(dir))
  const wal = await openWal(t, dir)
  t.true(fs.statSync(dir).isDirectory())
  t.is(wal.firstLsn, 0)
  t.is(wal.lastLsn, 0)
  t.is(wal.durableLsn, 0)
  t.is(wal.recovery.records, 0)
  t.is(wal.recovery.truncatedBytes, 0)
  t.is(wal.recovery.truncatedReason, null)
  t.deepEqual(await collect(wal), [])
  t.false(wal.closed)
  t.is(MAX_LSN, Number.MAX_SAFE_INTEGER)
})

test('append returns dense LSNs from 1 and the LSN getters follow', async (t) => {
  const wal = await openWal(t, tempDir(t), { sync: 'none' })
  const lsns: number[] = []
  for (let i = 1; i <= 25; i++) {
    lsns.push(wal.append(payload(i, 40)))
    t.is(wal.lastLsn, i)
  }
  t.deepEqual(
    lsns,
    Array.from({ length: 25 }, (_, i) => i + 1),
  )
  t.is(wal.firstLsn, 1)
  t.is(await wal.sync(), 25)
  t.is(wal.durableLsn, 25)
})

test('appendBatch returns {first,last} and numbering continues after it', async (t) => {
  const wal = await openWal(t, tempDir(t))
  const oracle = new Oracle()
  for (let i = 0; i < 3; i++) {
    const data = payload(oracle.nextLsn, 33)
    oracle.add(wal.append(data), data)
  }
  const batch = [payload(100, 10), payload(101, 0), payload(102, 700), payload(103, 1), payload(104, 64)]
  const range = wal.appendBatch(batch)
  t.deepEqual(range, { first: 4, last: 8 })
  oracle.addBatch(range.first, batch)
  const single = wal.appendBatch([payload(200, 5)])
  t.deepEqual(single, { first: 9, last: 9 })
  oracle.add(9, payload(200, 5))
  const after = payload(300, 77)
  t.is(wal.append(after), 10)
  oracle.add(10, after)
  t.is(wal.lastLsn, 10)
  await wal.sync()
  assertRecords(t, await collect(wal), oracle.records)
  assertRecords(t, await collect(wal, { from: 5, to: 7 }), oracle.range(5, 7), 'inside the batch')
})

test('sync(lsn) resolves with a durable LSN >= lsn; sync() covers everything appended', async (t) => {
  const wal = await openWal(t, tempDir(t), { sync: 'none' })
  for (let i = 1; i <= 40; i++) wal.append(payload(i, 100))
  const durable10 = await wal.sync(10)
  t.true(durable10 >= 10, `sync(10) resolved with ${durable10}`)
  t.true(wal.durableLsn >= 10)
  const durable25 = await wal.sync(25)
  t.true(durable25 >= 25, `sync(25) resolved with ${durable25}`)
  t.is(await wal.sync(), 40)
  t.is(wal.durableLsn, 40)
  t.true((await wal.sync(3)) >= 40, 'an already-durable LSN resolves with the current durable LSN')
})

test("write() resolves with the record's LSN, durable under 'always'", async (t) => {
  const wal = await openWal(t, tempDir(t), { sync: 'always' })
  const oracle = new Oracle()
  for (let i = 0; i < 2; i++) {
    const data = payload(oracle.nextLsn, 20)
    oracle.add(wal.append(data), data)
  }
  for (let i = 0; i < 5; i++) {
    const data = payload(oracle.nextLsn, 60)
    const expected = oracle.nextLsn
    const lsn = await wal.write(data)
    t.is(lsn, expected)
    t.true(wal.durableLsn >= lsn, `durableLsn ${wal.durableLsn} after write resolved with ${lsn}`)
    oracle.add(lsn, data)
  }
  assertRecords(t, await collect(wal), oracle.records)
})

test('replay returns exactly the records in range, byte-exact and in order, across many segments', async (t) => {
  const dir = tempDir(t)
  const wal = await openWal(t, dir, { segmentSize: SMALL_SEGMENT, sync: 'none' })
  const oracle = new Oracle()
  appendMany(wal, oracle, 1500)
  t.is(await wal.sync(), 1500)
  const segments = segmentFiles(dir)
  t.true(segments.length >= 8, `expected many rotations, got ${segments.length} segment files`)
  // The first LSN of a segment (from its name) and its neighbours are the
  // interesting range edges.
  const boundary = Number(segments[3]!.slice(0, 20))
  t.true(boundary > 1 && boundary < 1500)

  assertRecords(t, await collect(wal), oracle.records, 'everything')
  const ranges: Array<[number, number]> = [
    [1, 1],
    [1, 1500],
    [37, 1203],
    [boundary - 1, boundary],
    [boundary, boundary],
    [boundary - 5, boundary + 5],
    [1499, 1500],
    [1500, 1500],
    [700, 700],
  ]
  for (const [from, to] of ranges) {
    assertRecords(t, await collect(wal, { from, to }), oracle.range(from, to), `from ${from} to ${to}`)
  }
  assertRecords(t, await collect(wal, { from: 1234 }), oracle.range(1234), 'from only')
  assertRecords(t, await collect(wal, { to: 321 }), oracle.range(1, 321), 'to only')
  assertRecords(t, await collect(wal, { from: 1400, to: 1_000_000 }), oracle.range(1400), 'to past the end')
  t.deepEqual(await collect(wal, { from: 900, to: 899 }), [], 'from > to is empty')
  t.deepEqual(await collect(wal, { from: 1501 }), [], 'from past the end is empty')

  // Records appended but not yet synced are not replayed; once synced they are.
  appendMany(wal, oracle, 10)
  await wal.sync()
  assertRecords(t, await collect(wal, { from: 1495 }), oracle.range(1495), 'after more appends')
  await wal.close()

  const reopened = await openWal(t, dir, { segmentSize: SMALL_SEGMENT })
  assertRecords(t, await collect(reopened), oracle.records, 'after reopen')
  assertRecords(
    t,
    await collect(reopened, { from: boundary - 2, to: boundary + 2 }),
    oracle.range(boundary - 2, boundary + 2),
  )
})

test('two replays can run interleaved and give the same records', async (t) => {
  const wal = await openWal(t, tempDir(t), { segmentSize: SMALL_SEGMENT, sync: 'none' })
  const oracle = new Oracle()
  appendMany(wal, oracle, 400)
  await wal.sync()
  const first = wal.replay()[Symbol.asyncIterator]()
  const second = wal.replay({ from: 200 })[Symbol.asyncIterator]()
  const fromFirst: number[] = []
  const fromSecond: number[] = []
  for (;;) {
    const [a, b] = await Promise.all([first.next(), second.next()])
    if (!a.done) {
      t.true(a.value.data.equals(oracle.records[a.value.lsn - 1]!.data), `first cursor, LSN ${a.value.lsn}`)
      fromFirst.push(a.value.lsn)
    }
    if (!b.done) {
      t.true(b.value.data.equals(oracle.records[b.value.lsn - 1]!.data), `second cursor, LSN ${b.value.lsn}`)
      fromSecond.push(b.value.lsn)
    }
    if (a.done && b.done) break
  }
  t.deepEqual(
    fromFirst,
    oracle.records.map((record) => record.lsn),
  )
  t.deepEqual(
    fromSecond,
    oracle.range(200).map((record) => record.lsn),
  )
})

test('LSNs continue across close and reopen, and recovery reports what it found', async (t) => {
  const dir = tempDir(t)
  const oracle = new Oracle()
  let wal = await openWal(t, dir, { segmentSize: SMALL_SEGMENT })
  appendMany(wal, oracle, 5)
  await wal.close()

  wal = await openWal(t, dir, { segmentSize: SMALL_SEGMENT })
  t.is(wal.firstLsn, 1)
  t.is(wal.lastLsn, 5)
  t.is(wal.durableLsn, 5)
  t.is(wal.recovery.records, 5)
  const data = payload(6, 500)
  t.is(await wal.write(data), 6)
  oracle.add(6, data)
  appendMany(wal, oracle, 600)
  await wal.close()

  wal = await openWal(t, dir, { segmentSize: SMALL_SEGMENT })
  const recovery = wal.recovery
  t.is(recovery.records, 606)
  t.is(recovery.segments, segmentFiles(dir).length)
  t.true(recovery.segments >= 3, `${recovery.segments} segments`)
  t.is(recovery.truncatedBytes, 0)
  t.is(recovery.truncatedReason, null)
  t.is(recovery.skippedRegions, 0)
  t.is(recovery.skippedRecords, 0)
  t.deepEqual(recovery.strayFiles, [])
  t.true(recovery.ioMode === 'direct' || recovery.ioMode === 'buffered', `ioMode ${recovery.ioMode}`)
  t.is(wal.firstLsn, 1)
  t.is(wal.lastLsn, 606)
  t.is(wal.durableLsn, 606)
  t.is(wal.append(payload(607, 10)), 607)
  oracle.add(607, payload(607, 10))
  await wal.sync()
  assertRecords(t, await collect(wal), oracle.records)
})

test('a reopened empty log still starts at LSN 1', async (t) => {
  const dir = tempDir(t)
  await (await Wal.open(dir)).close()
  const wal = await openWal(t, dir)
  t.is(wal.firstLsn, 0)
  t.is(wal.lastLsn, 0)
  t.is(wal.durableLsn, 0)
  t.is(wal.recovery.records, 0)
  t.is(await wal.write(payload(1, 9)), 1)
})

test('directIo: false writes buffered, directIo: true direct (or is refused), both round-trip', async (t) => {
  const oracle = new Oracle()
  const dir = tempDir(t)
  const buffered = await Wal.open(dir, { directIo: false, segmentSize: SMALL_SEGMENT, sync: 'none' })
  t.is(buffered.recovery.ioMode, 'buffered')
  appendMany(buffered, oracle, 300)
  await buffered.close()
  let direct: Wal
  try {
    direct = await openWal(t, dir, { directIo: true, segmentSize: SMALL_SEGMENT })
  } catch (error) {
    t.is((error as { code?: string }).code, 'WAL_INVALID_ARGUMENT', `directIo: true refused with ${String(error)}`)
    return
  }
  t.is(direct.recovery.ioMode, 'direct')
  assertRecords(t, await collect(direct), oracle.records, 'buffered records read back')
  appendMany(direct, oracle, 300)
  await direct.close()
  const reopened = await openWal(t, dir, { directIo: false, segmentSize: SMALL_SEGMENT })
  assertRecords(t, await collect(reopened), oracle.records, 'direct records read back buffered')
})

test('close is idempotent and releases the lock', async (t) => {
  const dir = tempDir(t)
  const wal = await Wal.open(dir)
  const data = payload(1, 123)
  wal.append(data)
  const first = wal.close()
  const second = wal.close()
  t.true(wal.closed)
  await t.notThrowsAsync(first)
  await t.notThrowsAsync(second)
  await t.notThrowsAsync(wal.close())
  const reopened = await openWal(t, dir)
  assertRecords(t, await collect(reopened), [{ lsn: 1, data }], 'appended record was flushed by close')
})

test('await using closes the log at the end of the scope; Symbol.asyncDispose closes too', async (t) => {
  const dir = tempDir(t)
  const data = payload(1, 300)
  let escaped: Wal | undefined
  {
    await using wal = await Wal.open(dir, { sync: 'none' })
    escaped = wal
    wal.append(data)
    t.false(wal.closed)
  }
  t.true(escaped.closed)
  const reopened = await Wal.open(dir)
  assertRecords(t, await collect(reopened), [{ lsn: 1, data }])
  await reopened[Symbol.asyncDispose]()
  t.true(reopened.closed)
  const third = await openWal(t, dir)
  t.is(third.lastLsn, 1)
})

const policies: Array<[string, SyncPolicy]> = [
  ['always', 'always'],
  ['none', 'none'],
  ['intervalMs', { intervalMs: 5 }],
  ['bytes', { bytes: 3000 }],
]

for (const [name, sync] of policies) {
  test(`sync policy ${name}: everything is durable after sync() and close, and replays after reopen`, async (t) => {
    t.timeout(60_000, 'a write or sync never resolved')
    const dir = tempDir(t)
    const oracle = new Oracle()
    const wal = await openWal(t, dir, { sync, segmentSize: SMALL_SEGMENT })
    const written = await Promise.all(
      Array.from({ length: 60 }, (_, i) => {
        const data = payload(10_000 + i, sizeFor(i, 1, 900))
        return wal.write(data).then((lsn) => ({ lsn, data }))
      }),
    )
    for (const { lsn, data } of written.sort((a, b) => a.lsn - b.lsn)) oracle.add(lsn, data)
    appendMany(wal, oracle, 150)
    t.is(await wal.sync(), oracle.records.length)
    t.is(wal.durableLsn, oracle.records.length)
    assertRecords(t, await collect(wal), oracle.records, 'after sync()')
    // More records, never synced explicitly: close must make them durable.
    appendMany(wal, oracle, 90)
    await wal.close()
    const reopened = await openWal(t, dir, { sync, segmentSize: SMALL_SEGMENT })
    t.is(reopened.lastLsn, oracle.records.length)
    t.is(reopened.durableLsn, oracle.records.length)
    assertRecords(t, await collect(reopened), oracle.records, 'after reopen')
  })
}

for (const [name, sync] of [policies[0]!, policies[2]!]) {
  test(`sync policy ${name}: write() resolves only once its record is durable`, async (t) => {
    t.timeout(60_000, 'a write never resolved')
    const wal = await openWal(t, tempDir(t), { sync })
    const observed = await Promise.all(
      Array.from({ length: 50 }, (_, i) => wal.write(payload(i, 64)).then((lsn) => ({ lsn, durable: wal.durableLsn }))),
    )
    for (const { lsn, durable } of observed) t.true(durable >= lsn, `LSN ${lsn} resolved at durable ${durable}`)
  })
}

test("write(data, {durable: true}) under 'none' resolves only once durableLsn >= its LSN", async (t) => {
  const wal = await openWal(t, tempDir(t), { sync: 'none' })
  const oracle = new Oracle()
  appendMany(wal, oracle, 30)
  const data = payload(31, 200)
  const lsn = await wal.write(data, { durable: true })
  oracle.add(lsn, data)
  t.is(lsn, 31)
  t.true(wal.durableLsn >= 31, `durableLsn ${wal.durableLsn}`)
  const observed = await Promise.all(
    Array.from({ length: 40 }, (_, i) => {
      const record = payload(32 + i, 50)
      const pending = wal.write(record, { durable: true })
      return pending.then((resolved) => ({ resolved, durable: wal.durableLsn, record }))
    }),
  )
  for (const { resolved, durable, record } of observed) {
    t.true(durable >= resolved, `LSN ${resolved} resolved at durable ${durable}`)
    oracle.add(resolved, record)
  }
  oracle.records.sort((a, b) => a.lsn - b.lsn)
  assertRecords(t, await collect(wal), oracle.records)
})

test('write(data, {durable: false}) returns the LSN without requiring a sync; sync() then covers it', async (t) => {
  const wal = await openWal(t, tempDir(t), { sync: 'always' })
  const data = payload(1, 10)
  t.is(await wal.write(data, { durable: false }), 1)
  t.is(await wal.sync(1), 1)
  assertRecords(t, await collect(wal), [{ lsn: 1, data }])
})

test('large records (1 MiB and more) and empty records round-trip', async (t) => {
  const dir = tempDir(t)
  const options = { segmentSize: 8 << 20, sync: 'always' as const }
  const wal = await openWal(t, dir, options)
  const oracle = new Oracle()
  const sizes = [0, 1 << 20, 0, (1 << 20) + 1, 17, 3 * (1 << 20) + 5, 0, 3 * (1 << 20) + 4096, 2 * (1 << 20) - 1, 0]
  for (const [index, size] of sizes.entries()) {
    const data = payload(index + 1, size)
    oracle.add(await wal.write(data), data)
  }
  // An empty Uint8Array that is not a Buffer, and an empty view into a larger buffer.
  oracle.add(await wal.write(new Uint8Array(0)), new Uint8Array(0))
  oracle.add(await wal.write(payload(99, 64).subarray(10, 10)), new Uint8Array(0))
  t.deepEqual(
    oracle.records.map((record) => record.lsn),
    Array.from({ length: sizes.length + 2 }, (_, i) => i + 1),
  )
  t.true(segmentFiles(dir).length >= 2, 'large records forced a rotation')
  assertRecords(t, await collect(wal), oracle.records)
  await wal.close()
  const reopened = await openWal(t, dir, options)
  assertRecords(t, await collect(reopened), oracle.records, 'after reopen')
  assertRecords(t, await collect(reopened, { from: 4, to: 6 }), oracle.range(4, 6), 'middle range')
})

test('views with a byte offset log exactly their own bytes', async (t) => {
  const wal = await openWal(t, tempDir(t))
  const oracle = new Oracle()
  const backing = payload(1, 10_000)
  const views: Uint8Array[] = [
    backing.subarray(1, 2),
    backing.subarray(4093, 4100),
    backing.subarray(5000, 9999),
    new Uint8Array(backing.buffer, backing.byteOffset + 333, 777),
    Buffer.from('pooled small buffer'),
    new Uint8Array([1, 2, 3, 255]),
  ]
  for (const view of views) oracle.add(wal.append(view), view)
  const batch = [backing.subarray(7, 19), backing.subarray(8000, 8001), Buffer.from('x')]
  const range = wal.appendBatch(batch)
  oracle.addBatch(range.first, batch)
  await wal.sync()
  assertRecords(t, await collect(wal), oracle.records)
})

test('2000 concurrent write() calls all resolve; their LSNs are a permutation of 1..2000', async (t) => {
  const dir = tempDir(t)
  const wal = await openWal(t, dir, { segmentSize: SMALL_SEGMENT })
  const count = 2000
  const results = await Promise.all(
    Array.from({ length: count }, (_, i) => {
      const data = payload(50_000 + i, sizeFor(i, 0, 300))
      return wal.write(data).then((lsn) => ({ lsn, data }))
    }),
  )
  const lsns = results.map((result) => result.lsn).sort((a, b) => a - b)
  t.deepEqual(
    lsns,
    Array.from({ length: count }, (_, i) => i + 1),
  )
  t.true(wal.durableLsn >= count)
  const byLsn = results.sort((a, b) => a.lsn - b.lsn)
  assertRecords(t, await collect(wal), byLsn)
  await wal.close()
  const reopened = await openWal(t, dir, { segmentSize: SMALL_SEGMENT })
  assertRecords(t, await collect(reopened), byLsn, 'after reopen')
})

test('stats() counts the flusher syncs, tracks the LSNs and the bytes not yet durable', async (t) => {
  const wal = await openWal(t, tempDir(t))
  t.deepEqual(wal.stats(), {
    syncs: 0,
    lastLsn: 0,
    durableLsn: 0,
    bufferedBytes: 0,
    segments: 1,
    bytesOnDisk: 1 << 20,
  })
  const writes = Array.from({ length: 200 }, (_, index) => wal.write(payload(index, 100)))
  await Promise.all(writes)
  const afterWrites = wal.stats()
  t.is(afterWrites.lastLsn, 200)
  t.is(afterWrites.durableLsn, 200)
  t.true(afterWrites.syncs >= 1, `syncs: ${afterWrites.syncs}`)
  t.true(afterWrites.syncs <= 200, `200 writes cannot need more than 200 syncs, got ${afterWrites.syncs}`)
  t.is(afterWrites.bufferedBytes, 0)
  wal.append(payload(200, 100))
  t.is(wal.stats().bufferedBytes, 128, 'a 100-byte record takes 24 + 100 bytes, padded to 128')
  await wal.sync()
  t.true(wal.stats().syncs > afterWrites.syncs, 'a sync of a new record issues a new data sync')
  t.is(wal.stats().bufferedBytes, 0)
})
