/**
 * Pins what a failing disk does to the real addon (G4 in
 * shared/RELIABILITY.md, the half through the real binary): every system
 * call the addon makes on the log's files is made to fail, one site at a
 * time, under `strace -e inject=<syscall>:error=<errno>:when=<n>` with `-P`
 * naming only the files of that site, while a child process
 * (fixtures/fault-workload.ts) opens a log, writes from several producers
 * across segment rolls, appends a batch, checkpoints, truncates at both
 * ends, replays, closes, and opens the log again.
 *
 * The sites are not listed by hand: a first run without faults is traced,
 * and every (system call, kind of file) pair it shows is a site — so a
 * system call the addon starts making is covered without a change here.
 * Each case must satisfy fault-oracle.ts (no hang; every error caused by the
 * injected failure; poisoned after a failed write or sync; fdatasync never
 * retried; no failure of log data swallowed), and a reopen without strace
 * must find a dense log, every record byte-exact and every acknowledged one
 * present. The per-push tier runs each site once plus more cases on the
 * data path, drawn from `DURAWAL_SEED`; `DURAWAL_RELIABILITY=full` runs
 * every site at every `when` point with every errno, once and from then on.
 *
 * strace exists on Linux only; where it is missing the test is skipped and
 * says why, except in CI (`CI=true`), where `.ci/run` installs it and its
 * absence is a failure.
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import test, { type ExecutionContext } from 'ava'
import { Wal } from '../ts'
import { recordFor } from './fixtures/append-forever'
import type { WorkloadReport } from './fixtures/fault-workload'
import {
  chooseCases,
  describeCase,
  type FaultCase,
  type SyscallSite,
  sitePaths,
  syscallSites,
} from './helpers/fault-cases'
import { judgeRun } from './helpers/fault-oracle'
import { fixture, runNode } from './helpers/processes'
import { mix32, seededRandom } from './helpers/random'
import { FULL_TIER, REPLAY_HINT, RUN_SEED } from './helpers/reliability'
import { type Injection, parseTrace, straceCommand, straceWorks, type TracedCall } from './helpers/strace'
import { tempDir } from './helpers/wal'

/** Traced in every case besides the injected call: what the oracle follows a failed descriptor with. */
const FOLLOWED = ['fdatasync', 'pwrite64', 'close', 'openat', 'rename']
/** The first run, without faults, traces every call on a file or descriptor, to find the sites. */
const DISCOVERY = ['%file', '%desc']
/** A child still running after this long is hung (the workload takes a few seconds). */
const CASE_TIMEOUT_MS = 90_000
/** Cases whose failure actually happened, at least (G4's figure for the real binary). */
const MIN_INJECTED_CASES = 40
const TSX_REQUIRE_HOOK = require.resolve('tsx/cjs')

/** Runs the workload on a fresh log under strace; returns the log directory, the report and the trace. */
async function runWorkload(
  t: ExecutionContext,
  traced: { syscalls: readonly string[]; site?: SyscallSite; injection?: Injection },
): Promise<{ dir: string; report: WorkloadReport | undefined; calls: TracedCall[]; failure: string | undefined }> {
  // strace compares -P with resolved paths.
  const dir = path.join(fs.realpathSync(tempDir(t, 'durawal-faults-')), 'log')
  const output = path.join(path.dirname(dir), 'strace.out')
  const paths = traced.site === undefined ? undefined : sitePaths(traced.site, dir)
  const wrapper = straceCommand({ output, syscalls: traced.syscalls, paths, injection: traced.injection })
  const child = await runNode(['--require', TSX_REQUIRE_HOOK, fixture('fault-workload.ts'), dir], {
    wrapper,
    timeoutMs: CASE_TIMEOUT_MS,
  })
  const calls = fs.existsSync(output) ? parseTrace(fs.readFileSync(output, 'utf8')) : []
  if (child.timedOut)
    return { dir, report: undefined, calls, failure: `hung: still running after ${CASE_TIMEOUT_MS} ms` }
  if (child.code !== 0) {
    return { dir, report: undefined, calls, failure: `the child failed (code ${child.code}): ${child.stderr.trim()}` }
  }
  return { dir, report: JSON.parse(child.stdout) as WorkloadReport, calls, failure: undefined }
}

/**
 * The LSNs a reopen must find: every acknowledged one and every one a
 * replay returned, unless a truncation started since may have removed it.
 */
function mustHave(report: WorkloadReport): Set<number> {
  const must = new Set<number>()
  for (const step of report.steps) {
    for (const lsn of must) {
      if ((step.step === 'truncateBefore' && lsn < step.lsn!) || (step.step === 'truncateAfter' && lsn > step.lsn!)) {
        must.delete(lsn)
      }
    }
    for (const lsn of step.acked) must.add(lsn)
    if (step.replayed !== undefined && step.errors.length === 0) {
      for (let lsn = step.replayed[0]; lsn <= step.replayed[1]; lsn++) must.add(lsn)
    }
  }
  return must
}

/** Reopens the log without strace: dense, byte-exact, every LSN it must have; returns the violations. */
async function checkReopened(dir: string, report: WorkloadReport): Promise<string[]> {
  let wal: Wal
  try {
    wal = await Wal.open(dir)
  } catch (error) {
    return [`reopen without faults refused: ${String(error)}`]
  }
  const problems: string[] = []
  try {
    let expected = wal.firstLsn
    for await (const { lsn, data } of wal.replay()) {
      if (lsn !== expected) problems.push(`reopened log goes from LSN ${expected - 1} to ${lsn}`)
      if (!recordFor(lsn).equals(data)) problems.push(`reopened log holds wrong bytes at LSN ${lsn}`)
      expected = lsn + 1
    }
    const missing = [...mustHave(report)].filter((lsn) => lsn < wal.firstLsn || lsn > wal.lastLsn)
    if (missing.length > 0) {
      problems.push(`reopened log (${wal.firstLsn}..${wal.lastLsn}) lacks acknowledged LSNs ${missing.join(', ')}`)
    }
    if (wal.lastLsn > report.lastAppended) {
      problems.push(`reopened log ends at ${wal.lastLsn}; only ${report.lastAppended} were appended`)
    }
  } finally {
    await wal.close()
  }
  return problems
}

const title =
  'every system call the addon makes on the log fails in turn under strace: no hang, nothing unacknowledged lost, poisoned after a failed write or sync, fdatasync never retried, failures reported'

if (process.platform === 'linux' && (straceWorks() || process.env.CI === 'true')) {
  test(title, async (t) => {
    t.true(straceWorks(), 'strace runs (.ci/run installs it; CI must not skip this test)')
    const discovery = await runWorkload(t, { syscalls: DISCOVERY })
    t.is(discovery.failure, undefined, 'the workload runs under strace without faults')
    const sites = syscallSites(discovery.calls, discovery.dir)
    t.true(
      sites.length >= 20,
      `sites found in the traced run: ${sites.map((s) => `${s.syscall} ${s.kind}`).join(', ')}`,
    )
    const cases = chooseCases(sites, seededRandom(mix32(RUN_SEED ^ 0x5ca1ab1e)), FULL_TIER)
    t.timeout(60_000 + cases.length * 30_000)

    const problems: string[] = []
    const hitSites = new Set<string>()
    let injectedCases = 0
    let failedSyncs = 0
    const startedAt = Date.now()
    for (const faultCase of cases) {
      const found = await runCase(t, faultCase)
      if (found.injected > 0) {
        injectedCases++
        hitSites.add(`${faultCase.site.syscall} ${faultCase.site.kind}`)
      }
      failedSyncs += found.failedSyncs
      problems.push(...found.problems.slice(0, 10).map((problem) => `${describeCase(faultCase)}: ${problem}`))
    }

    const missed = sites.filter((site) => !hitSites.has(`${site.syscall} ${site.kind}`))
    t.log(
      `${REPLAY_HINT}: ${sites.length} sites (${sites.map((site) => `${site.syscall} ${site.kind}`).join(', ')}); ` +
        `${cases.length} injection points run in ` +
        `${((Date.now() - startedAt) / 1000).toFixed(1)} s, ${injectedCases} of them injected a failure; ` +
        `${failedSyncs} failed fdatasyncs followed to their descriptor's close, none retried; ` +
        `sites never reached: ${missed.map((site) => `${site.syscall} ${site.kind}`).join(', ') || 'none'}`,
    )
    for (const problem of problems) t.log(problem)
    t.deepEqual(problems, [], `violations (${REPLAY_HINT})`)
    t.true(injectedCases >= MIN_INJECTED_CASES, `${injectedCases} cases injected a failure`)
  })
} else {
  test.skip(`${title} (skipped: needs Linux and a working strace; CI installs it)`, () => {})
}

/** Runs one case and judges it. */
async function runCase(
  t: ExecutionContext,
  faultCase: FaultCase,
): Promise<{ problems: string[]; injected: number; failedSyncs: number }> {
  const run = await runWorkload(t, { syscalls: FOLLOWED, site: faultCase.site, injection: faultCase.injection })
  const injected = run.calls.filter((call) => call.injected).length
  if (run.report === undefined) return { problems: [run.failure!], injected, failedSyncs: 0 }
  const verdict = judgeRun(run.dir, faultCase, run.report, run.calls)
  return {
    problems: [...verdict.problems, ...(await checkReopened(run.dir, run.report))],
    injected: verdict.injected,
    failedSyncs: verdict.failedSyncs,
  }
}
