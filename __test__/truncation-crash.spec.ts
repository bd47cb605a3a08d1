/**
 * Pins crash safety of truncateBefore, truncateAfter and checkpoint
 * (docs/FORMAT.md, "Control files"): a child process
 * (fixtures/truncation-child.ts) writes records whose bytes name their LSN
 * and the write that made them, while it truncates the head, cuts the tail
 * back and checkpoints in a loop; the parent kills it with SIGKILL at a
 * seeded random moment (a delay, the start of an operation, or a control
 * file appearing), then reopens the log and checks:
 *
 * - open succeeds in the default recovery and in 'absolute' (first, when a
 *   cut was interrupted: finishing it must not look like damage);
 * - no TRUNCATE, TRUNCATE.tmp or HEAD.tmp is left after open;
 * - LSNs are dense from firstLsn, firstLsn never goes back and never passes
 *   an LSN truncateBefore was asked for;
 * - every record is byte-exact the latest write of its LSN (a rewrite after
 *   a cut is a later write), checkpoint flag included;
 * - every acknowledged record (and every record an earlier reopen found) is
 *   still there unless a truncation started since could have removed it;
 * - lastCheckpoint is the last checkpoint record in the log, or null.
 *
 * The same log goes on across cycles (a fresh one every 16).
 * `DURAWAL_SEED` replays a run; 32 cycles per run, 2,000 with
 * `DURAWAL_RELIABILITY=full`, or `DURAWAL_TRUNCATION_CRASH_CYCLES`.
 */
import test from 'ava'
import { Wal, type WalOptions, type WalRecord } from '../ts'
import { type ChildConfig, makeRecord, type RecordIdentity, readIdentity } from './fixtures/truncation-child'
import { runCrashLoop } from './helpers/crash-loop'
import { KilledChildren, type KillPlan } from './helpers/kill-child'
import { between } from './helpers/random'
import { iterations, RUN_SEED } from './helpers/reliability'
import { hasFile, SMALL_SEGMENT } from './helpers/retention'

const CYCLES = iterations('DURAWAL_TRUNCATION_CRASH_CYCLES', { push: 32, full: 2_000 })
const CYCLES_PER_LOG = 16
/** A child is killed at the latest this long after it is ready. */
const MAX_RUN_MS = 2_000
const LEFTOVERS = ['TRUNCATE', 'TRUNCATE.tmp', 'HEAD.tmp']

const VARIANTS: { name: string; options: WalOptions }[] = [
  { name: 'direct I/O where possible', options: { segmentSize: SMALL_SEGMENT } },
  { name: 'buffered', options: { segmentSize: SMALL_SEGMENT, directIo: false } },
]

function planKill(random: () => number): KillPlan {
  const roll = random() % 100
  if (roll < 30) return { kind: 'timed', delayMs: between(random, 20, 520) }
  if (roll < 65) {
    // b truncateBefore, t truncateAfter, C checkpoint starting.
    const line = (['b', 't', 'C'] as const)[random() % 3]!
    return { kind: 'at-line', line, count: between(random, 1, 4), offsetMs: random() % 4 }
  }
  // TRUNCATE twice as often: a kill while it exists is what makes recovery finish a cut.
  const file = (['TRUNCATE', 'TRUNCATE', 'TRUNCATE.tmp', 'HEAD', 'HEAD.tmp'] as const)[random() % 5]!
  return { kind: 'at-file', on: { file, event: 'rename', count: 1 }, armAfterMs: random() % 150, offsetMs: 0 }
}

/** What the parent knows about the log, across cycles. */
interface Model {
  /** The latest write intended at each LSN, as `makeRecord` identities. */
  latest: Map<number, RecordIdentity>
  /** LSNs that must be present with this write's seq/cycle, unless a truncation started since. */
  mustHave: Map<number, RecordIdentity>
  /** firstLsn can never go below this (the last reopen's, or an acknowledged truncateBefore's result). */
  firstFloor: number
  /** The highest LSN truncateBefore was ever asked for: firstLsn never passes it (nor the last reopen's). */
  headAsked: number
  /** firstLsn and lastLsn at the last reopen. */
  first: number
  last: number
}

const sameWrite = (a: RecordIdentity | undefined, b: RecordIdentity | undefined): boolean =>
  a !== undefined && b !== undefined && a.cycle === b.cycle && a.seq === b.seq && a.checkpoint === b.checkpoint
const describe = (identity: RecordIdentity | undefined | null): string =>
  identity ? `${identity.checkpoint ? 'checkpoint' : 'record'} ${identity.cycle}.${identity.seq}` : 'nothing'

/** Applies one line of the child's output to the model; returns a violation, if any. */
function applyLine(model: Model, cycle: number, line: string, onOperation: (kind: string) => void): string | undefined {
  const [kind, a, b] = line.split(' ')
  const lsn = Number(a)
  const value = Number(b)
  switch (kind) {
    case 'W':
    case 'C':
      model.latest.set(lsn, { lsn, cycle, seq: value, checkpoint: kind === 'C' })
      break
    case 'A':
    case 'K':
      // An ack below a truncateBefore already asked for may be removed by it.
      if (lsn >= model.headAsked) model.mustHave.set(lsn, { lsn, cycle, seq: value, checkpoint: kind === 'K' })
      break
    case 'b':
      model.headAsked = Math.max(model.headAsked, lsn)
      for (const held of model.mustHave.keys()) if (held < lsn) model.mustHave.delete(held)
      break
    case 'B':
      if (value > lsn) return `truncateBefore(${lsn}) resolved with firstLsn ${value}`
      model.firstFloor = Math.max(model.firstFloor, value)
      break
    case 't':
      for (const held of model.mustHave.keys()) if (held > lsn) model.mustHave.delete(held)
      break
    case 'T':
      // The child checks the result against the lastLsn it saw.
      break
    default:
      return `unexpected line from the child: ${JSON.stringify(line)}`
  }
  onOperation(kind!)
  return undefined
}

/** Opens `dir`, or returns why it could not. */
async function tryOpen(dir: string, options: WalOptions): Promise<Wal | string> {
  try {
    return await Wal.open(dir, options)
  } catch (error) {
    return `open with ${JSON.stringify(options)} refused: ${String(error)}`
  }
}

/** First record of `records`, or undefined. */
async function firstOf(records: AsyncIterableIterator<WalRecord>): Promise<number | undefined> {
  for await (const { lsn } of records) return lsn
  return undefined
}

/** Checks the reopened log against the model; returns the violations found and updates the model. */
async function checkLog(wal: Wal, model: Model): Promise<string[]> {
  const problems: string[] = []
  const { firstLsn, lastLsn } = wal
  if (firstLsn < model.firstFloor) problems.push(`firstLsn ${firstLsn} is below ${model.firstFloor}`)
  if (firstLsn > Math.max(model.first, model.headAsked, 1)) {
    problems.push(`firstLsn ${firstLsn} passed every LSN truncateBefore was asked for (${model.headAsked})`)
  }
  const present = new Map<number, RecordIdentity>()
  let replayed = 0
  let expected = firstLsn
  let lastCheckpoint: number | null = null
  for await (const { lsn, data, checkpoint } of wal.replay({ from: 1 })) {
    if (lsn !== expected) problems.push(`replay went from LSN ${expected - 1} to ${lsn}`)
    expected = lsn + 1
    replayed++
    const identity = readIdentity(data)
    const latest = model.latest.get(lsn)
    if (identity === null || identity.lsn !== lsn || !makeRecord(RUN_SEED, identity).equals(data)) {
      problems.push(`LSN ${lsn} holds ${data.length} bytes nobody wrote there (header: ${describe(identity)})`)
    } else if (!sameWrite(identity, latest)) {
      problems.push(`LSN ${lsn} holds ${describe(identity)}, but its latest write was ${describe(latest)}`)
    } else if (checkpoint !== identity.checkpoint) {
      problems.push(`LSN ${lsn} holds ${describe(identity)} but replay says checkpoint: ${checkpoint}`)
    }
    if (identity !== null) present.set(lsn, identity)
    if (checkpoint) lastCheckpoint = lsn
  }
  if (expected !== lastLsn + 1 && lastLsn >= firstLsn) problems.push(`replay ended at ${expected - 1}, not ${lastLsn}`)
  if (wal.recovery.records !== replayed) {
    problems.push(`recovery counted ${wal.recovery.records} records, replay read ${replayed}`)
  }
  for (const [lsn, held] of model.mustHave) {
    if (!sameWrite(present.get(lsn), held)) {
      problems.push(`LSN ${lsn} should hold ${describe(held)} (acknowledged), holds ${describe(present.get(lsn))}`)
    }
  }
  if (wal.lastCheckpoint !== lastCheckpoint) {
    problems.push(`lastCheckpoint is ${wal.lastCheckpoint}, the last checkpoint record is ${lastCheckpoint}`)
  }
  const fromCheckpoint = await firstOf(wal.replay({ fromCheckpoint: true }))
  if (fromCheckpoint !== (lastCheckpoint ?? (firstLsn || undefined))) {
    problems.push(`replay({ fromCheckpoint: true }) starts at ${fromCheckpoint}, lastCheckpoint is ${lastCheckpoint}`)
  }
  // Everything found now is durable: it must stay until a truncation removes it.
  model.mustHave = present
  model.firstFloor = firstLsn
  model.first = firstLsn
  model.last = lastLsn
  return problems
}

/** Reopens after a kill (and a second time in the other recovery mode) and checks; returns the violations. */
async function reopenAndCheck(
  dir: string,
  options: WalOptions,
  model: Model,
): Promise<{ problems: string[]; cutInterrupted: boolean; segments: number }> {
  const cutInterrupted = hasFile(dir, 'TRUNCATE')
  const modes = cutInterrupted ? (['absolute', 'tolerate-tail'] as const) : (['tolerate-tail', 'absolute'] as const)
  const problems: string[] = []
  let segments = 0
  for (const [index, recovery] of modes.entries()) {
    const wal = await tryOpen(dir, { ...options, recovery })
    if (typeof wal === 'string') return { problems: [...problems, wal], cutInterrupted, segments }
    try {
      segments = wal.stats().segments
      const left = LEFTOVERS.filter((name) => hasFile(dir, name))
      if (left.length > 0) problems.push(`left after open in '${recovery}': ${left.join(', ')}`)
      if (index === 0) problems.push(...(await checkLog(wal, model)))
      else if (wal.firstLsn !== model.first || wal.lastLsn !== model.last) {
        problems.push(`'${recovery}' reopen found ${wal.firstLsn}..${wal.lastLsn}, not ${model.first}..${model.last}`)
      }
    } finally {
      await wal.close()
    }
  }
  return { problems, cutInterrupted, segments }
}

const newModel = (): Model => ({
  latest: new Map(),
  mustHave: new Map(),
  firstFloor: 0,
  headAsked: 0,
  first: 0,
  last: 0,
})

/** Figures of the whole run. */
const stats = {
  cutsInterrupted: 0,
  kills: new Map<string, number>(),
  operations: new Map<string, number>(),
  killedDuring: new Map<string, number>(),
  mostSegments: 0,
}
const count = (map: Map<string, number>, key: string, add = 1): void => {
  map.set(key, (map.get(key) ?? 0) + add)
}
const listed = (map: Map<string, number>): string => [...map].map(([kind, n]) => `${n} ${kind}`).join(', ')

test('kill -9 during truncateBefore, truncateAfter and checkpoint leaves a log that opens, whole and byte-exact', async (t) => {
  const children = new KilledChildren('truncation-child.ts')
  t.teardown(() => children.close())
  await runCrashLoop<Model>(t, {
    name: 'truncation-crash',
    cycles: CYCLES,
    cyclesPerLog: CYCLES_PER_LOG,
    newModel,
    async cycle({ number: cycle, random, dir }, model) {
      const variant = VARIANTS[random() % VARIANTS.length]!
      const plan = planKill(random)
      const where = `${variant.name}, kill ${JSON.stringify(plan)}`
      const config: ChildConfig = { seed: RUN_SEED, cycle, options: variant.options }
      /** The operation started and not resolved when the child died, if any. */
      let inFlight: string | undefined
      const run = await children.run({
        dir,
        config,
        plan,
        maxRunMs: MAX_RUN_MS,
        onLine: (line) =>
          applyLine(model, cycle, line, (kind) => {
            if (kind === 'b' || kind === 't' || kind === 'C') inFlight = kind
            if (kind === 'B' || kind === 'T' || kind === 'K') inFlight = undefined
            count(stats.operations, kind)
          }),
      })
      if (run.failure !== undefined) return [`${run.failure} (${where})`]
      const { opened } = run
      if (opened !== undefined && (opened.firstLsn !== model.first || opened.lastLsn !== model.last)) {
        return [
          `child opened ${opened.firstLsn}..${opened.lastLsn}, the parent's reopen had ${model.first}..${model.last}`,
        ]
      }
      const { problems, cutInterrupted, segments } = await reopenAndCheck(dir, variant.options, model)
      stats.mostSegments = Math.max(stats.mostSegments, segments)
      if (cutInterrupted) stats.cutsInterrupted++
      count(stats.kills, plan.kind)
      count(stats.killedDuring, run.opened === undefined ? 'open' : (inFlight ?? 'writes only'))
      return problems.map((problem) => `${problem} (${where})`)
    },
    async endOfLog(dir, model) {
      return (await reopenAndCheck(dir, VARIANTS[0]!.options, model)).problems
    },
    summary: () =>
      `kills: ${listed(stats.kills)}; child lines: ${listed(stats.operations)}; ` +
      `killed during: ${listed(stats.killedDuring)} (b truncateBefore, t truncateAfter, C checkpoint); ` +
      `${stats.cutsInterrupted} kills left TRUNCATE; up to ${stats.mostSegments} segments at a reopen`,
  })
})
