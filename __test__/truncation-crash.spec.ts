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
 * The same log goes on across cycles. Replay a run with
 * DURAWAL_TRUNCATION_CRASH_SEED=<seed>; DURAWAL_TRUNCATION_CRASH_CYCLES sets
 * the number of cycles (default 32).
 */
import { spawn } from 'node:child_process'
import { type FSWatcher, mkdtempSync, rmSync, watch } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import test from 'ava'
import { Wal, type WalOptions, type WalRecord } from '../ts'
import { seededRandom } from './fixtures/crash-child'
import { type ChildConfig, makeRecord, type RecordIdentity, readIdentity } from './fixtures/truncation-child'
import { fixture } from './helpers/processes'
import { hasFile, SMALL_SEGMENT } from './helpers/retention'

const SEED =
  process.env.DURAWAL_TRUNCATION_CRASH_SEED === undefined
    ? Math.floor(Math.random() * 2 ** 32)
    : Number(process.env.DURAWAL_TRUNCATION_CRASH_SEED)
const CYCLES = Number(process.env.DURAWAL_TRUNCATION_CRASH_CYCLES ?? 32)
/** A child that reports nothing for this long is hung. */
const READY_TIMEOUT_MS = 15_000
/** A child is killed at the latest this long after it is ready. */
const MAX_RUN_MS = 2_000
const LEFTOVERS = ['TRUNCATE', 'TRUNCATE.tmp', 'HEAD.tmp']

const VARIANTS: { name: string; options: WalOptions }[] = [
  { name: 'direct I/O where possible', options: { segmentSize: SMALL_SEGMENT } },
  { name: 'buffered', options: { segmentSize: SMALL_SEGMENT, directIo: false } },
]

/** When the parent kills the child. */
type KillPlan =
  | { kind: 'timed'; delayMs: number }
  /** `offsetMs` after the `count`-th start of an operation (`b`, `t` or `c` line). */
  | { kind: 'at-operation'; operation: 'b' | 't' | 'C'; count: number; offsetMs: number }
  /** As soon as a control file (or its .tmp) shows up, once `armAfterMs` have passed. */
  | { kind: 'at-file'; file: 'TRUNCATE' | 'TRUNCATE.tmp' | 'HEAD' | 'HEAD.tmp'; armAfterMs: number }

function planKill(random: () => number): KillPlan {
  const roll = random() % 100
  if (roll < 30) return { kind: 'timed', delayMs: 20 + (random() % 500) }
  if (roll < 65) {
    const operation = (['b', 't', 'C'] as const)[random() % 3]!
    return { kind: 'at-operation', operation, count: 1 + (random() % 4), offsetMs: random() % 4 }
  }
  // TRUNCATE twice as often: a kill while it exists is what makes recovery finish a cut.
  const file = (['TRUNCATE', 'TRUNCATE', 'TRUNCATE.tmp', 'HEAD', 'HEAD.tmp'] as const)[random() % 5]!
  return { kind: 'at-file', file, armAfterMs: random() % 150 }
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
    case 'R':
      if (lsn !== model.first || value !== model.last) {
        return `child opened ${lsn}..${value}, the parent's reopen had ${model.first}..${model.last}`
      }
      return undefined
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

/** How one child run went. */
interface ChildRun {
  failure: string | undefined
  operations: Map<string, number>
  /** The operation started and not resolved when the child died, if any. */
  inFlight: string | undefined
}

/** Runs one child on `dir`, feeding its lines to `model`, and kills it as `plan` says. */
function runChild(dir: string, config: ChildConfig, plan: KillPlan, model: Model): Promise<ChildRun> {
  const run: ChildRun = { failure: undefined, operations: new Map(), inFlight: undefined }
  const child = spawn(process.execPath, ['--import', 'tsx', fixture('truncation-child.ts'), dir], {
    env: { ...process.env, DURAWAL_TRUNCATION_CHILD: JSON.stringify(config) },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const timers: NodeJS.Timeout[] = []
  let watcher: FSWatcher | undefined
  let killed = false
  const kill = (): void => {
    if (!killed) {
      killed = true
      child.kill('SIGKILL')
    }
  }
  const after = (ms: number, action: () => void): void => {
    timers.push(setTimeout(action, ms))
  }
  let ready = false
  const onReady = (): void => {
    ready = true
    after(MAX_RUN_MS, kill)
    if (plan.kind === 'timed') after(plan.delayMs, kill)
    if (plan.kind === 'at-file') {
      after(plan.armAfterMs, () => {
        watcher = watch(dir, (_event, name) => {
          if (name === plan.file) kill()
        })
      })
    }
  }
  after(READY_TIMEOUT_MS, () => {
    if (!ready) {
      run.failure = `child not ready after ${READY_TIMEOUT_MS} ms`
      kill()
    }
  })
  const onOperation = (kind: string): void => {
    if (kind === 'b' || kind === 't' || kind === 'C') run.inFlight = kind
    if (kind === 'B' || kind === 'T' || kind === 'K') run.inFlight = undefined
    const count = (run.operations.get(kind) ?? 0) + 1
    run.operations.set(kind, count)
    if (plan.kind === 'at-operation' && kind === plan.operation && count === plan.count) {
      if (plan.offsetMs === 0) kill()
      else after(plan.offsetMs, kill)
    }
  }
  let partial = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n')
    partial = lines.pop() ?? ''
    for (const line of lines) {
      if (line.startsWith('R ')) onReady()
      const violation = applyLine(model, config.cycle, line, onOperation)
      if (violation !== undefined) {
        run.failure ??= violation
        kill()
      }
    }
  })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk
  })
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      for (const timer of timers) clearTimeout(timer)
      watcher?.close()
      if (!killed || signal !== 'SIGKILL') {
        run.failure ??= `child exited by itself (code ${code}, signal ${signal}): ${stderr.trim()}`
      }
      resolve(run)
    })
  })
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
    if (identity === null || identity.lsn !== lsn || !makeRecord(SEED, identity).equals(data)) {
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

test('kill -9 during truncateBefore, truncateAfter and checkpoint leaves a log that opens, whole and byte-exact', async (t) => {
  t.timeout(Math.max(180_000, CYCLES * 5_000))
  t.log(`seed ${SEED} (DURAWAL_TRUNCATION_CRASH_SEED=${SEED} replays this run), ${CYCLES} cycles`)
  const random = seededRandom(SEED)
  const dir = mkdtempSync(join(tmpdir(), 'durawal-truncation-crash-'))
  const model: Model = { latest: new Map(), mustHave: new Map(), firstFloor: 0, headAsked: 0, first: 0, last: 0 }
  const failures: string[] = []
  const stats = {
    cycles: 0,
    cutsInterrupted: 0,
    kills: new Map<string, number>(),
    operations: new Map<string, number>(),
    killedDuring: new Map<string, number>(),
    mostSegments: 0,
  }
  const startedAt = Date.now()

  for (let cycle = 1; cycle <= CYCLES && failures.length === 0; cycle++) {
    const variant = VARIANTS[random() % VARIANTS.length]!
    const plan = planKill(random)
    const where = `cycle ${cycle}, ${variant.name}, kill ${JSON.stringify(plan)}`
    const run = await runChild(dir, { seed: SEED, cycle, options: variant.options }, plan, model)
    if (run.failure !== undefined) {
      failures.push(`${where}: ${run.failure}`)
      break
    }
    const { problems, cutInterrupted, segments } = await reopenAndCheck(dir, variant.options, model)
    stats.mostSegments = Math.max(stats.mostSegments, segments)
    failures.push(...problems.slice(0, 20).map((problem) => `${where}: ${problem}`))
    stats.cycles = cycle
    if (cutInterrupted) stats.cutsInterrupted++
    stats.kills.set(plan.kind, (stats.kills.get(plan.kind) ?? 0) + 1)
    const during = run.inFlight ?? 'writes only'
    stats.killedDuring.set(during, (stats.killedDuring.get(during) ?? 0) + 1)
    for (const [kind, count] of run.operations) stats.operations.set(kind, (stats.operations.get(kind) ?? 0) + count)
  }

  const counts = (map: Map<string, number>): string => [...map].map(([kind, count]) => `${count} ${kind}`).join(', ')
  t.log(
    `${stats.cycles} cycles in ${((Date.now() - startedAt) / 1000).toFixed(1)} s; kills: ${counts(stats.kills)}; ` +
      `child lines: ${counts(stats.operations)}; killed during: ${counts(stats.killedDuring)} ` +
      `(b truncateBefore, t truncateAfter, C checkpoint); ${stats.cutsInterrupted} kills left TRUNCATE; ` +
      `up to ${stats.mostSegments} segments at a reopen; log now ${model.first}..${model.last}`,
  )
  if (failures.length > 0) t.log(`the log is kept in ${dir}`)
  else rmSync(dir, { recursive: true, force: true })
  for (const failure of failures) t.log(failure)
  t.deepEqual(failures, [], `violations (seed ${SEED}; DURAWAL_TRUNCATION_CRASH_SEED=${SEED} to replay)`)
  t.is(stats.cycles, CYCLES)
})
