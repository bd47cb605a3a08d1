/**
 * What must hold after a system call of the addon failed
 * (docs/durability.md, "How the code keeps it", 2; shared/RELIABILITY.md,
 * rule 3), judged from the workload's report (fixtures/fault-workload.ts)
 * and strace's trace of the run:
 *
 * - every error any call met comes from an injected failure: a `WAL_IO`
 *   naming a file the failing call touched, with the injected errno as its
 *   cause, or a `WAL_POISONED` caused by one; with nothing injected,
 *   nothing fails;
 * - once a write, sync, truncation or close has failed, every later one in
 *   that session rejects with `WAL_POISONED` carrying the same cause, and
 *   acknowledges nothing;
 * - a log file whose write or data sync failed is never synced or written
 *   again through that descriptor, nor renamed into place (fdatasync is
 *   never retried: counted from the trace);
 * - a failure of a call that writes, syncs, reads or lists the log's
 *   segments, control files or directory, or takes its lock, is reported to
 *   the caller, not swallowed (best-effort work — publishing `DURABLE`,
 *   preparing the next segment, which is retried from scratch, metadata and
 *   unlock calls — may absorb one).
 *
 * What the log holds afterwards is checked by reopening it (the spec).
 */
import type { ErrorReport } from '../fixtures/fault-child'
import type { StepName, StepReport, WorkloadReport } from '../fixtures/fault-workload'
import { type FaultCase, kindOf } from './fault-cases'
import type { TracedCall } from './strace'

/** Steps that write, sync or cut the log, or close it: after a failure, each must reject with WAL_POISONED. */
const WRITING_STEPS = new Set<StepName>([
  'writes',
  'batch',
  'checkpoint',
  'truncateBefore',
  'truncateAfter',
  'more writes',
  'close',
  'close after reopen',
])
/** The steps of each session; a fresh open starts unpoisoned. */
const SESSIONS: readonly StepName[][] = [
  ['open', 'writes', 'batch', 'checkpoint', 'truncateBefore', 'truncateAfter', 'more writes', 'replay', 'close'],
  ['reopen', 'replay after reopen', 'close after reopen'],
]
/** Calls whose failure the caller must hear of, on these kinds of file. */
const MUST_REPORT_CALLS = new Set([
  'pwrite64',
  'fdatasync',
  'fsync',
  'rename',
  'unlink',
  'openat',
  'pread64',
  'fadvise64',
  'getdents64',
  'mkdir',
  'flock',
])
const MUST_REPORT_KINDS = new Set(['segment', 'directory', 'LOCK', 'HEAD', 'HEAD.tmp', 'TRUNCATE', 'TRUNCATE.tmp'])
/** Files whose bytes must reach the disk; `DURABLE` is a hint for readers, rewritten in place and never synced. */
const DURABLE_KINDS = new Set(['segment', 'next-segment.tmp', 'HEAD.tmp', 'TRUNCATE.tmp'])

/** The `WAL_IO` behind `error` (itself, or the cause of a `WAL_POISONED`), if that is what it is. */
function ioErrorOf(error: ErrorReport): ErrorReport | undefined {
  const io = error.code === 'WAL_POISONED' ? error.cause : error
  return io?.code === 'WAL_IO' ? io : undefined
}

const describe = (error: ErrorReport | undefined): string =>
  error === undefined ? 'nothing' : `${error.code ?? error.name} (${error.message})`
const sameFailure = (a: ErrorReport, b: ErrorReport): boolean =>
  a.syscall === b.syscall && a.path === b.path && a.cause?.code === b.cause?.code

/** Whether `call` must make some later call in its session fail. */
function mustBeReported(dir: string, call: TracedCall): boolean {
  if (!MUST_REPORT_CALLS.has(call.syscall) || call.args.includes('LOCK_UN')) return false
  return call.paths.some((path) => MUST_REPORT_KINDS.has(kindOf(dir, path) ?? ''))
}

/** Every error of every step comes from an injected failure. */
function checkProvenance(report: WorkloadReport, injected: readonly TracedCall[], errno: string): string[] {
  const problems: string[] = []
  const failedPaths = new Set(injected.flatMap((call) => call.paths))
  for (const step of report.steps) {
    for (const error of step.errors) {
      const io = ioErrorOf(error)
      if (injected.length === 0) problems.push(`${step.step}: ${describe(error)}, but nothing was injected`)
      else if (io === undefined) problems.push(`${step.step}: ${describe(error)}, not WAL_IO or WAL_POISONED by it`)
      else if (io.cause?.code !== errno)
        problems.push(`${step.step}: ${describe(error)}, caused by ${io.cause?.code}, not ${errno}`)
      else if (!failedPaths.has(io.path ?? ''))
        problems.push(`${step.step}: ${describe(error)} names ${io.path}, which no failed call touched`)
    }
  }
  return problems
}

/** Once a writing step failed, every later one in the session rejects with the same WAL_POISONED. */
function checkPoisoning(report: WorkloadReport): string[] {
  const problems: string[] = []
  for (const session of SESSIONS) {
    let poisonedBy: ErrorReport | undefined
    for (const step of report.steps.filter((entry) => session.includes(entry.step))) {
      if (!WRITING_STEPS.has(step.step)) continue
      if (poisonedBy === undefined) {
        const first = step.errors[0]
        if (first !== undefined) poisonedBy = ioErrorOf(first)
        for (const error of step.errors.slice(1)) {
          const io = ioErrorOf(error)
          if (
            error.code !== 'WAL_POISONED' ||
            io === undefined ||
            poisonedBy === undefined ||
            !sameFailure(io, poisonedBy)
          ) {
            problems.push(
              `${step.step}: after ${describe(poisonedBy)}, ${describe(error)} instead of the same WAL_POISONED`,
            )
          }
        }
        continue
      }
      if (step.errors.length === 0) problems.push(`${step.step} succeeded after ${describe(poisonedBy)}`)
      if (step.acked.length > 0)
        problems.push(`${step.step} acknowledged LSNs ${step.acked.join(', ')} after the failure`)
      for (const error of step.errors) {
        const io = ioErrorOf(error)
        if (error.code !== 'WAL_POISONED' || io === undefined || !sameFailure(io, poisonedBy)) {
          problems.push(`${step.step}: ${describe(error)} instead of WAL_POISONED by ${describe(poisonedBy)}`)
        }
      }
    }
  }
  return problems
}

/**
 * After a write or data sync failed on a descriptor, nothing is written or
 * synced through it, and its file is not renamed, until it is closed (and,
 * for a rename, created anew). Returns the violations and how many failed
 * fdatasyncs were followed.
 */
function checkAbandoned(dir: string, calls: readonly TracedCall[]): { problems: string[]; failedSyncs: number } {
  const problems: string[] = []
  let failedSyncs = 0
  for (const [index, failed] of calls.entries()) {
    if (!failed.injected || failed.fd === undefined) continue
    if (failed.syscall !== 'fdatasync' && failed.syscall !== 'pwrite64') continue
    const path = failed.paths[0]
    if (!DURABLE_KINDS.has(kindOf(dir, path ?? '') ?? '')) continue
    if (failed.syscall === 'fdatasync') failedSyncs++
    let open = true
    let named = true
    for (const later of calls.slice(index + 1)) {
      if (later.syscall === 'close' && later.fd === failed.fd) open = false
      if (later.syscall === 'openat' && later.args.includes('O_CREAT') && later.paths.includes(path ?? ''))
        named = false
      const sameFile = open && later.fd === failed.fd
      if (sameFile && (later.syscall === 'fdatasync' || later.syscall === 'pwrite64')) {
        problems.push(`${later.syscall} on fd ${failed.fd} (${path}) after its ${failed.syscall} failed`)
      }
      if (named && later.syscall === 'rename' && later.paths[0] === path) {
        problems.push(`${path} renamed into place after its ${failed.syscall} failed`)
      }
    }
  }
  return { problems, failedSyncs }
}

/** The step `call` happened in, or the first one after it. */
function stepAt(report: WorkloadReport, call: TracedCall): StepReport | undefined {
  const ms = call.time * 1000
  return report.steps.find((step) => ms <= step.endedAt)
}

/** A failure the caller must hear of made some step of its session, from its own on, fail. */
function checkReported(dir: string, report: WorkloadReport, injected: readonly TracedCall[]): string[] {
  const problems: string[] = []
  for (const call of injected.filter((failed) => mustBeReported(dir, failed))) {
    const step = stepAt(report, call)
    if (step === undefined) {
      problems.push(`${call.syscall}(${call.args}) failed after the last step`)
      continue
    }
    const session = SESSIONS.find((names) => names.includes(step.step))!
    const rest = report.steps.slice(report.steps.indexOf(step)).filter((entry) => session.includes(entry.step))
    if (rest.every((entry) => entry.errors.length === 0)) {
      problems.push(`${call.syscall}(${call.args}) failed during ${step.step} and no call of that session heard of it`)
    }
  }
  return problems
}

/** The oracle's findings for one case. */
export interface CaseVerdict {
  problems: string[]
  /** Calls strace made fail. */
  injected: number
  /** Failed fdatasyncs whose descriptor was followed to its close. */
  failedSyncs: number
}

/** Checks one case's run; see the module documentation. */
export function judgeRun(
  dir: string,
  { injection }: FaultCase,
  report: WorkloadReport,
  calls: readonly TracedCall[],
): CaseVerdict {
  const injected = calls.filter((call) => call.injected)
  const abandoned = checkAbandoned(dir, calls)
  const replayedWrong = report.steps.flatMap((step) =>
    (step.wrong ?? []).length > 0 ? [`${step.step} returned wrong records at LSNs ${step.wrong!.join(', ')}`] : [],
  )
  return {
    problems: [
      ...checkProvenance(report, injected, injection.errno),
      ...checkPoisoning(report),
      ...abandoned.problems,
      ...checkReported(dir, report, injected),
      ...replayedWrong,
    ],
    injected: injected.length,
    failedSyncs: abandoned.failedSyncs,
  }
}
