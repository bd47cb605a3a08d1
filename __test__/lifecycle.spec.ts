/**
 * The log's native handles and the event loop get along: a process that has
 * used a log exits on its own (the flush callback must not pin the loop),
 * yet a process that is awaiting a durable write at the top level stays
 * alive until that write resolves (a weak handle alone would let it exit
 * early and drop the promise). And a worker thread terminated in the middle
 * of appending leaves the lock released and a log that reopens with dense
 * LSNs from 1, every record byte-exact.
 */
import test from 'ava'
import { Wal, WalError } from '../ts'
import { recordFor } from './fixtures/append-forever'
import { runTsFixture, startTsWorker } from './helpers/processes'
import { collect, openWal, tempDir } from './helpers/wal'

for (const mode of ['close', 'idle'] as const) {
  test(`a process that opened a log, wrote${mode === 'close' ? ' and closed it' : ' and left it open'} exits on its own with code 0`, async (t) => {
    const dir = tempDir(t)
    const result = await runTsFixture('open-write-exit.ts', [dir, mode], { timeoutMs: 20_000 })
    t.false(result.timedOut, `the child did not exit on its own; stdout: ${result.stdout}`)
    t.is(result.code, 0, result.stderr)
    t.is(result.stdout.trim(), 'done 11')
    const wal = await openWal(t, dir)
    const records = await collect(wal)
    // Record 11 was written durably; close (or exit) may have flushed the rest.
    t.true(records.length >= 11, `${records.length} records after reopen`)
    t.deepEqual(
      records.map(({ lsn, data }) => [lsn, data.toString()]),
      Array.from({ length: records.length }, (_, i) => [i + 1, `record ${i + 1}`]),
    )
  })
}

for (const policy of ['always', 'interval', 'none', 'bytes'] as const) {
  test(`top-level await wal.write() keeps the process alive until it resolves (sync ${policy})`, async (t) => {
    const dir = tempDir(t)
    const result = await runTsFixture('toplevel-write.mts', [dir, policy], { timeoutMs: 20_000 })
    t.false(result.timedOut, `the child hung; stdout: ${result.stdout}`)
    t.is(result.code, 0, result.stderr)
    const lines = result.stdout.trim().split('\n')
    t.is(lines.length, 3, `expected three resolved writes, got: ${JSON.stringify(result.stdout)}`)
    lines.forEach((line, index) => {
      const match = /^lsn (\d+) durable (\d+)$/.exec(line)
      t.truthy(match, line)
      t.is(Number(match?.[1]), index + 1)
      t.true(Number(match?.[2]) >= index + 1, `resolved before durable: ${line}`)
    })
    const wal = await openWal(t, dir)
    t.deepEqual(
      (await collect(wal)).slice(0, 3).map(({ lsn, data }) => [lsn, data.toString()]),
      [1, 2, 3].map((lsn) => [lsn, `top-level record ${lsn}`]),
      'every resolved write survived the process',
    )
  })
}

test('a worker terminated mid-append leaves a log that reopens in the main thread with dense LSNs from 1', async (t) => {
  const dir = tempDir(t)
  const segmentSize = 65_536
  const rounds: Array<{ sync: 'none' | 'always' | { bytes: number }; terminateAfter: number }> = [
    { sync: 'none', terminateAfter: 3 },
    { sync: 'always', terminateAfter: 1 },
    { sync: { bytes: 4096 }, terminateAfter: 0 },
    { sync: 'none', terminateAfter: 5 },
  ]
  let acknowledged = 0
  for (const [round, { sync, terminateAfter }] of rounds.entries()) {
    const worker = startTsWorker('append-forever.ts', { dir, sync, segmentSize })
    let failure: unknown
    worker.on('error', (error) => {
      failure = error
    })
    await new Promise<void>((resolve, reject) => {
      let seen = 0
      worker.on('message', (message: { type: string; durable?: number; lastLsn?: number }) => {
        if (message.type === 'open') {
          t.is(
            message.lastLsn !== undefined && message.lastLsn >= acknowledged,
            true,
            `round ${round}: worker opened behind`,
          )
          if (terminateAfter === 0) resolve()
          return
        }
        acknowledged = Math.max(acknowledged, message.durable ?? 0)
        if (++seen >= terminateAfter) resolve()
      })
      worker.once('exit', (code) =>
        reject(new Error(`round ${round}: worker exited (${code}) before it was terminated: ${String(failure)}`)),
      )
    })
    await worker.terminate()
    t.is(failure, undefined, `round ${round}: worker failed`)

    let wal: Wal
    try {
      wal = await Wal.open(dir, { segmentSize })
    } catch (error) {
      t.fail(
        `round ${round}: reopen after terminate failed: ${error instanceof WalError ? error.code : ''} ${String(error)}`,
      )
      return
    }
    const records = await collect(wal)
    t.true(
      records.length >= acknowledged,
      `round ${round}: ${records.length} records but ${acknowledged} were acknowledged`,
    )
    t.deepEqual(
      records.map((record) => record.lsn),
      Array.from({ length: records.length }, (_, i) => i + 1),
      `round ${round}: dense LSNs from 1`,
    )
    const wrong = records.filter(({ lsn, data }) => !data.equals(recordFor(lsn))).map((record) => record.lsn)
    t.deepEqual(wrong, [], `round ${round}: records with wrong bytes`)
    t.is(wal.lastLsn, records.length, `round ${round}: lastLsn`)
    await wal.close()
    t.log(`round ${round}: ${records.length} records, ${acknowledged} acknowledged`)
  }
  const wal = await openWal(t, dir, { segmentSize })
  const next = wal.lastLsn + 1
  t.is(await wal.write(recordFor(next)), next, 'the log continues after the last terminated worker')
})
