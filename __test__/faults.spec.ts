/**
 * Pins the error codes that only a failing disk or the end of the LSN space
 * produce, through the real addon (docs/durability.md, "How the code keeps
 * it", and docs/FORMAT.md, "LSNs").
 *
 * `WAL_IO` and `WAL_POISONED`: a child process (fixtures/fault-child.ts) runs
 * under `strace -e inject=fdatasync:error=EIO:when=N -P <file>`, so the N-th
 * fdatasync of one thread on one file fails as a failing disk would make it.
 * A failed sync at open rejects the open with `WAL_IO`; a failed sync of
 * written records poisons the log: the writes it covered and every later
 * `write`, `append`, `sync` and `close` fail with `WAL_POISONED` whose cause
 * is that `WAL_IO` (with the OS error `EIO` as its own cause), fdatasync is
 * never tried again on the file (counted in strace's trace), and a reopen
 * finds every acknowledged record, byte-exact, in a dense prefix. A failing
 * stat of an existing log directory is reported as what it is, not as
 * mkdir's EEXIST. strace exists on Linux only; there the tests require it
 * (`.ci/run` installs it); the matrix over every system call the addon
 * makes is syscall-faults.spec.ts.
 *
 * `WAL_LSN_EXHAUSTED`: a log crafted by hand from docs/FORMAT.md (with the
 * test's own CRC32C) whose only segment starts just below 2^53 - 1 takes
 * appends up to that LSN and refuses the rest, and reopens unchanged.
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import test, { type ExecutionContext } from 'ava'
import { MAX_LSN, WalError } from '../ts'
import { recordFor } from './fixtures/append-forever'
import { DURABLE_BEFORE_CLOSE, type ErrorReport, type FaultReport, WRITERS } from './fixtures/fault-child'
import { crc32c, maskCrc, segmentFileName, writeEmptySegment } from './helpers/format'
import { runTsFixture } from './helpers/processes'
import { type Injection, parseTrace, straceCommand } from './helpers/strace'
import { assertRecords, collect, openWal, payload, type Replayed, segmentFiles, tempDir } from './helpers/wal'

const SEGMENT_SIZE = 65_536
/** The file the first segment of a new log is prepared in before it is renamed into place. */
const PREPARED_NAME = 'next-segment.tmp'

/** One fdatasync in strace's trace. */
interface SyncCall {
  fd: number
  injected: boolean
}

/**
 * Runs fault-child.ts `scenario` on a fresh log directory (which exists
 * already) with `injection` on the calls that touch `file` in it (`''`: the
 * directory itself). Returns the log directory, the child's report and the
 * fdatasync calls on that file.
 */
async function runWithFailure(
  t: ExecutionContext,
  scenario: 'open' | 'write' | 'close',
  file: string,
  injection: Injection,
): Promise<{ dir: string; report: FaultReport; syncs: SyncCall[] }> {
  // strace matches -P against resolved paths.
  const dir = fs.realpathSync(tempDir(t))
  const output = path.join(fs.realpathSync(tempDir(t)), 'strace.out')
  const paths = [path.join(dir, file)]
  const wrapper = straceCommand({ output, syscalls: ['fdatasync'], paths, injection })
  const child = await runTsFixture('fault-child.ts', [dir, scenario], { wrapper }).catch((error: Error) => {
    throw new Error(`cannot run strace, which these tests need (.ci/run installs it): ${error.message}`)
  })
  t.is(child.code, 0, `child failed (timed out: ${child.timedOut}): ${child.stderr}`)
  const syncs = parseTrace(fs.readFileSync(output, 'utf8'))
    .filter((call) => call.syscall === 'fdatasync' && call.fd !== undefined)
    .map((call) => ({ fd: call.fd!, injected: call.injected }))
  return { dir, report: JSON.parse(child.stdout) as FaultReport, syncs }
}

/** The `when`-th fdatasync of each thread fails with EIO. */
const failingSync = (when: number): Injection => ({ syscall: 'fdatasync', errno: 'EIO', when, onward: false })

/** Asserts that `error` is a `WAL_IO` from a failed fdatasync of `file`, caused by the OS error EIO. */
function assertFailedSync(t: ExecutionContext, error: ErrorReport | undefined, file: string, label: string): void {
  t.like(error, { name: 'WalError', code: 'WAL_IO', syscall: 'fdatasync', path: file }, `${label}: WAL_IO`)
  t.like(error?.cause, { code: 'EIO', syscall: 'fdatasync' }, `${label}: the OS error`)
}

/** Asserts that `error` is `WAL_POISONED` whose cause is the failed fdatasync of `file`. */
function assertPoisoned(t: ExecutionContext, error: ErrorReport | undefined, file: string, label: string): void {
  t.like(error, { name: 'WalError', code: 'WAL_POISONED' }, `${label}: WAL_POISONED`)
  assertFailedSync(t, error?.cause, file, `${label}: its cause`)
}

/** Asserts that fdatasync failed once (the `when`-th call) and was never called on that descriptor again. */
function assertNoRetry(t: ExecutionContext, syncs: SyncCall[], when: number): void {
  const failed = syncs.findIndex((call) => call.injected)
  t.is(failed, when - 1, `the ${when}-th fdatasync failed: ${JSON.stringify(syncs)}`)
  const retries = syncs.slice(failed + 1).filter((call) => call.fd === syncs[failed]?.fd)
  t.is(retries.length, 0, 'fdatasync calls on the failed file descriptor after the failure')
}

/**
 * Reopens the log and asserts that it holds a dense prefix 1..n of what was
 * appended (`recordFor(lsn)` each, byte-exact) with every acknowledged record.
 */
async function assertAcknowledgedPrefix(t: ExecutionContext, dir: string, report: FaultReport): Promise<void> {
  const wal = await openWal(t, dir, { segmentSize: 1 << 20 })
  const records = await collect(wal)
  const expected: Replayed[] = records.map((_, index) => ({ lsn: index + 1, data: recordFor(index + 1) }))
  assertRecords(t, records, expected, 'after reopen')
  t.true(records.length >= Math.max(0, ...report.acked), `every acknowledged record is present (${records.length})`)
  t.true(records.length <= report.lastLsn, `only appended records are present (${records.length})`)
}

if (process.platform === 'linux') {
  test('a failed fdatasync while Wal.open prepares the first segment rejects the open with WAL_IO', async (t) => {
    const { dir, report } = await runWithFailure(t, 'open', PREPARED_NAME, failingSync(1))
    assertFailedSync(t, report.open, path.join(dir, PREPARED_NAME), 'Wal.open')
    const wal = await openWal(t, dir, { segmentSize: 1 << 20 })
    t.is(wal.lastLsn, 0, 'the log reopens empty')
  })

  test('a failing stat of the existing log directory rejects Wal.open with WAL_IO caused by that error, not by mkdir', async (t) => {
    // std's create_dir_all answers mkdir's EEXIST when its check that the existing entry is a directory fails.
    const failingStat = { syscall: 'statx', errno: 'EIO', when: 1, onward: true }
    const { dir, report } = await runWithFailure(t, 'open', '', failingStat)
    t.like(report.open, { name: 'WalError', code: 'WAL_IO', path: dir }, 'Wal.open')
    t.like(report.open?.cause, { code: 'EIO' }, 'the OS error: the failed stat')
  })

  test('a failed fdatasync poisons the log: writes, append, sync and close fail with WAL_POISONED; no retry; acknowledged records survive', async (t) => {
    const segment = segmentFileName(1)
    const when = 4
    const { dir, report, syncs } = await runWithFailure(t, 'write', segment, failingSync(when))
    const segmentPath = path.join(dir, segment)
    t.is(report.open, undefined, 'Wal.open')
    t.true(report.acked.length > 0, 'writes were acknowledged before the failure')
    t.is(report.writes.length, WRITERS, 'every writer saw its write rejected')
    for (const [writer, error] of report.writes.entries()) assertPoisoned(t, error, segmentPath, `writer ${writer}`)
    assertPoisoned(t, report.append, segmentPath, 'append after the failure')
    assertPoisoned(t, report.sync, segmentPath, 'sync after the failure')
    assertPoisoned(t, report.close, segmentPath, 'close')
    assertNoRetry(t, syncs, when)
    await assertAcknowledgedPrefix(t, dir, report)
  })

  test('append then close with the final flush failing: close rejects with WAL_POISONED; no retry; acknowledged records survive', async (t) => {
    const segment = segmentFileName(1)
    const when = DURABLE_BEFORE_CLOSE + 1
    const { dir, report, syncs } = await runWithFailure(t, 'close', segment, failingSync(when))
    t.is(report.open, undefined, 'Wal.open')
    t.deepEqual(report.acked, [1, 2], 'the writes before close were acknowledged')
    t.is(report.lastLsn, DURABLE_BEFORE_CLOSE + 1)
    assertPoisoned(t, report.close, path.join(dir, segment), 'close')
    assertNoRetry(t, syncs, when)
    await assertAcknowledgedPrefix(t, dir, report)
  })
}

test('the CRC32C and mask the crafted segments use match known values', (t) => {
  t.is(crc32c(Buffer.from('123456789')), 0xe3069283, 'the standard CRC-32C check value')
  t.is(maskCrc(0), 0xa282ead8)
  t.is(maskCrc(1), 0xa284ead8, 'rotate right by 15, then add')
  t.is(maskCrc(0x8000), 0xa282ead9)
})

test('appends past 2^53 - 1 fail with WAL_LSN_EXHAUSTED and leave the log unchanged', async (t) => {
  const dir = tempDir(t)
  const first = MAX_LSN - 2
  writeEmptySegment(dir, first, SEGMENT_SIZE)
  const wal = await openWal(t, dir, { segmentSize: SEGMENT_SIZE })
  t.is(wal.lastLsn, first - 1, 'the crafted segment is accepted and empty')
  const exhausted = { instanceOf: WalError, code: 'WAL_LSN_EXHAUSTED' }

  t.throws(() => wal.appendBatch([0, 1, 2, 3].map((index) => payload(index, 10))), exhausted, 'straddling batch')
  const appended: Replayed[] = []
  let refused: unknown
  for (let index = 0; refused === undefined && index < 10; index++) {
    const data = payload(index, 40)
    try {
      appended.push({ lsn: wal.append(data), data })
    } catch (error) {
      refused = error
    }
  }
  t.deepEqual(
    appended.map((record) => record.lsn),
    [first, first + 1, MAX_LSN],
    'appends up to 2^53 - 1',
  )
  t.true(refused instanceof WalError, 'the append after 2^53 - 1 throws a WalError')
  t.like(refused, { code: exhausted.code }, 'the append after 2^53 - 1')
  t.throws(() => wal.appendBatch([payload(20, 10)]), exhausted, 'a batch after 2^53 - 1')
  await t.throwsAsync(wal.write(payload(21, 10)), exhausted, 'a write after 2^53 - 1')
  t.is(await wal.sync(), MAX_LSN)
  await wal.close()

  const reopened = await openWal(t, dir, { segmentSize: SEGMENT_SIZE })
  t.is(reopened.lastLsn, MAX_LSN)
  t.like(reopened.recovery, { records: 3, truncatedBytes: 0 })
  assertRecords(t, await collect(reopened, { from: first }), appended, 'after reopen')
  t.throws(() => reopened.append(payload(22, 10)), exhausted, 'append after reopen')
  t.deepEqual(segmentFiles(dir), [segmentFileName(first)])
})
