/**
 * Pins that a log file name taken by something that is not a regular file
 * is refused with a typed error, as a user meets it (issue 5 follow-up): a
 * FIFO named like the second segment, and a `LOCK` that is a dangling
 * symbolic link. Opening a FIFO for reading blocks until a writer comes, and
 * following the link would create a file wherever it points; either way a
 * careless open hangs or writes outside the log. Each case runs
 * `Wal.open` in a child process (fixtures/open-refused.ts) that reports the
 * rejection and calls `process.exit(0)`; a child still running after 20 s is
 * killed and fails the test.
 */
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import test, { type ExecutionContext } from 'ava'
import type { OpenOutcome } from './fixtures/open-refused'
import { segmentFileName } from './helpers/format'
import { runTsFixture } from './helpers/processes'
import { collect, openWal, payload, tempDir } from './helpers/wal'

/** Generous: an open that is refused takes milliseconds; one that blocks never ends. */
const DEADLINE_MS = 20_000
const SEGMENT_SIZE = 64 * 1024

/** A closed log with three records in a fresh directory. */
async function realLog(t: ExecutionContext): Promise<string> {
  const dir = tempDir(t)
  const wal = await openWal(t, dir, { segmentSize: SEGMENT_SIZE })
  for (let index = 1; index <= 3; index++) await wal.write(payload(index, 100))
  await wal.close()
  return dir
}

/** Runs fixtures/open-refused.ts on `dir`; asserts that it exited 0 in time and returns its report. */
async function openInChild(t: ExecutionContext, dir: string): Promise<OpenOutcome | undefined> {
  const child = await runTsFixture('open-refused.ts', [dir], { timeoutMs: DEADLINE_MS })
  t.false(child.timedOut, `the child was still running after ${DEADLINE_MS} ms and was killed; stderr: ${child.stderr}`)
  t.is(child.code, 0, `the child exited with ${child.code ?? child.signal}; stderr: ${child.stderr}`)
  return child.stdout === '' ? undefined : (JSON.parse(child.stdout) as OpenOutcome)
}

/** Asserts that the log in `dir` still opens (once the bad entry is gone) with its three records. */
async function assertLogIntact(t: ExecutionContext, dir: string): Promise<void> {
  const wal = await openWal(t, dir, { segmentSize: SEGMENT_SIZE })
  t.deepEqual(
    (await collect(wal)).map(({ lsn, data }) => data.equals(payload(lsn, 100)) && lsn),
    [1, 2, 3],
    'the records of the log, byte-exact',
  )
  await wal.close()
}

if (process.platform !== 'win32') {
  test('a FIFO named like a segment: Wal.open rejects with WAL_CORRUPT naming it, without blocking; the process exits', async (t) => {
    const dir = await realLog(t)
    const fifo = path.join(dir, segmentFileName(2))
    execFileSync('mkfifo', [fifo])
    const outcome = await openInChild(t, dir)
    t.like(outcome, { opened: false, walError: true, code: 'WAL_CORRUPT', path: fifo }, outcome?.message)
    fs.unlinkSync(fifo)
    await assertLogIntact(t, dir)
  })

  test('a LOCK that is a dangling symbolic link: Wal.open rejects with WAL_CORRUPT naming it and does not create its target; the process exits', async (t) => {
    const dir = await realLog(t)
    const lock = path.join(dir, 'LOCK')
    const target = path.join(tempDir(t), 'lock-target')
    fs.rmSync(lock, { force: true })
    fs.symlinkSync(target, lock)
    const outcome = await openInChild(t, dir)
    t.like(outcome, { opened: false, walError: true, code: 'WAL_CORRUPT', path: lock }, outcome?.message)
    t.false(fs.existsSync(target), 'the link was not followed')
    t.true(fs.lstatSync(lock).isSymbolicLink(), 'the link is left as it was')
    fs.unlinkSync(lock)
    await assertLogIntact(t, dir)
  })
}
