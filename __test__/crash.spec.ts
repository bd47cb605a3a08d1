/**
 * Pins the process-crash guarantee (docs/durability.md): a writer killed with
 * SIGKILL at any moment — mid-write, mid-sync, inside a segment roll (seal,
 * new segment synced, renamed, directory synced), or while its own open is
 * still recovering — never loses a write whose promise resolved, never makes
 * reopening fail, and never returns a byte that was not written. Each cycle a
 * child process (fixtures/crash-child.ts) appends with 16 concurrent writers
 * to the same log, reporting each record's intent before it appends and its
 * LSN once `write()` resolves; the parent kills it (at a random time, just
 * before or after a segment roll, or during startup), reopens the log and
 * checks the oracle: dense LSNs from the first, every acknowledged LSN holding
 * exactly the acknowledged bytes, every record one a producer intended in
 * that cycle, each producer's records a gap-free prefix of what it wrote,
 * and earlier cycles' records unchanged. Then the log continues in the next
 * cycle. Sync policies and direct/buffered I/O vary per cycle; segments are
 * 64 KiB so rolls are frequent.
 *
 * Replay a run with DURAWAL_CRASH_SEED=<seed>; DURAWAL_CRASH_CYCLES sets the
 * number of cycles (default 60).
 */
import { spawn } from 'node:child_process'
import { type FSWatcher, mkdtempSync, readdirSync, rmSync, watch } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import test from 'ava'
import { Wal, type WalOptions } from '../ts/index'
import { type ChildConfig, makeRecord, type RecordIdentity, readIdentity, seededRandom } from './fixtures/crash-child'

const SEED =
  process.env.DURAWAL_CRASH_SEED === undefined
    ? Math.floor(Math.random() * 2 ** 32)
    : Number(process.env.DURAWAL_CRASH_SEED)
const CYCLES = Number(process.env.DURAWAL_CRASH_CYCLES ?? 60)
const SEGMENT_SIZE = 65536
const PRODUCERS = 16
/** Every this many cycles (and at the end) the whole log is checked again, not only the new records. */
const FULL_CHECK_EVERY = 10
/** A child that is not ready by then is reported as hung. */
const READY_TIMEOUT_MS = 15_000
const CHILD_SCRIPT = join(__dirname, 'fixtures', 'crash-child.ts')
const SEGMENT_NAME = /^\d{20}\.wal$/
/** The zero-filled file the next segment is prepared in (see crates/durawal/src/format/segment_name.rs). */
const PREPARED_NAME = 'next-segment.tmp'
/** A crash that leaves the newest segment with at most this many records counts as landing at a roll. */
const NEAR_ROLL_RECORDS = 3

const VARIANTS: { name: string; options: WalOptions }[] = [
  { name: "sync 'always'", options: { sync: 'always', segmentSize: SEGMENT_SIZE } },
  { name: 'sync intervalMs 5', options: { sync: { intervalMs: 5 }, segmentSize: SEGMENT_SIZE } },
  { name: "sync 'always', buffered", options: { sync: 'always', segmentSize: SEGMENT_SIZE, directIo: false } },
  {
    name: 'sync intervalMs 5, buffered',
    options: { sync: { intervalMs: 5 }, segmentSize: SEGMENT_SIZE, directIo: false },
  },
]

/** When the parent kills the child. */
type KillPlan =
  /** `delayMs` after the child reported its log open. */
  | { kind: 'timed'; delayMs: number }
  /**
   * `offsetMs` after the `count`-th segment roll (a segment file renamed into
   * place) seen once `armAfterMs` have passed since ready: the directory sync,
   * the next preparation, the first acknowledgements in the new segment.
   */
  | { kind: 'after-roll'; armAfterMs: number; count: number; offsetMs: number }
  /**
   * When the prepared next segment is written to a second time since it was
   * created (the first is its zero-fill), `offsetMs` later: the seal and the
   * new segment's header and first records are written, not yet renamed.
   */
  | { kind: 'before-roll'; armAfterMs: number; offsetMs: number }
  /** `delayMs` after spawn, ready or not: during startup, open and recovery, or the first writes. */
  | { kind: 'startup'; delayMs: number }

function planKill(random: () => number): KillPlan {
  const roll = random() % 100
  if (roll < 35) return { kind: 'timed', delayMs: 10 + (random() % 700) }
  if (roll < 60) {
    return { kind: 'after-roll', armAfterMs: random() % 300, count: 1 + (random() % 3), offsetMs: random() % 3 }
  }
  if (roll < 85) return { kind: 'before-roll', armAfterMs: random() % 300, offsetMs: random() % 2 }
  return { kind: 'startup', delayMs: random() % 900 }
}

/** What the parent learned from one child. */
interface ChildRun {
  ready: boolean
  /** `producer:seq` of every record the child was about to append. */
  intents: Set<string>
  acks: { producer: number; seq: number; lsn: number }[]
  /** Set when the child ended other than by our SIGKILL. */
  failure: string | undefined
}

const keyOf = ({ cycle, producer, seq }: RecordIdentity): string => `${cycle}:${producer}:${seq}`

/** Runs one child on `dir` and kills it as `plan` says; resolves once it is gone and its output read. */
function runChild(dir: string, config: ChildConfig, plan: KillPlan): Promise<ChildRun> {
  const run: ChildRun = { ready: false, intents: new Set(), acks: [], failure: undefined }
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD_SCRIPT, dir], {
    env: { ...process.env, DURAWAL_CRASH_CHILD: JSON.stringify(config) },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const timers: NodeJS.Timeout[] = []
  let watcher: FSWatcher | undefined
  let killed = false
  const kill = (): void => {
    if (killed) return
    killed = true
    child.kill('SIGKILL')
  }
  const after = (ms: number, action: () => void): void => {
    timers.push(setTimeout(action, ms))
  }

  const onReady = (): void => {
    run.ready = true
    if (plan.kind === 'timed') after(plan.delayMs, kill)
    if (plan.kind === 'after-roll' || plan.kind === 'before-roll') {
      after(plan.armAfterMs, () => {
        let rolls = 0
        let preparedWrites = 0
        const killAfter = (ms: number): void => (ms === 0 ? kill() : after(ms, kill))
        watcher = watch(dir, (event, name) => {
          if (name === PREPARED_NAME) {
            preparedWrites = event === 'rename' ? 0 : preparedWrites + 1
            if (plan.kind === 'before-roll' && preparedWrites === 2) killAfter(plan.offsetMs)
          } else if (event === 'rename' && name !== null && SEGMENT_NAME.test(name)) {
            if (plan.kind === 'after-roll' && ++rolls === plan.count) killAfter(plan.offsetMs)
          }
        })
        // Rolls come every few dozen milliseconds while writing; this only guards a stall.
        after(2_000, kill)
      })
    }
  }
  if (plan.kind === 'startup') after(plan.delayMs, kill)
  after(READY_TIMEOUT_MS, () => {
    if (!run.ready) {
      run.failure = `child not ready after ${READY_TIMEOUT_MS} ms`
      kill()
    }
  })

  let partial = ''
  let stderr = ''
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n')
    partial = lines.pop() ?? ''
    for (const line of lines) {
      const [kind, producer, seq, lsn] = line.split(' ')
      if (kind === 'I') run.intents.add(`${producer}:${seq}`)
      else if (kind === 'A') run.acks.push({ producer: Number(producer), seq: Number(seq), lsn: Number(lsn) })
      else if (kind === 'R') onReady()
      else run.failure ??= `unexpected line from child: ${JSON.stringify(line)}`
    }
  })
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (chunk: string) => {
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

/** Counts of oracle violations; all must stay 0. */
interface Violations {
  acknowledgedLost: number
  wrongBytes: number
  holes: number
  neverIntended: number
  prefixBroken: number
  refusedReopens: number
  childFailures: number
}

test('kill -9 at random moments never loses an acknowledged write or returns wrong bytes', async (t) => {
  t.timeout(Math.max(300_000, CYCLES * 4_000))
  const random = seededRandom(SEED)
  const dir = mkdtempSync(join(tmpdir(), 'durawal-crash-'))
  const failures: string[] = []
  const violations: Violations = {
    acknowledgedLost: 0,
    wrongBytes: 0,
    holes: 0,
    neverIntended: 0,
    prefixBroken: 0,
    refusedReopens: 0,
    childFailures: 0,
  }
  const fail = (kind: keyof Violations, cycle: number, message: string): void => {
    violations[kind]++
    if (failures.length < 40) failures.push(`cycle ${cycle}: ${message}`)
  }
  /** Identity key of each LSN checked so far (index = LSN). */
  const history: string[] = []
  /** Identity key acknowledged for each LSN, over all cycles. */
  const acknowledged = new Map<number, string>()
  let highestAcknowledged = 0
  let verifiedThrough = 0
  const stats = {
    cycles: 0,
    acksChecked: 0,
    tailsCut: 0,
    nearRoll: 0,
    unacknowledgedKept: 0,
    kills: new Map<string, number>(),
  }
  const startedAt = Date.now()

  for (let cycle = 1; cycle <= CYCLES; cycle++) {
    const variant = VARIANTS[random() % VARIANTS.length]!
    const plan = planKill(random)
    const config: ChildConfig = { seed: SEED, cycle, producers: PRODUCERS, options: variant.options }
    const run = await runChild(dir, config, plan)
    const where = `${variant.name}, kill ${JSON.stringify(plan)}`
    stats.kills.set(plan.kind, (stats.kills.get(plan.kind) ?? 0) + 1)
    if (run.failure !== undefined) {
      fail('childFailures', cycle, `${run.failure} (${where})`)
      break
    }

    for (const { producer, seq, lsn } of run.acks) {
      const key = keyOf({ cycle, producer, seq })
      const earlier = acknowledged.get(lsn)
      if (earlier !== undefined)
        fail('wrongBytes', cycle, `LSN ${lsn} acknowledged for ${key} but earlier for ${earlier}`)
      acknowledged.set(lsn, key)
      highestAcknowledged = Math.max(highestAcknowledged, lsn)
    }

    let wal: Wal
    try {
      wal = await Wal.open(dir, { segmentSize: SEGMENT_SIZE })
    } catch (error) {
      fail('refusedReopens', cycle, `reopen refused after ${where}: ${String(error)}`)
      break
    }
    try {
      const { firstLsn, lastLsn } = wal
      if (wal.recovery.truncatedBytes > 0) stats.tailsCut++
      const newestSegmentStart = readdirSync(dir)
        .filter((name) => name.endsWith('.wal'))
        .reduce((newest, name) => Math.max(newest, Number.parseInt(name, 10)), 1)
      if (lastLsn - newestSegmentStart + 1 <= NEAR_ROLL_RECORDS) stats.nearRoll++
      if (wal.durableLsn !== lastLsn)
        fail('holes', cycle, `durable LSN ${wal.durableLsn} after open, last LSN ${lastLsn}`)
      if (firstLsn !== (lastLsn > 0 ? 1 : 0)) fail('holes', cycle, `first LSN ${firstLsn} with last LSN ${lastLsn}`)
      if (lastLsn < verifiedThrough) {
        fail(
          'acknowledgedLost',
          cycle,
          `log ends at LSN ${lastLsn}; LSNs up to ${verifiedThrough} were recovered before`,
        )
      }
      if (highestAcknowledged > lastLsn) {
        fail(
          'acknowledgedLost',
          cycle,
          `LSN ${highestAcknowledged} was acknowledged; the log ends at ${lastLsn} (${where})`,
        )
      }

      const fullCheck = cycle % FULL_CHECK_EVERY === 0 || cycle === CYCLES
      const from = fullCheck ? 1 : verifiedThrough + 1
      const nextSeq = new Map<number, number>()
      let expected = from
      try {
        for await (const { lsn, data } of wal.replay({ from })) {
          if (lsn !== expected) fail('holes', cycle, `replay went from LSN ${expected - 1} to ${lsn} (${where})`)
          expected = lsn + 1
          const identity = readIdentity(data)
          const key = identity === null ? 'unreadable' : keyOf(identity)
          const acknowledgedKey = acknowledged.get(lsn)
          if (acknowledgedKey !== undefined) {
            stats.acksChecked++
            if (acknowledgedKey !== key) {
              fail(
                'wrongBytes',
                cycle,
                `LSN ${lsn} was acknowledged for ${acknowledgedKey} but holds ${key} (${where})`,
              )
            }
          }
          if (identity === null || !makeRecord(SEED, identity).equals(data)) {
            fail(
              'wrongBytes',
              cycle,
              `LSN ${lsn} holds ${data.length} bytes no producer wrote (header: ${key}) (${where})`,
            )
            continue
          }
          if (lsn <= verifiedThrough) {
            if (history[lsn] !== key) {
              fail('wrongBytes', cycle, `LSN ${lsn} held ${history[lsn]} when checked before, now ${key}`)
            }
            continue
          }
          history[lsn] = key
          if (identity.cycle !== cycle || !run.intents.has(`${identity.producer}:${identity.seq}`)) {
            fail(
              'neverIntended',
              cycle,
              `LSN ${lsn} holds ${key}, not a record this cycle's child meant to write (${where})`,
            )
            continue
          }
          if (acknowledgedKey === undefined) stats.unacknowledgedKept++
          const wanted = nextSeq.get(identity.producer) ?? 0
          if (identity.seq !== wanted) {
            fail(
              'prefixBroken',
              cycle,
              `LSN ${lsn} holds ${key} but producer ${identity.producer}'s next record was seq ${wanted} (${where})`,
            )
          }
          nextSeq.set(identity.producer, identity.seq + 1)
        }
      } catch (error) {
        fail('holes', cycle, `replay from LSN ${from} failed at LSN ${expected}: ${String(error)} (${where})`)
      }
      if (expected !== lastLsn + 1) {
        fail('holes', cycle, `replay ended at LSN ${expected - 1} but the log's last LSN is ${lastLsn} (${where})`)
      }
      if (wal.recovery.records !== lastLsn) {
        fail('holes', cycle, `recovery counted ${wal.recovery.records} records, last LSN is ${lastLsn}`)
      }
      verifiedThrough = Math.max(verifiedThrough, lastLsn)
    } finally {
      await wal.close()
    }
    stats.cycles = cycle
    if (failures.length >= 40) break
  }

  const kills = [...stats.kills].map(([kind, count]) => `${count} ${kind}`).join(', ')
  t.log(
    `seed ${SEED}: ${stats.cycles} cycles in ${((Date.now() - startedAt) / 1000).toFixed(1)} s (kills: ${kills}); ` +
      `${acknowledged.size} acknowledged records (${stats.acksChecked} checks of acknowledged LSNs), ` +
      `${verifiedThrough} records recovered ` +
      `(${stats.unacknowledgedKept} of them unacknowledged), ${stats.tailsCut} torn tails cut, ` +
      `${stats.nearRoll} crashes within ${NEAR_ROLL_RECORDS} records of a segment roll`,
  )
  const failed = Object.values(violations).some((count) => count > 0)
  if (failed) {
    t.log(`replay with DURAWAL_CRASH_SEED=${SEED}; the log is kept in ${dir}`)
    for (const failure of failures) t.log(failure)
  } else {
    rmSync(dir, { recursive: true, force: true })
  }
  const context = `(seed ${SEED}, DURAWAL_CRASH_SEED=${SEED} to replay)`
  t.is(violations.acknowledgedLost, 0, `acknowledged records lost ${context}`)
  t.is(violations.wrongBytes, 0, `records with wrong bytes ${context}`)
  t.is(violations.holes, 0, `holes or replay failures ${context}`)
  t.is(violations.neverIntended, 0, `records never intended ${context}`)
  t.is(violations.prefixBroken, 0, `records past a missing one ${context}`)
  t.is(violations.refusedReopens, 0, `refused reopens ${context}`)
  t.is(violations.childFailures, 0, `child failures ${context}`)
  t.true(stats.cycles >= Math.min(CYCLES, 50), `only ${stats.cycles} cycles ran ${context}`)
})
