/**
 * Pins that durability completions never starve the event loop: with
 * thousands of writers looping on `await wal.write()`, timers still fire.
 * Waiters are settled only from the flusher's notice, which arrives as its
 * own event-loop callback once per flush; settling them from the live
 * durable LSN inside `sync()` let each resolution queue the next write within
 * the same microtask drain, which then never ended, and a timer never fired
 * while writes kept completing. A child process (fixtures/many-writers.ts)
 * runs the writers and measures its timer; the parent checks the gaps, that
 * every write resolved, and replays the log against the records it wrote.
 */
import test from 'ava'
import { type ManyWritersReport, writerRecord } from './fixtures/many-writers'
import { runTsFixture } from './helpers/processes'
import { assertRecords, collect, openWal, type Replayed, tempDir } from './helpers/wal'

const WRITERS = 6000
const RUN_MS = 2000
/** Far above any scheduling hiccup of a loaded 2-core machine, far below a stalled loop. */
const LARGEST_GAP_BOUND_MS = 1000

test(`${WRITERS} writers looping on await wal.write(): a timer keeps firing, every write resolves and replays`, async (t) => {
  const dir = tempDir(t)
  const child = await runTsFixture('many-writers.ts', [dir, String(WRITERS), String(RUN_MS)], { timeoutMs: 60_000 })
  t.is(child.code, 0, `child failed (timed out: ${child.timedOut}): ${child.stderr}`)
  const report = JSON.parse(child.stdout) as ManyWritersReport
  t.log(
    `${report.resolved} writes in ${Math.round(report.ranMs)} ms; timer fired ${report.ticks} times, largest gap ${Math.round(report.largestGapMs)} ms`,
  )

  t.true(report.largestGapMs < LARGEST_GAP_BOUND_MS, `largest gap between timer firings: ${report.largestGapMs} ms`)
  t.true(report.ticks >= report.ranMs / LARGEST_GAP_BOUND_MS, `timer fired ${report.ticks} times`)
  t.is(report.resolved, report.started, 'every write resolved')
  t.true(report.resolved > WRITERS, `writes kept completing (${report.resolved})`)

  const expected: Replayed[] = []
  for (const [writer, lsns] of report.lsns.entries()) {
    for (const [seq, lsn] of lsns.entries()) expected.push({ lsn, data: writerRecord(writer, seq) })
  }
  expected.sort((a, b) => a.lsn - b.lsn)
  // Every write resolved and the child closed cleanly, so the acknowledged
  // records are all the records: LSNs 1..n, dense.
  const firstNotDense = expected.findIndex((record, index) => record.lsn !== index + 1)
  t.is(firstNotDense, -1, 'acknowledged LSNs are 1..n')
  const wal = await openWal(t, dir)
  assertRecords(t, await collect(wal), expected)
})
