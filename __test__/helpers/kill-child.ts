/**
 * The children of a kill -9 loop: start one on a log directory, read what
 * it reports line by line, and SIGKILL it at the moment a plan names —
 * a delay after its log is open, a delay inside its `Wal.open` (recovery of
 * what the last kill left), an operation it reports starting, or a change
 * in the log directory (a segment renamed into place, the prepared segment
 * written, a control file appearing).
 *
 * The child side of the protocol is `child-protocol.ts`: the child reads
 * its directory and configuration as one JSON line on stdin, and every line
 * it reports is written with a blocking write before it goes on, so the
 * parent has every report made before the kill. Lines `O` (opening) and
 * `R <firstLsn> <lastLsn> <openMs>` (open) are handled here; the others go
 * to the caller's `onLine`.
 */
import { type ChildProcessByStdio, spawn } from 'node:child_process'
import { type FSWatcher, watch } from 'node:fs'
import type { Readable, Writable } from 'node:stream'
import { fixture, rootDir } from './processes'

/** A segment file's name (see crates/durawal/src/format/segment_name.rs). */
export const SEGMENT_FILE = /^\d{20}\.wal$/
/** The zero-filled file the next segment is prepared in before it is renamed into place. */
export const PREPARED_FILE = 'next-segment.tmp'

/** An event in the log directory, as `fs.watch` reports it. */
export interface FileEvent {
  /** A file name, or `'segment'` for any segment file. */
  file: string
  /**
   * `'rename'`: the name appeared or went (created, renamed, removed);
   * `'change'`: the file was written, counted since its name last appeared or went.
   */
  event: 'rename' | 'change'
  /** The kill follows the `count`-th such event. */
  count: number
}

/** When the parent kills the child. */
export type KillPlan =
  /** `delayMs` after the child reported its log open. */
  | { kind: 'timed'; delayMs: number }
  /** `delayMs` after the child reported that it calls `Wal.open`: inside recovery when open takes longer. */
  | { kind: 'in-open'; delayMs: number }
  /** `offsetMs` after the `count`-th report of kind `line` (its first word; an operation starting). */
  | { kind: 'at-line'; line: string; count: number; offsetMs: number }
  /** `offsetMs` after the event `on`, watched from `armAfterMs` after the log is open. */
  | { kind: 'at-file'; on: FileEvent; armAfterMs: number; offsetMs: number }

/** What `Wal.open` in the child found, from its `R` line. */
export interface Opened {
  firstLsn: number
  lastLsn: number
  /** How long the child's `Wal.open` took. */
  openMs: number
}

/** What one child is to do and how it ends. */
export interface ChildSpec {
  /** The log directory: what the child opens, and what `at-file` plans watch. */
  dir: string
  /** The fixture's own configuration, sent as JSON. */
  config: unknown
  plan: KillPlan
  /** The child is killed at the latest this long after its log is open (a stall guard, not a speed check). */
  maxRunMs: number
  /** Each line other than `O` and `R`; returns a violation (which ends the run) or undefined. */
  onLine: (line: string) => string | undefined
}

/** How one child run went. */
export interface ChildRun {
  /** Set once the child reported `O`. */
  opening: boolean
  /** Set once the child reported `R`. */
  opened: Opened | undefined
  /** Set when the child ended other than by our SIGKILL, hung, or `onLine` reported a violation. */
  failure: string | undefined
}

/** A started child that has not opened its log by then is hung. */
const OPEN_TIMEOUT_MS = 20_000
const TSX_REQUIRE_HOOK = require.resolve('tsx/cjs')

/** Counts the events `on` describes and says when the `count`-th one comes. */
function eventCounter(on: FileEvent): (event: string, name: string | null) => boolean {
  const matches = (name: string): boolean => (on.file === 'segment' ? SEGMENT_FILE.test(name) : name === on.file)
  let seen = 0
  return (event, name) => {
    if (name === null || !matches(name)) return false
    if (on.event === 'change' && event === 'rename') seen = 0
    else if (event === on.event) seen++
    return seen === on.count && event === on.event
  }
}

/** A child process that has loaded its fixture and waits for its `ChildSpec` on stdin. */
class WarmChild {
  readonly process: ChildProcessByStdio<Writable, Readable, Readable>
  stderr = ''
  /** Receives stdout, line by line, once the child is started. */
  onLine: (line: string) => void = (line) => {
    this.early ??= `line before the child was started: ${JSON.stringify(line)}`
  }
  /** Something the child printed before it was started. */
  early: string | undefined
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>

  constructor(fixtureName: string) {
    // `--require tsx/cjs` loads TypeScript in half the time `--import tsx` takes: this runs hundreds of times.
    this.process = spawn(process.execPath, ['--require', TSX_REQUIRE_HOOK, fixture(fixtureName)], {
      cwd: rootDir,
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    let partial = ''
    this.process.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n')
      partial = lines.pop() ?? ''
      for (const line of lines) this.onLine(line)
    })
    this.process.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk
    })
    // A parent that stops writing (it died, or discards the spare) ends a child still waiting.
    this.process.stdin.on('error', () => {})
    this.exited = new Promise((resolve) => this.process.on('close', (code, signal) => resolve({ code, signal })))
  }
}

/**
 * Runs the children of one fixture, one at a time: each is spawned while
 * the one before runs, so that loading Node and the fixture (most of a
 * cycle's time) overlaps the previous cycle instead of adding to it.
 */
export class KilledChildren {
  private spare: WarmChild

  constructor(private readonly fixtureName: string) {
    this.spare = new WarmChild(fixtureName)
  }

  /** Starts a child on `spec` and kills it as `spec.plan` says; resolves once it is gone and its output read. */
  run(spec: ChildSpec): Promise<ChildRun> {
    const child = this.spare
    this.spare = new WarmChild(this.fixtureName)
    return drive(child, spec)
  }

  /** Kills the spare child. */
  close(): void {
    this.spare.process.kill('SIGKILL')
  }
}

function drive(child: WarmChild, spec: ChildSpec): Promise<ChildRun> {
  const { plan } = spec
  const run: ChildRun = { opening: false, opened: undefined, failure: child.early }
  const timers: NodeJS.Timeout[] = []
  let watcher: FSWatcher | undefined
  let killed = false
  const kill = (): void => {
    if (!killed) {
      killed = true
      child.process.kill('SIGKILL')
    }
  }
  const after = (ms: number, action: () => void): void => {
    if (ms <= 0) action()
    else timers.push(setTimeout(action, ms))
  }
  const fail = (message: string): void => {
    run.failure ??= message
    kill()
  }

  const onOpening = (): void => {
    run.opening = true
    if (plan.kind === 'in-open') after(plan.delayMs, kill)
  }
  const onOpened = (opened: Opened): void => {
    run.opened = opened
    after(spec.maxRunMs, kill)
    if (plan.kind === 'timed') after(plan.delayMs, kill)
    if (plan.kind === 'at-file') {
      const counter = eventCounter(plan.on)
      after(plan.armAfterMs, () => {
        watcher = watch(spec.dir, (event, name) => {
          if (counter(event, name)) after(plan.offsetMs, kill)
        })
      })
    }
  }
  let lineCount = 0
  child.onLine = (line) => {
    if (line === 'O') {
      onOpening()
      return
    }
    if (line.startsWith('R ')) {
      const [firstLsn, lastLsn, openMs] = line.slice(2).split(' ').map(Number)
      onOpened({ firstLsn: firstLsn!, lastLsn: lastLsn!, openMs: openMs! })
      return
    }
    if (plan.kind === 'at-line' && line.split(' ', 1)[0] === plan.line && ++lineCount === plan.count) {
      after(plan.offsetMs, kill)
    }
    const violation = spec.onLine(line)
    if (violation !== undefined) fail(violation)
  }
  after(OPEN_TIMEOUT_MS, () => {
    if (run.opened === undefined && !killed) fail(`child did not open its log within ${OPEN_TIMEOUT_MS} ms`)
  })
  child.process.stdin.end(`${JSON.stringify({ dir: spec.dir, config: spec.config })}\n`)

  return child.exited.then(({ code, signal }) => {
    for (const timer of timers) clearTimeout(timer)
    watcher?.close()
    if (!killed || signal !== 'SIGKILL') {
      run.failure ??= `child exited by itself (code ${code}, signal ${signal}): ${child.stderr.trim()}`
    }
    return run
  })
}
