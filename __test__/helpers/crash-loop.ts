/**
 * The loop both kill -9 harnesses run (crash.spec.ts, truncation-crash.spec.ts):
 * cycle after cycle a child writes to a log and is killed, and the parent
 * reopens the log and checks it against its model; the next cycle's child
 * continues the same log. Every `cyclesPerLog` cycles a fresh directory
 * starts, so that the log, and with it the time each open and check takes,
 * stays small however many cycles run.
 *
 * Each cycle draws from its own generator, seeded from the run's seed
 * (`DURAWAL_SEED`) and the cycle's number, so a replay makes the same
 * choices. The first cycle with violations ends the run; its log directory
 * is kept and named in the test log.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ExecutionContext } from 'ava'
import { mix32, seededRandom } from './random'
import { FULL_TIER, REPLAY_HINT, RUN_SEED } from './reliability'

/** What a cycle gets from the loop. */
export interface Cycle {
  /** From 1. */
  number: number
  /** This cycle's generator. */
  random: () => number
  /** The log directory. */
  dir: string
}

/** A kill -9 harness, as the loop runs it. */
export interface CrashLoop<Model> {
  /** Names the harness in temp directory names. */
  name: string
  cycles: number
  /** A fresh log directory every this many cycles. */
  cyclesPerLog: number
  /** The parent's model of a new, empty log. */
  newModel: () => Model
  /** Runs one cycle: a child killed, the log reopened and checked. Returns the violations found. */
  cycle: (cycle: Cycle, model: Model) => Promise<string[]>
  /** A log's last check, before its directory is removed; returns the violations found. */
  endOfLog: (dir: string, model: Model) => Promise<string[]>
  /** What the run did so far, for the test log. */
  summary: () => string
}

/** Violations of one cycle kept in the test log, at most. */
const REPORTED_VIOLATIONS = 30
/** A cycle takes well under this; the test's timeout allows it for every cycle. */
const CYCLE_TIMEOUT_MS = 5_000
/** In the release tier, a progress line every this many cycles (a run takes hours). */
const PROGRESS_EVERY = 1_000

/** Runs `loop` to the end or to its first cycle with violations, then asserts that there were none. */
export async function runCrashLoop<Model>(t: ExecutionContext, loop: CrashLoop<Model>): Promise<void> {
  t.timeout(60_000 + loop.cycles * CYCLE_TIMEOUT_MS)
  const startedAt = Date.now()
  const violations: string[] = []
  let dir: string | undefined
  let model = loop.newModel()
  let cyclesRun = 0
  const endLog = async (): Promise<void> => {
    if (dir === undefined) return
    violations.push(...(await loop.endOfLog(dir, model)).map((violation) => `end of log ${dir}: ${violation}`))
    if (violations.length === 0) rmSync(dir, { recursive: true, force: true })
  }

  for (let number = 1; number <= loop.cycles && violations.length === 0; number++) {
    if ((number - 1) % loop.cyclesPerLog === 0) {
      await endLog()
      if (violations.length > 0) break
      dir = mkdtempSync(join(tmpdir(), `durawal-${loop.name}-`))
      model = loop.newModel()
    }
    const random = seededRandom(mix32(RUN_SEED ^ mix32(number)))
    const found = await loop.cycle({ number, random, dir: dir! }, model)
    violations.push(...found.slice(0, REPORTED_VIOLATIONS).map((violation) => `cycle ${number}: ${violation}`))
    cyclesRun = number
    if (FULL_TIER && number % PROGRESS_EVERY === 0) {
      process.stderr.write(`${loop.name}: ${number}/${loop.cycles} cycles, ${loop.summary()}\n`)
    }
  }
  if (violations.length === 0) await endLog()

  t.log(`${REPLAY_HINT}: ${cyclesRun} cycles in ${((Date.now() - startedAt) / 1000).toFixed(1)} s; ${loop.summary()}`)
  if (violations.length > 0) t.log(`the log is kept in ${dir}`)
  for (const violation of violations) t.log(violation)
  t.deepEqual(violations, [], `violations (${REPLAY_HINT})`)
  t.is(cyclesRun, loop.cycles, 'cycles run')
}
