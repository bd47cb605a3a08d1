/**
 * Running test fixtures in other processes and worker threads.
 *
 * Child processes load TypeScript with `node --import tsx`. Worker threads on
 * Node 20 do not inherit `--import` loader hooks, so a worker starts from a
 * tiny CommonJS bootstrap that registers tsx's require hook and then loads the
 * TypeScript fixture.
 */
import { spawn } from 'node:child_process'
import * as path from 'node:path'
import { Worker } from 'node:worker_threads'

/** The package root (where `--import tsx` resolves from). */
export const rootDir = path.resolve(__dirname, '..', '..')

/** Path of a file under `__test__/fixtures`. */
export function fixture(name: string): string {
  return path.join(rootDir, '__test__', 'fixtures', name)
}

/** How a child process ended. */
export interface ChildResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  /** True when it was still running after `timeoutMs` and was killed. */
  timedOut: boolean
}

/** A running child plus a promise of how it ended. */
export interface RunningChild {
  child: ReturnType<typeof spawn>
  result: Promise<ChildResult>
}

/** Options of `startNode` and `runNode`. */
export interface NodeOptions {
  /** A child still running after this long is killed. Default 30 s. */
  timeoutMs?: number
  env?: NodeJS.ProcessEnv
  /** A command that runs node, e.g. `['strace', '-f']`: node and its arguments are appended to it. */
  wrapper?: string[]
  /** Working directory of the child. Default: the package root. */
  cwd?: string
}

/**
 * Starts `node <args>` (by default in the package root). A child still running
 * after `timeoutMs` is killed and reported as `timedOut` (a hang guard, not a
 * speed check).
 */
export function startNode(args: string[], options: NodeOptions = {}): RunningChild {
  const [command, ...wrapperArgs] = [...(options.wrapper ?? []), process.execPath]
  const child = spawn(command!, [...wrapperArgs, ...args], {
    cwd: options.cwd ?? rootDir,
    env: options.env ?? process.env,
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk
  })
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk
  })
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    child.kill('SIGKILL')
  }, options.timeoutMs ?? 30_000)
  const result = new Promise<ChildResult>((resolve, reject) => {
    child.on('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr, timedOut })
    })
  })
  return { child, result }
}

/** Runs `node <args>` to completion. */
export function runNode(args: string[], options: NodeOptions = {}): Promise<ChildResult> {
  return startNode(args, options).result
}

/** Runs a TypeScript fixture in a child process through tsx. */
export function runTsFixture(name: string, args: string[], options: NodeOptions = {}): Promise<ChildResult> {
  return runNode(['--import', 'tsx', fixture(name), ...args], options)
}

/** Waits until a child has printed a line containing `marker` on stdout. */
export function waitForOutput(child: RunningChild['child'], marker: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = ''
    const onData = (chunk: Buffer | string): void => {
      seen += chunk.toString()
      if (seen.includes(marker)) {
        child.stdout!.off('data', onData)
        resolve()
      }
    }
    child.stdout!.on('data', onData)
    child.once('close', () => reject(new Error(`child ended before printing ${JSON.stringify(marker)}`)))
  })
}

/** Starts a TypeScript fixture in a worker thread. */
export function startTsWorker(name: string, workerData: unknown): Worker {
  const bootstrap = `require(${JSON.stringify(require.resolve('tsx/cjs'))}); require(${JSON.stringify(fixture(name))})`
  return new Worker(bootstrap, { eval: true, workerData })
}
