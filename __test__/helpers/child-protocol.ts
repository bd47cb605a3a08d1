/**
 * The child side of a kill -9 loop (`kill-child.ts` is the parent's): how a
 * child reports to the parent that kills it. Each line is written to fd 1
 * with a blocking write before the child goes on, so that whatever the
 * child reported before the kill reaches the parent, and nothing it did is
 * reported late.
 */
import { writeSync } from 'node:fs'
import { Wal, type WalOptions } from '../../ts/index'

/** Writes `line` to fd 1 completely before returning. */
export function report(line: string): void {
  const bytes = Buffer.from(`${line}\n`)
  let written = 0
  while (written < bytes.length) {
    try {
      written += writeSync(1, bytes, written)
    } catch (error) {
      // A non-blocking pipe that is momentarily full: try again.
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error
    }
  }
}

/**
 * Opens the log in `dir`, reporting `O` just before `Wal.open` (a kill from
 * then on until `R` lands in open and its recovery) and `R <firstLsn>
 * <lastLsn> <openMs>` once it is open.
 */
export async function openReported(dir: string, options: WalOptions): Promise<Wal> {
  report('O')
  const started = performance.now()
  const wal = await Wal.open(dir, options)
  report(`R ${wal.firstLsn} ${wal.lastLsn} ${(performance.now() - started).toFixed(1)}`)
  return wal
}

/** What the parent sends a child to start it. */
export interface Start<Config> {
  /** The log directory. */
  dir: string
  config: Config
}

/**
 * Waits for the parent's one JSON line on stdin (the child is spawned ahead
 * of its turn and loads meanwhile); exits quietly when stdin ends first.
 */
function receiveStart<Config>(): Promise<Start<Config>> {
  return new Promise((resolve) => {
    let received = ''
    process.stdin.setEncoding('utf8')
    process.stdin.on('data', (chunk: string) => {
      received += chunk
    })
    process.stdin.on('end', () => {
      if (received.trim() === '') process.exit(0)
      resolve(JSON.parse(received) as Start<Config>)
    })
  })
}

/**
 * Runs a child: waits to be started, then runs `main` until the parent kills
 * it; a failure is reported on stderr with exit code 2 (the parent expects
 * only SIGKILL).
 */
export function runChild<Config>(name: string, main: (start: Start<Config>) => Promise<unknown>): void {
  receiveStart<Config>()
    .then(main)
    .catch((error: unknown) => {
      process.stderr.write(
        `${name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      )
      process.exit(2)
    })
}
