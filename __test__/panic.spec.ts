/**
 * Pins the binding's panic policy (no panic ever reaches Node) and the
 * life of its env cleanup hooks (issue 5, items 8 and 9).
 *
 * A panic that unwinds out of a native entry point aborts the process, so
 * every entry point is guarded. Each test here runs a child process on the
 * test addon (`npm run build:test-addon`), makes one entry point panic once
 * through its `injectPanic`, and checks that the public API turns it into a
 * `WalError` with code `WAL_INTERNAL` (getters, option checks and the
 * synchronous part of async calls included), that the process carries on and
 * exits 0 (not SIGABRT), and that the log reopens with every record
 * byte-exact. A failed `Wal.open` after the native open (`recovery`) must
 * close that native log: the child then reopens the same directory, which
 * its lock would refuse. Opening a log registers
 * a cleanup hook that closes it if the environment goes first; closing the
 * log must remove it again, or a process that opens many logs grows.
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import test from 'ava'
import type { CleanupHooksReport } from './fixtures/cleanup-hooks'
import { type PanicSiteReport, recordFor, segmentSize, teardownSites } from './fixtures/panic-site'
import { fixture, rootDir, runNode } from './helpers/processes'
import { testAddonEnv } from './helpers/test-addon'
import { collect, openWal, tempDir } from './helpers/wal'

/** Every native entry point, by the name it has in the guard. */
const sites = [
  'limits',
  'recordCapacity',
  'open',
  'open.compute',
  'open.resolve',
  'recovery',
  'append',
  'appendBatch',
  'requestSync',
  'checkHealth',
  'durableLsn',
  'lastLsn',
  'firstLsn',
  'syncCount',
  'bufferedBytes',
  'replay',
  'replayNext',
  'replayNext.compute',
  'replayNext.resolve',
  'replayFollow',
  'replayClose',
  'checkpoint',
  'lastCheckpoint',
  'segmentCount',
  'segmentBytes',
  'truncateBefore',
  'truncateAfter',
  'truncate.compute',
  'truncate.resolve',
  'openReadOnly',
  'openReadOnly.compute',
  'openReadOnly.resolve',
  'reader.recovery',
  'reader.durableLsn',
  'reader.firstLsn',
  'reader.replay',
  'reader.close',
  'reader.checkHealth',
  'changeListener',
  'flushListener',
  'close',
  'close.compute',
  'close.resolve',
  'cleanupHook',
  'finalize',
]

test('the sites tested here are every guarded site of the binding (and the test-only exports)', (t) => {
  const sourceDir = path.join(rootDir, 'crates', 'durawal-node', 'src')
  const guardedSites = new Set<string>()
  for (const file of fs.readdirSync(sourceDir)) {
    const source = fs.readFileSync(path.join(sourceDir, file), 'utf8')
    for (const match of source.matchAll(/\b(?:guarded|catch_panic)\("([^"]+)"/g)) guardedSites.add(match[1]!)
  }
  t.deepEqual([...guardedSites].sort(), [...sites, 'injectPanic', 'liveCleanupHooks'].sort())
})

function runWithTestAddon(name: string, args: string[]) {
  return runNode(['--import', 'tsx', fixture(name), ...args], {
    env: { ...testAddonEnv(), RUST_BACKTRACE: '0' },
    timeoutMs: 60_000,
  })
}

for (const site of sites) {
  test(`a panic in ${site} is a WAL_INTERNAL error, the process carries on and the log stays intact`, async (t) => {
    const dir = tempDir(t)
    const child = await runWithTestAddon('panic-site.ts', [dir, site])
    t.false(child.timedOut, `the child hung; stderr: ${child.stderr}`)
    t.is(child.signal, null, `the child was killed by ${child.signal}; stderr: ${child.stderr}`)
    t.is(child.code, 0, child.stderr)
    t.true(child.stderr.includes('injected panic'), `the panic never happened; stderr: ${child.stderr}`)
    const report = JSON.parse(child.stdout) as PanicSiteReport

    if (teardownSites.has(site)) {
      t.is(report.error, undefined)
    } else {
      t.is(report.error?.code, 'WAL_INTERNAL')
      t.true(report.error?.message.includes(`panic in ${site}: injected panic`), report.error?.message)
      t.true(report.error?.walError, 'thrown as a WalError by the public API')
    }
    if (!site.startsWith('close') && site !== 'flushListener' && site !== 'checkHealth') {
      t.is(report.replayed, report.appended, 'the log replayed in full after the panic')
      t.true(report.appended >= 5)
    }

    const wal = await openWal(t, `${dir}/log`, { segmentSize })
    const records = await collect(wal)
    t.is(records.length, report.appended, 'every appended record is in the log')
    t.true(records.length >= Math.max(0, ...report.durable), 'every durable record is in the log')
    const wrong = records.filter(({ lsn, data }, index) => lsn !== index + 1 || !data.equals(recordFor(lsn)))
    t.deepEqual(
      wrong.map(({ lsn }) => lsn),
      [],
      'records with wrong LSNs or bytes',
    )
  })
}

test('closing a log removes its env cleanup hook; a terminated worker runs and frees its own; a close in flight at worker exit finishes', async (t) => {
  const dir = tempDir(t)
  const child = await runWithTestAddon('cleanup-hooks.ts', [dir])
  t.false(child.timedOut, `the child hung; stderr: ${child.stderr}`)
  t.is(child.code, 0, child.stderr)
  const report = JSON.parse(child.stdout) as CleanupHooksReport
  t.is(report.concurrent.whileOpen, report.concurrent.logs, 'one hook per open log')
  t.is(report.concurrent.afterClose, 0, 'hooks left after closing the logs opened at once')
  t.deepEqual(
    report.sequential.afterEachClose,
    Array.from({ length: report.sequential.logs }, () => 0),
    'hooks left after each close of logs opened one after another',
  )
  t.is(report.afterWorker, 0, 'hooks left after the worker was terminated')
  t.is(report.workerRecords, 1, "the worker's log was closed by its hook and reopens with its record")
  t.is(report.closeThenExit.afterExit, 0, 'hooks left after the worker that exited while closing')
  t.is(
    report.closeThenExit.reopened,
    report.closeThenExit.appended,
    'a close() in flight when its worker exited still flushed every record',
  )
})
