/**
 * Bad input and misuse fail with a typed WalError whose `code` is stable, and
 * never damage the log: wrong argument types, detached buffers, options out
 * of range (refused before anything touches the disk, with a message naming
 * the option), records and batches at and past the size limits, use after
 * close, a second writer in this process, a worker thread or another process,
 * damaged or missing segments, and close() with writes in flight (every
 * promise settles). After every refusal the records appended before it still
 * replay byte-exact and the next append gets the next LSN, checked against a
 * plain-JS model of what was appended.
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import test, { type ExecutionContext } from 'ava'
import { Wal, WalError } from '../ts'
import { assertWalError, rejectionOf, thrownBy } from './helpers/errors'
import { fixture, runTsFixture, startNode, startTsWorker, waitForOutput } from './helpers/processes'
import { assertRecords, collect, Oracle, openWal, payload, segmentFiles, tempDir } from './helpers/wal'

const SMALL_SEGMENT = 65_536

/** The error of a replay, whether `replay()` throws at once or its iteration rejects. */
async function replayError(t: ExecutionContext, wal: Wal, range: unknown, label: string): Promise<unknown> {
  try {
    for await (const _ of wal.replay(range as { from?: number; to?: number })) {
      // Reading is what may fail.
    }
  } catch (error) {
    return error
  }
  t.fail(`${label}: replay did not fail`)
  return undefined
}

/** Appends `count` fresh records to `wal` and `oracle`. */
function appendSome(wal: Wal, oracle: Oracle, count: number, size = 120): void {
  for (let i = 0; i < count; i++) {
    const data = payload(oracle.nextLsn, size)
    oracle.add(wal.append(data), data)
  }
}

/**
 * The log still holds exactly what the model says and numbering continues:
 * everything replays byte-exact after a sync and the next append gets the
 * next LSN.
 */
async function assertIntact(t: ExecutionContext, wal: Wal, oracle: Oracle, label: string): Promise<void> {
  t.is(wal.lastLsn, oracle.records.length, `${label}: lastLsn`)
  const data = payload(oracle.nextLsn, 77)
  const expected = oracle.nextLsn
  t.is(wal.append(data), expected, `${label}: next LSN`)
  oracle.add(expected, data)
  await wal.sync()
  assertRecords(t, await collect(wal), oracle.records, label)
}

test('append, appendBatch and write refuse non-buffers with WAL_INVALID_ARGUMENT and leave the log intact', async (t) => {
  const wal = await openWal(t, tempDir(t), { sync: 'none' })
  const oracle = new Oracle()
  appendSome(wal, oracle, 3)
  const notBuffers: Array<[string, unknown]> = [
    ['string', 'hello'],
    ['number', 42],
    ['null', null],
    ['undefined', undefined],
    ['array of bytes', [1, 2, 3]],
    ['plain object', { length: 3 }],
    ['ArrayBuffer', new ArrayBuffer(8)],
    ['DataView', new DataView(new ArrayBuffer(8))],
    ['Uint16Array', new Uint16Array(4)],
  ]
  for (const [label, value] of notBuffers) {
    assertWalError(
      t,
      thrownBy(t, () => wal.append(value as Uint8Array), `append(${label})`),
      'WAL_INVALID_ARGUMENT',
      `append(${label})`,
    )
    assertWalError(
      t,
      await rejectionOf(
        t,
        Promise.resolve().then(() => wal.write(value as Uint8Array)),
        `write(${label})`,
      ),
      'WAL_INVALID_ARGUMENT',
      `write(${label})`,
    )
    assertWalError(
      t,
      thrownBy(t, () => wal.appendBatch([payload(1, 5), value as Uint8Array]), `appendBatch([buffer, ${label}])`),
      'WAL_INVALID_ARGUMENT',
      `appendBatch([buffer, ${label}])`,
    )
    t.is(wal.lastLsn, oracle.records.length, `nothing appended by the refused calls with ${label}`)
  }
  const badBatches: Array<[string, unknown]> = [
    ['[]', []],
    ['a string', 'abc'],
    ['a Buffer', Buffer.from('abc')],
    ['null', null],
    ['undefined', undefined],
  ]
  for (const [label, value] of badBatches) {
    assertWalError(
      t,
      thrownBy(t, () => wal.appendBatch(value as Uint8Array[]), `appendBatch(${label})`),
      'WAL_INVALID_ARGUMENT',
      `appendBatch(${label})`,
    )
  }
  await assertIntact(t, wal, oracle, 'after the refused calls')
})

test('sync and replay refuse LSNs that are not non-negative integers', async (t) => {
  const wal = await openWal(t, tempDir(t), { sync: 'none' })
  const oracle = new Oracle()
  appendSome(wal, oracle, 10)
  const badLsns: unknown[] = [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '3', null, 2 ** 53]
  for (const lsn of badLsns) {
    const label = `sync(${String(lsn)})`
    // sync returns a promise: bad input rejects it rather than throwing.
    let returned: Promise<number> | undefined
    const thrown = (() => {
      try {
        returned = wal.sync(lsn as number)
        return undefined
      } catch (error) {
        return error
      }
    })()
    t.is(thrown, undefined, `${label} threw synchronously instead of rejecting`)
    if (returned !== undefined) assertWalError(t, await rejectionOf(t, returned, label), 'WAL_INVALID_ARGUMENT', label)
  }
  const badRanges: unknown[] = [
    { from: -1 },
    { to: -1 },
    { from: 1.5 },
    { to: 2.5 },
    { from: '1' },
    { from: Number.NaN },
  ]
  for (const range of badRanges) {
    const label = `replay(${JSON.stringify(range)})`
    assertWalError(t, await replayError(t, wal, range, label), 'WAL_INVALID_ARGUMENT', label)
  }
  await assertIntact(t, wal, oracle, 'after the refused calls')
})

/** Options that must be refused, with a pattern their message must match. */
const badOptions: Array<[string, unknown, RegExp]> = [
  ['unknown key', { segmentSzie: SMALL_SEGMENT }, /segmentSzie/],
  ['a second unknown key', { sync: 'none', fsync: true }, /fsync/],
  ['options not an object', 'fast', /options/],
  ['segmentSize not a multiple of 4096', { segmentSize: SMALL_SEGMENT + 2048 }, /segmentSize/],
  ['segmentSize too small', { segmentSize: 32_768 }, /segmentSize/],
  ['segmentSize zero', { segmentSize: 0 }, /segmentSize/],
  ['segmentSize too large', { segmentSize: 2 ** 33 }, /segmentSize/],
  ['segmentSize fractional', { segmentSize: 65_536.5 }, /segmentSize/],
  ['segmentSize a string', { segmentSize: '65536' }, /segmentSize/],
  ['maxRecordSize 0', { segmentSize: SMALL_SEGMENT, maxRecordSize: 0 }, /maxRecordSize/],
  ['maxRecordSize negative', { segmentSize: SMALL_SEGMENT, maxRecordSize: -5 }, /maxRecordSize/],
  ['maxRecordSize the whole segment', { segmentSize: SMALL_SEGMENT, maxRecordSize: SMALL_SEGMENT }, /maxRecordSize/],
  [
    'maxRecordSize past the segment',
    { segmentSize: SMALL_SEGMENT, maxRecordSize: 10 * SMALL_SEGMENT },
    /maxRecordSize/,
  ],
  ['maxRecordSize past the default segment', { maxRecordSize: 128 << 20 }, /maxRecordSize/],
  ['sync intervalMs 0', { sync: { intervalMs: 0 } }, /intervalMs/],
  ['sync intervalMs negative', { sync: { intervalMs: -10 } }, /intervalMs/],
  ['sync intervalMs over an hour', { sync: { intervalMs: 3_600_001 } }, /intervalMs/],
  ['sync intervalMs fractional', { sync: { intervalMs: 1.5 } }, /intervalMs/],
  ['sync bytes 0', { sync: { bytes: 0 } }, /bytes/],
  ['sync with two keys', { sync: { intervalMs: 5, bytes: 10 } }, /sync/],
  ['sync unknown string', { sync: 'sometimes' }, /sync/],
  ['sync true', { sync: true }, /sync/],
  ['bogus recovery mode', { recovery: 'best-effort' }, /recovery/],
  ['recovery not a string', { recovery: 1 }, /recovery/],
  ["directIo 'yes'", { directIo: 'yes' }, /directIo/],
  ['directIo 1', { directIo: 1 }, /directIo/],
]

for (const [label, options, message] of badOptions) {
  test(`Wal.open refuses ${label} with WAL_INVALID_ARGUMENT naming the option, before touching the disk`, async (t) => {
    const dir = path.join(tempDir(t), 'log')
    const error = await rejectionOf(t, Wal.open(dir, options as never), label)
    const walError = assertWalError(t, error, 'WAL_INVALID_ARGUMENT', label)
    t.regex(walError?.message ?? '', message)
    t.false(fs.existsSync(dir), 'the refused open created the log directory')
  })
}

test('Wal.open refuses a directory that is not a non-empty string', async (t) => {
  for (const dir of ['', undefined, null, 5, { path: '/tmp' }]) {
    const label = `Wal.open(${JSON.stringify(dir)})`
    assertWalError(t, await rejectionOf(t, Wal.open(dir as string), label), 'WAL_INVALID_ARGUMENT', label)
  }
})

test('valid edge options are accepted', async (t) => {
  const dir = tempDir(t)
  for (const options of [
    { segmentSize: SMALL_SEGMENT, maxRecordSize: 1 },
    { sync: { intervalMs: 1 } },
    { sync: { intervalMs: 3_600_000 } },
    { sync: { bytes: 1 } },
    { directIo: false, recovery: 'absolute' as const },
    { directIo: 'auto' as const, recovery: 'point-in-time' as const },
    { recovery: 'skip-corrupted' as const },
  ]) {
    const wal = await Wal.open(dir, options)
    const lsn = await wal.write(payload(1, 1), { durable: true })
    await wal.close()
    t.true(lsn >= 1, JSON.stringify(options))
  }
})

test('a record exactly at maxRecordSize is accepted; one byte more is WAL_TOO_LARGE; oversized batches too', async (t) => {
  const limit = 1000
  const dir = tempDir(t)
  const wal = await openWal(t, dir, { segmentSize: SMALL_SEGMENT, maxRecordSize: limit, sync: 'none' })
  const oracle = new Oracle()
  const atLimit = payload(1, limit)
  t.is(wal.append(atLimit), 1)
  oracle.add(1, atLimit)

  const tooLarge = assertWalError(
    t,
    thrownBy(t, () => wal.append(payload(2, limit + 1)), 'append'),
    'WAL_TOO_LARGE',
    'append',
  )
  t.is(tooLarge?.size, limit + 1)
  t.is(tooLarge?.limit, limit)
  assertWalError(t, await rejectionOf(t, wal.write(payload(2, limit + 1)), 'write'), 'WAL_TOO_LARGE', 'write')
  t.is(wal.append(payload(2, limit)), 2)
  oracle.add(2, payload(2, limit))

  assertWalError(
    t,
    thrownBy(
      t,
      () => wal.appendBatch([payload(3, 10), payload(4, limit + 1), payload(5, 10)]),
      'batch with a large record',
    ),
    'WAL_TOO_LARGE',
    'batch with a large record',
  )
  // Every record within the limit, but together more than a segment holds.
  const hugeBatch = Array.from({ length: 100 }, (_, i) => payload(1000 + i, limit))
  const batchError = assertWalError(
    t,
    thrownBy(t, () => wal.appendBatch(hugeBatch), 'oversized batch'),
    'WAL_TOO_LARGE',
    'oversized batch',
  )
  t.true((batchError?.size ?? 0) > (batchError?.limit ?? Number.POSITIVE_INFINITY), 'size and limit describe the batch')
  t.is(wal.lastLsn, 2, 'refused batches appended nothing')

  const fits = Array.from({ length: 20 }, (_, i) => payload(3 + i, limit))
  t.deepEqual(wal.appendBatch(fits), { first: 3, last: 22 })
  oracle.addBatch(3, fits)
  await assertIntact(t, wal, oracle, 'after the refused records')
  await wal.close()
  const reopened = await openWal(t, dir, { segmentSize: SMALL_SEGMENT, maxRecordSize: limit })
  assertRecords(t, await collect(reopened), oracle.records, 'after reopen')
})

test('after close, append/appendBatch/write/sync/replay fail with WAL_CLOSED; the log reopens intact', async (t) => {
  const dir = tempDir(t)
  const wal = await Wal.open(dir, { sync: 'none' })
  const oracle = new Oracle()
  appendSome(wal, oracle, 12)
  await wal.close()
  t.true(wal.closed)
  assertWalError(
    t,
    thrownBy(t, () => wal.append(payload(99, 3)), 'append'),
    'WAL_CLOSED',
    'append',
  )
  assertWalError(
    t,
    thrownBy(t, () => wal.appendBatch([payload(99, 3)]), 'appendBatch'),
    'WAL_CLOSED',
    'appendBatch',
  )
  assertWalError(t, await rejectionOf(t, wal.write(payload(99, 3)), 'write'), 'WAL_CLOSED', 'write')
  assertWalError(
    t,
    await rejectionOf(t, wal.write(payload(99, 3), { durable: true }), 'durable write'),
    'WAL_CLOSED',
    'durable write',
  )
  assertWalError(t, await rejectionOf(t, wal.sync(), 'sync()'), 'WAL_CLOSED', 'sync()')
  assertWalError(t, await rejectionOf(t, wal.sync(1), 'sync(1)'), 'WAL_CLOSED', 'sync(1)')
  assertWalError(t, await replayError(t, wal, {}, 'replay'), 'WAL_CLOSED', 'replay')

  const reopened = await openWal(t, dir, { sync: 'none' })
  await assertIntact(t, reopened, oracle, 'after reopen')
})

test('a second Wal.open on the same directory in the same process is WAL_LOCKED; the first log is unaffected', async (t) => {
  const dir = tempDir(t)
  const wal = await openWal(t, dir)
  const oracle = new Oracle()
  appendSome(wal, oracle, 5)
  for (const options of [undefined, { sync: 'none' as const }]) {
    const locked = assertWalError(
      t,
      await rejectionOf(t, Wal.open(dir, options), 'second open'),
      'WAL_LOCKED',
      'second open',
    )
    t.is(locked?.path, dir)
  }
  await assertIntact(t, wal, oracle, 'holder after the refused opens')
  await wal.close()
  const reopened = await openWal(t, dir)
  await assertIntact(t, reopened, oracle, 'after the holder closed')
})

/** What the try-open fixture reports, from a worker thread or a child process. */
interface OpenAttempt {
  ok: boolean
  code?: string
  isWalError?: boolean
  lsn?: number
}

/**
 * A second writer (`tryOpen`) is refused with WAL_LOCKED while this thread
 * holds the log, the holder's records stay intact, and once the holder
 * closes the second writer opens, appends the record named after `who`, and
 * the log reopens here with it.
 */
async function checkSecondWriter(
  t: ExecutionContext,
  who: string,
  tryOpen: (dir: string) => Promise<OpenAttempt>,
): Promise<void> {
  const dir = tempDir(t)
  const wal = await openWal(t, dir)
  const oracle = new Oracle()
  appendSome(wal, oracle, 4)
  const refused = await tryOpen(dir)
  t.false(refused.ok)
  t.is(refused.code, 'WAL_LOCKED')
  t.true(refused.isWalError)
  await assertIntact(t, wal, oracle, `holder after the ${who} was refused`)
  await wal.close()

  const accepted = await tryOpen(dir)
  t.deepEqual(accepted, { ok: true, lsn: oracle.nextLsn })
  oracle.add(oracle.nextLsn, Buffer.from(`from ${who}`))
  const reopened = await openWal(t, dir)
  await assertIntact(t, reopened, oracle, `after the ${who} wrote`)
}

test('Wal.open in a worker thread is WAL_LOCKED while the main thread holds the log, and works after close', async (t) => {
  await checkSecondWriter(t, 'worker thread', async (dir) => {
    const worker = startTsWorker('try-open.ts', { dir })
    const message = new Promise<OpenAttempt>((resolve, reject) => {
      worker.once('message', resolve)
      worker.once('error', reject)
      worker.once('exit', (code) => reject(new Error(`worker exited with ${code} before reporting`)))
    })
    try {
      return await message
    } finally {
      await worker.terminate()
    }
  })
})

test('Wal.open in another process is WAL_LOCKED while this process holds the log, and works after close', async (t) => {
  await checkSecondWriter(t, 'child process', async (dir) => {
    const run = await runTsFixture('try-open.ts', [dir])
    t.is(run.code, 0, run.stderr)
    const { message: _message, ...attempt } = JSON.parse(run.stdout) as OpenAttempt & { message?: string }
    return attempt
  })
})

test('while another process holds the log, Wal.open here is WAL_LOCKED; once it closes, open works', async (t) => {
  const dir = tempDir(t)
  const holder = startNode(['--import', 'tsx', fixture('hold-lock.ts'), dir])
  t.teardown(() => holder.child.kill('SIGKILL'))
  await waitForOutput(holder.child, 'locked')
  const locked = assertWalError(t, await rejectionOf(t, Wal.open(dir), 'open'), 'WAL_LOCKED', 'open')
  t.is(locked?.path, dir)
  holder.child.stdin!.end()
  const ended = await holder.result
  t.is(ended.code, 0, ended.stderr)
  t.true(ended.stdout.includes('closed'))
  const wal = await openWal(t, dir)
  const oracle = new Oracle()
  oracle.add(1, Buffer.from('held by a child process'))
  await assertIntact(t, wal, oracle, 'after the holder exited')
})

test('a detached buffer is refused with WAL_INVALID_ARGUMENT and nothing is logged', async (t) => {
  const wal = await openWal(t, tempDir(t), { sync: 'none' })
  const oracle = new Oracle()
  appendSome(wal, oracle, 3)
  const detach = (view: Uint8Array): Uint8Array => {
    structuredClone(view.buffer, { transfer: [view.buffer as ArrayBuffer] })
    t.is(view.byteLength, 0, 'the view is detached')
    return view
  }
  const detachedArray = detach(new Uint8Array(payload(7, 64)))
  const ownBuffer = new ArrayBuffer(32)
  const detachedBuffer = detach(Buffer.from(ownBuffer, 8, 16))
  for (const [label, view] of [
    ['Uint8Array', detachedArray],
    ['Buffer', detachedBuffer],
  ] as const) {
    assertWalError(
      t,
      thrownBy(t, () => wal.append(view), `append(detached ${label})`),
      'WAL_INVALID_ARGUMENT',
      `append(detached ${label})`,
    )
    assertWalError(
      t,
      await rejectionOf(t, wal.write(view), `write(detached ${label})`),
      'WAL_INVALID_ARGUMENT',
      `write(detached ${label})`,
    )
    assertWalError(
      t,
      thrownBy(t, () => wal.appendBatch([payload(8, 4), view]), `appendBatch with detached ${label}`),
      'WAL_INVALID_ARGUMENT',
      `appendBatch with detached ${label}`,
    )
  }
  await assertIntact(t, wal, oracle, 'after the detached buffers')
})

test('append copies: mutating the buffer after append/appendBatch/write does not change what was logged', async (t) => {
  const wal = await openWal(t, tempDir(t), { sync: 'none' })
  const oracle = new Oracle()
  const reused = Buffer.alloc(500)
  for (let i = 0; i < 20; i++) {
    payload(i + 1, 500).copy(reused)
    oracle.add(wal.append(reused), reused)
    reused.fill(0xee)
  }
  const batch = [payload(100, 300), payload(101, 300)]
  const range = wal.appendBatch(batch)
  oracle.addBatch(range.first, batch)
  for (const data of batch) data.fill(0x11)
  const written = payload(200, 256)
  const pending = wal.write(written, { durable: true })
  oracle.add(oracle.nextLsn, written)
  written.fill(0x22)
  t.is(await pending, oracle.records.length)
  await assertIntact(t, wal, oracle, 'after mutating the buffers')
})

/** Writes a log of many small segments, closes it and returns the model and file names. */
async function writeSegmentedLog(dir: string): Promise<{ oracle: Oracle; segments: string[] }> {
  const wal = await Wal.open(dir, { segmentSize: SMALL_SEGMENT, sync: 'none' })
  const oracle = new Oracle()
  appendSome(wal, oracle, 1500, 400)
  await wal.close()
  return { oracle, segments: segmentFiles(dir) }
}

function overwrite(file: string, offset: number, bytes: Buffer): void {
  const fd = fs.openSync(file, 'r+')
  try {
    fs.writeSync(fd, bytes, 0, bytes.length, offset)
  } finally {
    fs.closeSync(fd)
  }
}

/** Asserts that opening `dir` fails with WAL_CORRUPT naming a segment file of `dir` and an offset. */
async function assertOpenCorrupt(
  t: ExecutionContext,
  dir: string,
  options: Parameters<typeof Wal.open>[1],
  label: string,
): Promise<WalError | undefined> {
  let error: unknown
  try {
    const wal = await Wal.open(dir, options)
    t.teardown(() => wal.close())
    t.fail(`${label}: open succeeded (recovery: ${JSON.stringify(wal.recovery)})`)
    return undefined
  } catch (caught) {
    error = caught
  }
  const corrupt = assertWalError(t, error, 'WAL_CORRUPT', label)
  t.is(typeof corrupt?.path, 'string', `${label}: path`)
  t.is(path.dirname(corrupt?.path ?? ''), dir, `${label}: path is in the log directory`)
  t.regex(path.basename(corrupt?.path ?? ''), /^\d{20}\.wal$/, `${label}: path names a segment file`)
  t.is(typeof corrupt?.offset, 'number', `${label}: offset`)
  return corrupt
}

test('a missing middle segment: open rejects with WAL_CORRUPT naming a segment file; the lock is released', async (t) => {
  const dir = tempDir(t)
  const { segments } = await writeSegmentedLog(dir)
  t.true(segments.length >= 6, `${segments.length} segments`)
  fs.rmSync(path.join(dir, segments[2]!))
  await assertOpenCorrupt(t, dir, { segmentSize: SMALL_SEGMENT }, 'first open')
  // Not WAL_LOCKED: the refused open let go of the lock.
  await assertOpenCorrupt(t, dir, { segmentSize: SMALL_SEGMENT, recovery: 'absolute' }, 'second open')
  t.deepEqual(
    segmentFiles(dir),
    segments.filter((_, index) => index !== 2),
    'the refused open deleted nothing',
  )
})

test('damaged bytes in the middle of the first segment: open rejects with WAL_CORRUPT (default recovery)', async (t) => {
  const dir = tempDir(t)
  const { segments } = await writeSegmentedLog(dir)
  overwrite(path.join(dir, segments[0]!), 30_000, Buffer.alloc(64, 0xa5))
  const corrupt = await assertOpenCorrupt(t, dir, { segmentSize: SMALL_SEGMENT }, 'open')
  t.is(path.basename(corrupt?.path ?? ''), segments[0])
})

test("damaged bytes in the middle of the first segment: open rejects with WAL_CORRUPT (recovery: 'absolute')", async (t) => {
  const dir = tempDir(t)
  const { segments } = await writeSegmentedLog(dir)
  overwrite(path.join(dir, segments[0]!), 30_000, Buffer.alloc(64, 0xa5))
  const corrupt = await assertOpenCorrupt(t, dir, { segmentSize: SMALL_SEGMENT, recovery: 'absolute' }, 'open')
  t.is(path.basename(corrupt?.path ?? ''), segments[0])
})

test('damaged bytes in a middle segment never come back as data: replay fails with WAL_CORRUPT after a byte-exact prefix', async (t) => {
  const dir = tempDir(t)
  const { oracle, segments } = await writeSegmentedLog(dir)
  const damaged = segments[3]!
  overwrite(path.join(dir, damaged), 30_000, Buffer.alloc(64, 0xa5))
  let wal: Wal
  try {
    wal = await openWal(t, dir, { segmentSize: SMALL_SEGMENT })
  } catch (error) {
    // Refusing at open is the stricter, also acceptable outcome.
    const corrupt = assertWalError(t, error, 'WAL_CORRUPT', 'open')
    t.is(path.basename(corrupt?.path ?? ''), damaged)
    return
  }
  const replayed: Array<{ lsn: number; data: Buffer }> = []
  let failure: unknown
  try {
    for await (const { lsn, data } of wal.replay()) replayed.push({ lsn, data: Buffer.from(data) })
  } catch (error) {
    failure = error
  }
  const corrupt = assertWalError(t, failure, 'WAL_CORRUPT', 'replay')
  t.is(corrupt?.path, path.join(dir, damaged))
  t.is(typeof corrupt?.offset, 'number')
  t.true(
    (corrupt?.offset ?? Number.POSITIVE_INFINITY) <= 30_064,
    `offset ${corrupt?.offset} is at or before the damage`,
  )
  const firstOfDamaged = Number(damaged.slice(0, 20))
  t.true(replayed.length < oracle.records.length, 'replay stopped at the damage')
  t.true(replayed.length < firstOfDamaged + 200, 'nothing past the damage was served')
  assertRecords(t, replayed, oracle.records.slice(0, replayed.length), 'the prefix before the damage')
  // Replaying a range that ends before the damaged segment still works.
  assertRecords(
    t,
    await collect(wal, { to: firstOfDamaged - 1 }),
    oracle.range(1, firstOfDamaged - 1),
    'range before the damage',
  )
})

for (const [name, sync] of [
  ['always', 'always'],
  ['intervalMs', { intervalMs: 1000 }],
  ['none', 'none'],
] as const) {
  test(`close() with 500 writes in flight (sync ${name}): every promise settles; every resolved LSN replays byte-exact`, async (t) => {
    t.timeout(60_000, 'a write promise never settled after close()')
    const dir = tempDir(t)
    const wal = await Wal.open(dir, { sync, segmentSize: SMALL_SEGMENT })
    const data = Array.from({ length: 500 }, (_, i) => payload(70_000 + i, 100 + (i % 300)))
    const pending = data.map((record, index) =>
      wal.write(record, { durable: index % 2 === 0 }).then((lsn) => ({ lsn, record })),
    )
    const closing = wal.close()
    const settled = await Promise.allSettled(pending)
    await closing
    const resolved: Array<{ lsn: number; data: Buffer }> = []
    settled.forEach((outcome, index) => {
      if (outcome.status === 'fulfilled') {
        resolved.push({ lsn: outcome.value.lsn, data: outcome.value.record })
      } else {
        t.true(outcome.reason instanceof WalError, `write ${index} rejected with ${String(outcome.reason)}`)
      }
    })
    t.log(`${resolved.length} of 500 resolved`)
    resolved.sort((a, b) => a.lsn - b.lsn)
    t.is(new Set(resolved.map((record) => record.lsn)).size, resolved.length, 'resolved LSNs are distinct')

    const reopened = await openWal(t, dir, { segmentSize: SMALL_SEGMENT })
    const replayed = await collect(reopened)
    t.deepEqual(
      replayed.map((record) => record.lsn),
      Array.from({ length: replayed.length }, (_, i) => i + 1),
      'dense LSNs from 1',
    )
    const byLsn = new Map(replayed.map((record) => [record.lsn, record.data]))
    const wrong = resolved.filter(({ lsn, data: expected }) => !byLsn.get(lsn)?.equals(expected))
    t.deepEqual(
      wrong.map((record) => record.lsn),
      [],
      'resolved LSNs missing or different after reopen',
    )
  })
}
