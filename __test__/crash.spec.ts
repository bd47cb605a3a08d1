/**
 * Pins the process-crash guarantee (docs/durability.md; G1 in
 * shared/RELIABILITY.md): a writer killed with SIGKILL at any moment —
 * mid-write, mid-sync, inside a segment roll (seal, new segment synced,
 * renamed, directory synced), or inside its own `Wal.open` while that
 * recovers what the last kill left — never loses a record whose write or
 * sync resolved, never makes reopening fail, and never returns a byte that
 * was not written.
 *
 * Each cycle a child process (fixtures/crash-child.ts) appends from 16
 * concurrent producers under a sync policy, segment size and I/O mode drawn
 * for the cycle, with records from a few bytes to several 4 KiB blocks and
 * atomic batches, reporting each record's intent before it appends and each
 * acknowledgement; the parent kills it (at a random time, just before or
 * after a segment roll, or inside open), reopens the log and checks the
 * oracle: open succeeds; LSNs dense from 1; every acknowledged LSN holds
 * exactly the acknowledged record; every new record is one a producer of
 * that cycle intended, byte-exact, each producer's records a gap-free
 * prefix of what it appended and no batch cut in two; earlier cycles'
 * records unchanged. Then the parent appends a record of its own (the log
 * continues) and the next cycle's child goes on from there. A fresh log
 * starts every 20 cycles, after a check of the whole log.
 *
 * 300 cycles per run; `DURAWAL_RELIABILITY=full` runs 20,000 (hours);
 * `DURAWAL_CRASH_CYCLES` sets the count; `DURAWAL_SEED` replays a run.
 */
import test from 'ava'
import { type SyncPolicy, Wal, type WalOptions } from '../ts/index'
import {
  type ChildConfig,
  makeRecord,
  PARENT_PRODUCER,
  RECORD_HEADER_SIZE,
  type RecordIdentity,
  readIdentity,
} from './fixtures/crash-child'
import { runCrashLoop } from './helpers/crash-loop'
import { KilledChildren, type KillPlan, PREPARED_FILE, SEGMENT_FILE } from './helpers/kill-child'
import { between, weighted } from './helpers/random'
import { iterations, RUN_SEED } from './helpers/reliability'
import { segmentFiles } from './helpers/wal'

const CYCLES = iterations('DURAWAL_CRASH_CYCLES', { push: 300, full: 20_000 })
const CYCLES_PER_LOG = 20
const PRODUCERS = 16
/** Bytes of a segment that records cannot use (header block, seal, padding): see docs/FORMAT.md. */
const SEGMENT_OVERHEAD = 4176
/** A crash that leaves the newest segment with at most this many records counts as landing at a roll. */
const NEAR_ROLL_RECORDS = 3
/** A child is killed at the latest this long after its log is open. */
const MAX_RUN_MS = 1_500
/** The body of the record the parent appends after each reopen. */
const PARENT_BODY = 100

/** The parent's model of one log, across the cycles that write it. */
interface LogModel {
  /** Identity key of each LSN checked so far (index = LSN). */
  history: string[]
  /** Identity key acknowledged at each LSN (by an `A` report or the parent's own append). */
  acknowledged: Map<number, string>
  /** Every LSN up to this one was acknowledged (a sync resolved with it, or a write at it). */
  acknowledgedThrough: number
  /** LSNs 1..verifiedThrough were checked at a reopen: the log never ends before it again. */
  verifiedThrough: number
  /** How long the last child's `Wal.open` took: kills inside open are drawn below it. */
  lastOpenMs: number
}

/** What one child reported. */
interface ChildReports {
  /** Identity of each record a producer meant to append, by `producer:seq`. */
  intents: Map<string, RecordIdentity>
  /** `producer:seq` appended at each LSN (from `L` and `A`). */
  appendedAt: Map<number, string>
  /** `producer:seq` acknowledged at each LSN (from `A`). */
  acknowledgedAt: Map<number, string>
  /** Highest LSN a resolved sync covered (from `D`). */
  syncedThrough: number
}

const keyOf = ({ cycle, producer, seq }: Pick<RecordIdentity, 'cycle' | 'producer' | 'seq'>): string =>
  `${cycle}:${producer}:${seq}`
const sameShape = (a: RecordIdentity, b: RecordIdentity): boolean =>
  a.batchIndex === b.batchIndex && a.batchSize === b.batchSize && a.length === b.length

/** The sync policy, segment size and I/O mode of one cycle. */
function drawOptions(random: () => number): WalOptions {
  const sync = weighted<SyncPolicy>(random, [
    [30, 'always'],
    [25, { intervalMs: between(random, 1, 20) }],
    [20, { bytes: between(random, 1_024, 256 * 1024) }],
    [25, 'none'],
  ])
  const segmentSize = weighted(random, [
    [50, 65_536],
    [20, 131_072],
    [20, 262_144],
    [10, 1 << 20],
  ])
  return { sync, segmentSize, directIo: random() % 10 < 7 ? 'auto' : false }
}

/** When to kill; a third of the kills are aimed at segment rolls, a fifth inside open. */
function drawPlan(random: () => number, lastOpenMs: number): KillPlan {
  switch (
    weighted(random, [
      [30, 'timed'],
      [22, 'after roll'],
      [18, 'before roll'],
      [20, 'in open'],
    ] as const)
  ) {
    case 'timed':
      return { kind: 'timed', delayMs: between(random, 5, 400) }
    case 'after roll':
      // A segment renamed into place: the directory sync, the next preparation, the first acknowledgements in it.
      return {
        kind: 'at-file',
        on: { file: 'segment', event: 'rename', count: between(random, 1, 3) },
        armAfterMs: random() % 150,
        offsetMs: random() % 3,
      }
    case 'before roll':
      // The prepared segment written a second time since it appeared (the first is its zero-fill):
      // the seal and the new segment's header and first records are written, not yet renamed.
      return {
        kind: 'at-file',
        on: { file: PREPARED_FILE, event: 'change', count: 2 },
        armAfterMs: random() % 150,
        offsetMs: random() % 2,
      }
    case 'in open':
      return { kind: 'in-open', delayMs: random() % Math.max(2, Math.ceil(lastOpenMs * 1.5)) }
  }
}

/** Applies one report line of the child; returns a violation, if any. */
function applyReport(reports: ChildReports, cycle: number, line: string): string | undefined {
  const [kind, ...fields] = line.split(' ')
  const numbers = fields.map(Number)
  if (kind === 'D') {
    reports.syncedThrough = Math.max(reports.syncedThrough, numbers[0]!)
    return undefined
  }
  const [producer, seq, third] = numbers as [number, number, number]
  const key = keyOf({ cycle, producer, seq })
  if (kind === 'I') {
    const [batchIndex, batchSize, length] = numbers.slice(2) as [number, number, number]
    reports.intents.set(key, { cycle, producer, seq, batchIndex, batchSize, length })
    return undefined
  }
  if (kind !== 'L' && kind !== 'A') return `unexpected line from the child: ${JSON.stringify(line)}`
  if (!reports.intents.has(key)) return `${line}: no intent was reported for ${key}`
  const earlier = reports.appendedAt.get(third)
  if (earlier !== undefined && earlier !== key) return `LSN ${third} reported for ${key} and for ${earlier}`
  reports.appendedAt.set(third, key)
  if (kind === 'A') reports.acknowledgedAt.set(third, key)
  return undefined
}

/** Figures of the whole run. */
const stats = {
  acknowledged: 0,
  acknowledgedChecks: 0,
  recovered: 0,
  unacknowledgedKept: 0,
  tailsCut: 0,
  nearRoll: 0,
  killedInOpen: 0,
  bigRecords: 0,
  batches: 0,
  kills: new Map<string, number>(),
  policies: new Map<string, number>(),
}
const count = (map: Map<string, number>, key: string): void => {
  map.set(key, (map.get(key) ?? 0) + 1)
}
const listed = (map: Map<string, number>): string => [...map].map(([key, n]) => `${n} ${key}`).join(', ')

/**
 * Checks the reopened log against the model and the child's reports, from
 * LSN `from` on (1 for the whole log); returns the violations.
 */
async function checkRecords(
  wal: Wal,
  model: LogModel,
  reports: ChildReports | undefined,
  cycle: number,
  from: number,
): Promise<string[]> {
  const problems: string[] = []
  const nextSeq = new Map<number, number>()
  let previous: RecordIdentity | undefined
  let expected = from
  try {
    for await (const { lsn, data } of wal.replay({ from })) {
      if (lsn !== expected) problems.push(`replay went from LSN ${expected - 1} to ${lsn}`)
      expected = lsn + 1
      const identity = readIdentity(data)
      const key = identity === null ? 'unreadable' : keyOf(identity)
      const acknowledgedKey = model.acknowledged.get(lsn)
      if (acknowledgedKey !== undefined) {
        stats.acknowledgedChecks++
        if (acknowledgedKey !== key)
          problems.push(`LSN ${lsn} was acknowledged for ${acknowledgedKey} but holds ${key}`)
      }
      if (identity === null || !makeRecord(RUN_SEED, identity).equals(data)) {
        problems.push(`LSN ${lsn} holds ${data.length} bytes no producer wrote (header: ${key})`)
        continue
      }
      if (lsn <= model.verifiedThrough) {
        if (model.history[lsn] !== key) problems.push(`LSN ${lsn} held ${model.history[lsn]} when checked, now ${key}`)
        continue
      }
      model.history[lsn] = key
      const intent = reports?.intents.get(`${cycle}:${identity.producer}:${identity.seq}`)
      if (identity.cycle !== cycle || intent === undefined || !sameShape(intent, identity)) {
        problems.push(`LSN ${lsn} holds ${key}, not a record this cycle's child meant to append`)
        continue
      }
      const appendedKey = reports?.appendedAt.get(lsn)
      if (appendedKey !== undefined && appendedKey !== key) {
        problems.push(`LSN ${lsn} was reported appended for ${appendedKey} but holds ${key}`)
      }
      if (acknowledgedKey === undefined && lsn > model.acknowledgedThrough) stats.unacknowledgedKept++
      const wanted = nextSeq.get(identity.producer) ?? 0
      if (identity.seq !== wanted) {
        problems.push(`LSN ${lsn} holds ${key}; producer ${identity.producer}'s next record was seq ${wanted}`)
      }
      nextSeq.set(identity.producer, identity.seq + 1)
      const continuesBatch =
        previous !== undefined &&
        previous.producer === identity.producer &&
        previous.seq === identity.seq - 1 &&
        previous.batchIndex === identity.batchIndex - 1
      if (identity.batchIndex > 0 && !continuesBatch) problems.push(`LSN ${lsn} holds ${key}, a batch's middle alone`)
      if (identity.batchIndex === 0 && identity.batchSize > 1) stats.batches++
      if (identity.length > 4096) stats.bigRecords++
      previous = identity
    }
  } catch (error) {
    problems.push(`replay from LSN ${from} failed at LSN ${expected}: ${String(error)}`)
  }
  if (expected !== wal.lastLsn + 1)
    problems.push(`replay ended at ${expected - 1}, the log's last LSN is ${wal.lastLsn}`)
  if (previous !== undefined && previous.batchIndex !== previous.batchSize - 1) {
    problems.push(`the log ends inside a batch: record ${previous.batchIndex + 1} of ${previous.batchSize}`)
  }
  return problems
}

/** Checks what open says about the log; returns the violations. */
function checkOpened(wal: Wal, model: LogModel): string[] {
  const problems: string[] = []
  const { firstLsn, lastLsn } = wal
  if (wal.durableLsn !== lastLsn) problems.push(`durable LSN ${wal.durableLsn} after open, last LSN ${lastLsn}`)
  if (firstLsn !== (lastLsn > 0 ? 1 : 0)) problems.push(`first LSN ${firstLsn} with last LSN ${lastLsn}`)
  if (wal.recovery.records !== lastLsn) problems.push(`recovery counted ${wal.recovery.records} records of ${lastLsn}`)
  if (lastLsn < model.verifiedThrough) {
    problems.push(`the log ends at LSN ${lastLsn}; LSNs up to ${model.verifiedThrough} were there before`)
  }
  if (lastLsn < model.acknowledgedThrough) {
    problems.push(`LSN ${model.acknowledgedThrough} was acknowledged; the log ends at ${lastLsn}`)
  }
  return problems
}

/** Appends the parent's record for `cycle` durably and checks where it went; returns the violations. */
async function continueLog(wal: Wal, model: LogModel, cycle: number): Promise<string[]> {
  const identity = { cycle, producer: PARENT_PRODUCER, seq: 0, batchIndex: 0, batchSize: 1, length: PARENT_BODY }
  const expected = wal.lastLsn + 1
  const lsn = await wal.write(makeRecord(RUN_SEED, identity), { durable: true })
  if (lsn !== expected) return [`the parent's append got LSN ${lsn}, not ${expected}`]
  model.history[lsn] = keyOf(identity)
  model.acknowledged.set(lsn, keyOf(identity))
  model.acknowledgedThrough = lsn
  model.verifiedThrough = lsn
  return []
}

test('kill -9 at random moments, at segment rolls and inside recovery never loses an acknowledged write or returns wrong bytes', async (t) => {
  const children = new KilledChildren('crash-child.ts')
  t.teardown(() => children.close())
  await runCrashLoop<LogModel>(t, {
    name: 'crash',
    cycles: CYCLES,
    cyclesPerLog: CYCLES_PER_LOG,
    newModel: () => ({
      history: [],
      acknowledged: new Map(),
      acknowledgedThrough: 0,
      verifiedThrough: 0,
      lastOpenMs: 0,
    }),
    async cycle({ number: cycle, random, dir }, model) {
      const options = drawOptions(random)
      const plan = drawPlan(random, model.lastOpenMs)
      const maxBody = Math.min(48 * 1024, options.segmentSize! - SEGMENT_OVERHEAD - RECORD_HEADER_SIZE)
      const config: ChildConfig = { seed: RUN_SEED, cycle, producers: PRODUCERS, options, maxBody }
      const where = `options ${JSON.stringify(options)}, kill ${JSON.stringify(plan)}`
      count(stats.kills, plan.kind === 'at-file' ? `at ${plan.on.file} ${plan.on.event}` : plan.kind)
      count(stats.policies, typeof options.sync === 'object' ? Object.keys(options.sync)[0]! : options.sync!)

      const reports: ChildReports = {
        intents: new Map(),
        appendedAt: new Map(),
        acknowledgedAt: new Map(),
        syncedThrough: 0,
      }
      const run = await children.run({
        dir,
        config,
        plan,
        maxRunMs: MAX_RUN_MS,
        onLine: (line) => applyReport(reports, cycle, line),
      })
      if (run.failure !== undefined) return [`${run.failure} (${where})`]
      if (run.opened !== undefined) {
        model.lastOpenMs = run.opened.openMs
        if (run.opened.lastLsn !== model.verifiedThrough) {
          return [`the child opened a log ending at ${run.opened.lastLsn}, not ${model.verifiedThrough} (${where})`]
        }
      } else if (run.opening) {
        stats.killedInOpen++
      }
      const problems: string[] = []
      for (const [lsn, key] of reports.acknowledgedAt) {
        const earlier = model.acknowledged.get(lsn)
        if (earlier !== undefined) problems.push(`LSN ${lsn} acknowledged for ${key}, earlier for ${earlier}`)
        model.acknowledged.set(lsn, key)
        model.acknowledgedThrough = Math.max(model.acknowledgedThrough, lsn)
        stats.acknowledged++
      }
      model.acknowledgedThrough = Math.max(model.acknowledgedThrough, reports.syncedThrough)

      let wal: Wal
      try {
        wal = await Wal.open(dir, { ...options, sync: 'always' })
      } catch (error) {
        return [...problems, `reopen refused: ${String(error)} (${where})`]
      }
      try {
        if (wal.recovery.truncatedBytes > 0) stats.tailsCut++
        const newest = segmentFiles(dir).at(-1)
        if (newest !== undefined && SEGMENT_FILE.test(newest)) {
          if (wal.lastLsn - Number.parseInt(newest, 10) + 1 <= NEAR_ROLL_RECORDS) stats.nearRoll++
        }
        problems.push(...checkOpened(wal, model))
        problems.push(...(await checkRecords(wal, model, reports, cycle, model.verifiedThrough + 1)))
        stats.recovered += Math.max(0, wal.lastLsn - model.verifiedThrough)
        if (problems.length === 0) problems.push(...(await continueLog(wal, model, cycle)))
      } finally {
        await wal.close()
      }
      return problems.map((problem) => `${problem} (${where})`)
    },
    async endOfLog(dir, model) {
      const wal = await Wal.open(dir, { segmentSize: 65_536 })
      try {
        const problems = checkOpened(wal, model)
        if (wal.lastLsn !== model.verifiedThrough)
          problems.push(`the log ends at ${wal.lastLsn}, not ${model.verifiedThrough}`)
        return [...problems, ...(await checkRecords(wal, model, undefined, 0, 1))]
      } finally {
        await wal.close()
      }
    },
    summary: () =>
      `kills: ${listed(stats.kills)}; policies: ${listed(stats.policies)}; ` +
      `${stats.acknowledged} records acknowledged by write (${stats.acknowledgedChecks} checks of acknowledged LSNs), ` +
      `${stats.recovered} records recovered (${stats.unacknowledgedKept} past every acknowledgement), ` +
      `${stats.batches} batches, ${stats.bigRecords} records over 4 KiB, ${stats.tailsCut} torn tails cut, ` +
      `${stats.killedInOpen} kills inside Wal.open, ${stats.nearRoll} crashes within ${NEAR_ROLL_RECORDS} records of a roll`,
  })
  if (CYCLES >= 100) {
    t.true(stats.killedInOpen > 0, 'some kills landed inside Wal.open')
    t.true(stats.nearRoll > 0, 'some kills landed at a segment roll')
  }
})
