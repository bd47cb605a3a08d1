/**
 * Pins what a really full filesystem does to a log (issue 5 follow-up): the
 * log is on a 1 MiB tmpfs and written durably until the disk is full. The
 * write that finds no space is rejected with `WAL_POISONED` whose cause is
 * the `WAL_IO` error carrying the OS error `ENOSPC`, and `close()` reports it.
 * With the disk still full the log must open and replay every acknowledged
 * record byte-exact (open needs no new space), refuse a new durable write
 * with a typed error instead of hanging, and open again after that. Once
 * space is freed, appends work again and survive a reopen.
 *
 * Mounting needs root on Linux; elsewhere the test is listed as skipped.
 */
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import test, { type ExecutionContext } from 'ava'
import { type Wal, WalError } from '../ts'
import { mountTmpfs } from './helpers/mounts'
import { assertRecords, collect, Oracle, openWal, payload, type Replayed } from './helpers/wal'

const SEGMENT_SIZE = 64 * 1024
const RECORD_SIZE = 3000
/** More records than 1 MiB holds: a log that takes them all never found the disk full. */
const MAX_WRITES = 1000
/** The file the next segment is prepared in, in the background, before rotation renames it into place. */
const PREPARED_NAME = 'next-segment.tmp'

/** The OS error code at the end of `error`'s cause chain. */
function osCode(error: unknown): unknown {
  let cause = error
  while ((cause as { cause?: unknown }).cause !== undefined) cause = (cause as { cause: unknown }).cause
  return (cause as { code?: unknown }).code
}

/** Asserts that `wal` replays a dense prefix of `oracle` that holds every acknowledged record. */
async function assertAcknowledgedPrefix(
  t: ExecutionContext,
  wal: Wal,
  oracle: Oracle,
  acknowledged: number,
  label: string,
): Promise<Replayed[]> {
  const records = await collect(wal)
  assertRecords(t, records, oracle.range(1, records.length), label)
  t.true(records.length >= acknowledged, `${label}: ${records.length} records, ${acknowledged} acknowledged`)
  return records
}

const title =
  'a full disk: the write that finds no space is poisoned by ENOSPC; with the disk full the log opens, replays every acknowledged record and refuses writes; once space is freed appends work again'

if (process.platform === 'linux' && process.getuid?.() === 0) {
  test(title, async (t) => {
    const mountPoint = mountTmpfs(t, '1m')
    const dir = path.join(mountPoint, 'log')
    const options = { sync: 'always', segmentSize: SEGMENT_SIZE } as const
    const oracle = new Oracle()

    const wal = await openWal(t, dir, options)
    let acknowledged = 0
    let refused: unknown
    for (let index = 1; refused === undefined && index <= MAX_WRITES; index++) {
      const data = payload(index, RECORD_SIZE)
      oracle.add(index, data)
      try {
        t.is(await wal.write(data), index, 'write() resolves with the next LSN')
        acknowledged = index
      } catch (error) {
        refused = error
      }
    }
    t.true(refused !== undefined, `${MAX_WRITES} writes of ${RECORD_SIZE} bytes fit on a 1 MiB disk`)
    t.true(acknowledged > 0, 'writes were acknowledged before the disk was full')
    t.true(refused instanceof WalError, `the write is refused with a WalError: ${String(refused)}`)
    t.like(refused, { code: 'WAL_POISONED', cause: { name: 'WalError', code: 'WAL_IO', cause: { code: 'ENOSPC' } } })
    await t.throwsAsync(wal.close(), { instanceOf: WalError, code: 'WAL_POISONED' }, 'close reports the failure')
    t.false(fs.existsSync(path.join(dir, PREPARED_NAME)), 'the partly written next segment was removed')

    const full = await openWal(t, dir, options)
    await assertAcknowledgedPrefix(t, full, oracle, acknowledged, 'reopened on the full disk')
    const next = payload(0, RECORD_SIZE)
    const error = await t.throwsAsync(full.write(next), { instanceOf: WalError }, 'a write on the full disk')
    t.is(osCode(error), 'ENOSPC', `the write fails for want of space: ${error?.message}`)
    await full.close().catch(() => {})

    const again = await openWal(t, dir, options)
    const kept = await assertAcknowledgedPrefix(t, again, oracle, acknowledged, 'reopened again on the full disk')
    await again.close()

    execFileSync('mount', ['-o', 'remount,size=4m', mountPoint])
    const freed = await openWal(t, dir, options)
    const after = new Oracle()
    for (const record of kept) after.add(record.lsn, record.data)
    for (let count = 0; count < 40; count++) {
      const data = payload(after.nextLsn, RECORD_SIZE)
      after.add(await freed.write(data), data)
    }
    await freed.close()

    const reopened = await openWal(t, dir, options)
    assertRecords(t, await collect(reopened), after.records, 'after space was freed')
  })
} else {
  test.skip(`${title} (needs root on Linux, to mount a tmpfs)`, () => {})
}
