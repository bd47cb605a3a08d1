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
 * Whether the old code stalled for a whole second in a short run depended on
 * fsync timing, so a second test pins the mechanism itself: a `sync()` of a
 * record the flusher has already made durable settles nothing before the
 * event loop turns. A third pins that the waiters of one flush are settled in
 * batches, a turn of the event loop each, so that the time a turn takes does
 * not grow with the number of writers.
 */
import test from 'ava'
import { type ManyWritersReport, TICK_MS, writerRecord } from './fixtures/many-writers'
import { runTsFixture } from './helpers/processes'
import { assertRecords, collect, openWal, payload, type Replayed, tempDir } from './helpers/wal'

const WRITERS = 6000
const RUN_MS = 2000
/** Far above any scheduling hiccup of a loaded 2-core machine, far below a stalled loop. */
const LARGEST_GAP_BOUND_MS = 1000
/** The timer must fire at least once per this many of its intervals, on average. */
const FIRING_SLACK = 20

test(`${WRITERS} writers looping on await wal.write(): a timer keeps firing, every write resolves and replays`, async (t) => {
  const dir = tempDir(t)
  const child = await runTsFixture('many-writers.ts', [dir, String(WRITERS), String(RUN_MS)], { timeoutMs: 60_000 })
  t.is(child.code, 0, `child failed (timed out: ${child.timedOut}): ${child.stderr}`)
  const report = JSON.parse(child.stdout) as ManyWritersReport
  t.log(
    `${report.resolved} writes in ${Math.round(report.ranMs)} ms; timer fired ${report.ticks} times, largest gap ${Math.round(report.largestGapMs)} ms`,
  )

  t.true(report.largestGapMs < LARGEST_GAP_BOUND_MS, `largest gap between timer firings: ${report.largestGapMs} ms`)
  t.true(report.ticks >= report.ranMs / (TICK_MS * FIRING_SLACK), `timer fired ${report.ticks} times`)
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

test('sync() of a record already durable settles no promise within the microtask drain of its caller', async (t) => {
  const wal = await openWal(t, tempDir(t))
  const lsn = wal.append(Buffer.from('durable before anyone hears of it'))
  const settled: string[] = []
  const first = wal.sync(lsn).then(() => settled.push('first'))
  // Hold the JavaScript thread until the flusher has made the record durable:
  // its notice is then queued and cannot have been delivered.
  const giveUpAt = Date.now() + 30_000
  while (wal.durableLsn < lsn && Date.now() < giveUpAt) {
    // Busy: nothing else may run on this thread meanwhile.
  }
  t.true(wal.durableLsn >= lsn, 'the flusher made the record durable')
  const second = wal.sync(lsn).then(() => settled.push('second'))
  for (let hop = 0; hop < 10; hop++) await null
  t.deepEqual(settled, [], 'settled before the event loop turned')
  await Promise.all([first, second])
  t.deepEqual(settled.sort(), ['first', 'second'])
})

test('5000 promises made durable by one flush settle over several turns of the event loop', async (t) => {
  const wal = await openWal(t, tempDir(t), { sync: 'none' })
  const total = 5000
  for (let index = 0; index < total; index++) wal.append(payload(index, 16))
  // Everything is appended before the first sync, so one flush covers it all
  // and one notice reports it.
  let resolved = 0
  const syncs = Array.from({ length: total }, (_, index) => wal.sync(index + 1).then(() => resolved++))
  const seen: number[] = []
  const probe = (): void => {
    seen.push(resolved)
    if (resolved < total) setImmediate(probe)
  }
  setImmediate(probe)
  await Promise.all(syncs)
  const between = seen.filter((count) => count > 0 && count < total)
  t.true(between.length >= 2, `resolved counts the event loop saw between batches: ${seen.join(', ')}`)
})
