/**
 * Pins `Wal.openReadOnly` (docs/operations.md, "Readers in other
 * processes"): a reader takes no lock and writes nothing, so it opens beside
 * a writer in another process, on a read-only filesystem and on a full one;
 * it reads only records the writer made durable; its `tail()` follows a
 * writer process across segment rotations, woken by the OS, every record
 * once and byte-exact.
 */
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import test, { type ExecutionContext } from 'ava'
import { Wal, WalError } from '../ts'
import { recordAt } from './fixtures/write-records'
import { mountTmpfs } from './helpers/mounts'
import { fixture, startNode } from './helpers/processes'
import { openWal, payload, segmentFiles, tempDir } from './helpers/wal'

const SEGMENT_SIZE = 64 * 1024

test('a reader in another process than the writer follows it across rotations, every record once and byte-exact', async (t) => {
  const dir = tempDir(t)
  const reader = await Wal.openReadOnly(dir)
  t.teardown(() => reader.close())
  const count = 1500
  const writer = startNode(['--import', 'tsx', fixture('write-records.ts'), dir, String(count), String(SEGMENT_SIZE)])
  const abort = new AbortController()
  let expected = 1
  const reading = (async () => {
    for await (const record of reader.tail({ signal: abort.signal })) {
      t.is(record.lsn, expected)
      if (!record.data.equals(recordAt(record.lsn))) t.fail(`record ${record.lsn} differs`)
      expected++
      if (record.lsn === count) abort.abort()
    }
  })()
  const result = await writer.result
  t.is(result.code, 0, result.stderr)
  await reading
  t.is(expected, count + 1)
  t.true(segmentFiles(dir).length > 10, 'the writer rotated segments while the reader followed')
})

test('a reader reads only what the writer made durable, and is told when it made more', async (t) => {
  const dir = tempDir(t)
  const writer = await openWal(t, dir, { sync: 'none', segmentSize: SEGMENT_SIZE })
  for (let lsn = 1; lsn <= 100; lsn++) writer.append(payload(lsn, 300))
  await writer.sync()
  for (let lsn = 101; lsn <= 150; lsn++) writer.append(payload(lsn, 300))
  const reader = await Wal.openReadOnly(dir)
  t.teardown(() => reader.close())
  t.is(reader.durableLsn, 100)
  const seen: number[] = []
  for await (const record of reader.replay()) seen.push(record.lsn)
  t.deepEqual(
    seen,
    Array.from({ length: 100 }, (_, index) => index + 1),
  )
  const tailed: number[] = []
  const abort = new AbortController()
  const tailing = (async () => {
    for await (const record of reader.tail({ from: 101, signal: abort.signal })) {
      tailed.push(record.lsn)
      if (record.lsn === 150) abort.abort()
    }
  })()
  await writer.sync()
  await tailing
  t.deepEqual(
    tailed,
    Array.from({ length: 50 }, (_, index) => index + 101),
  )
  // A writer's lock does not stop a reader, and a reader does not stop a writer.
  await t.throwsAsync(Wal.open(dir), { instanceOf: WalError, code: 'WAL_LOCKED' })
})

test('a reader is refused what a closed one cannot do, with typed errors', async (t) => {
  const dir = tempDir(t)
  const writer = await openWal(t, dir)
  await writer.write(Buffer.from('one'))
  const reader = await Wal.openReadOnly(new URL(`file://${dir}`))
  await reader.close()
  t.true(reader.closed)
  t.throws(() => reader.replay(), { instanceOf: WalError, code: 'WAL_CLOSED' })
  await t.throwsAsync(Wal.openReadOnly(dir, { recovery: 'best' as never }), {
    instanceOf: WalError,
    code: 'WAL_INVALID_ARGUMENT',
  })
  await t.throwsAsync(Wal.openReadOnly(dir, { sync: 'none' } as never), {
    instanceOf: WalError,
    code: 'WAL_INVALID_ARGUMENT',
  })
})

/** Writes 200 records durably into a new log in `dir` and closes it. */
async function writeLog(dir: string): Promise<void> {
  const writer = await Wal.open(dir, { segmentSize: SEGMENT_SIZE })
  for (let lsn = 1; lsn <= 200; lsn++) writer.append(payload(lsn, 1000))
  await writer.sync()
  await writer.close()
}

async function readAll(dir: string): Promise<number> {
  const reader = await Wal.openReadOnly(dir)
  let count = 0
  try {
    for await (const record of reader.replay()) {
      if (!record.data.equals(payload(record.lsn, 1000))) throw new Error(`record ${record.lsn} differs`)
      count++
    }
  } finally {
    await reader.close()
  }
  return count
}

const canMount = process.platform === 'linux' && process.getuid?.() === 0
/** A test that mounts a tmpfs: it runs as root on Linux; elsewhere it is listed as skipped, saying why. */
function rootOnly(title: string, body: (t: ExecutionContext) => Promise<void>): void {
  if (canMount) test(title, body)
  else test.skip(`${title} (needs root on Linux, to mount a tmpfs)`, body)
}

rootOnly('a reader opens and reads a log on a read-only filesystem, where a writer cannot open', async (t) => {
  const mountPoint = mountTmpfs(t, '4m')
  const dir = path.join(mountPoint, 'log')
  await writeLog(dir)
  execFileSync('mount', ['-o', 'remount,ro', mountPoint])
  t.is(await readAll(dir), 200)
  await t.throwsAsync(Wal.open(dir), { instanceOf: WalError })
})

rootOnly('a reader opens and reads a log on a full filesystem', async (t) => {
  const mountPoint = mountTmpfs(t, '1m')
  const dir = path.join(mountPoint, 'log')
  await writeLog(dir)
  // Fill what is left.
  const filler = path.join(mountPoint, 'filler')
  t.throws(() => fs.writeFileSync(filler, Buffer.alloc(2 << 20)), { code: 'ENOSPC' })
  const before = fs.readdirSync(dir).sort()
  t.is(await readAll(dir), 200)
  t.deepEqual(fs.readdirSync(dir).sort(), before, 'the reader created or removed no file')
  t.true(segmentFiles(dir).length >= 3)
})
