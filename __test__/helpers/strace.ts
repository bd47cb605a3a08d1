/**
 * Running a child under strace and reading what it did. The fault tests use
 * strace to make chosen system calls of the real addon fail
 * (`-e inject=<syscall>:error=<errno>:when=<n>`), restricted with `-P` to
 * the log's own files so that Node's system calls are left alone, and read
 * the trace (`-f -y -ttt`) to learn which calls failed and what the addon
 * did after. Note that strace counts `when` per thread: `when=2` fails the
 * second matching call of every thread that makes two.
 */
import { execFileSync } from 'node:child_process'

/** One system call from the trace, its unfinished and resumed halves joined. */
export interface TracedCall {
  /** Thread that made it. */
  tid: number
  /** When it started, in seconds since the epoch (strace `-ttt`). */
  time: number
  syscall: string
  /** The arguments as strace printed them. */
  args: string
  /** The descriptor of the first argument, when it is one. */
  fd: number | undefined
  /** Every path in the call: descriptors' paths (`-y`), path arguments, and the path a returned descriptor names. */
  paths: string[]
  /** The OS error it returned (`EIO`), if any. */
  errno: string | undefined
  /** Whether strace made it fail. */
  injected: boolean
}

/** A failure to inject: `syscall` fails with `errno` at its `when`-th call in each thread (and after, when `onward`). */
export interface Injection {
  syscall: string
  errno: string
  when: number
  onward: boolean
}

const LINE = /^(\d+) +(\d+\.\d+) (.*)$/
const UNFINISHED = ' <unfinished ...>'
const RESUMED = /^<\.\.\. (\w+) resumed>(.*)$/
const CALL = /^(\w+)\((.*)\) += (.*)$/

/** Parses the output of `strace -f -y -ttt -qq`. Lines other than system calls (signals, exits) are skipped. */
export function parseTrace(text: string): TracedCall[] {
  const calls: TracedCall[] = []
  const pending = new Map<number, { time: number; start: string }>()
  for (const line of text.split('\n')) {
    const match = LINE.exec(line)
    if (match === null) continue
    const tid = Number(match[1])
    let time = Number(match[2])
    let body = match[3]!
    if (body.endsWith(UNFINISHED)) {
      pending.set(tid, { time, start: body.slice(0, -UNFINISHED.length) })
      continue
    }
    const resumed = RESUMED.exec(body)
    if (resumed !== null) {
      const start = pending.get(tid)
      pending.delete(tid)
      if (start === undefined) continue
      time = start.time
      body = start.start + resumed[2]!
    }
    const call = CALL.exec(body)
    if (call === null) continue
    const [, syscall, args, result] = call as unknown as [string, string, string, string]
    const fd = /^(\d+)</.exec(args)
    const paths = [...`${args} ${result}`.matchAll(/<(\/[^>]*)>|"(\/[^"]*)"/g)].map((found) => found[1] ?? found[2]!)
    calls.push({
      tid,
      time,
      syscall,
      args,
      fd: fd === null ? undefined : Number(fd[1]),
      paths,
      errno: /^-1 (E[A-Z0-9]+)/.exec(result)?.[1],
      injected: result.endsWith('(INJECTED)'),
    })
  }
  return calls
}

/**
 * The strace command that runs a child with `injection` (when given), tracing
 * `syscalls` on `paths` only (the injected call is traced too) into
 * `output`. With `--seccomp-bpf` the kernel stops the child only for those
 * system calls, so Node runs at nearly full speed under it.
 */
export function straceCommand(options: {
  output: string
  syscalls: readonly string[]
  paths?: readonly string[] | undefined
  injection?: Injection | undefined
}): string[] {
  const { output, injection } = options
  const syscalls = new Set(options.syscalls)
  const command = ['strace', '-f', '-qq', '-y', '-ttt', '--seccomp-bpf', '-e', 'signal=none', '-o', output]
  if (injection !== undefined) {
    syscalls.add(injection.syscall)
    const when = `${injection.when}${injection.onward ? '+' : ''}`
    command.push('-e', `inject=${injection.syscall}:error=${injection.errno}:when=${when}`)
  }
  command.push('-e', `trace=${[...syscalls].join(',')}`)
  for (const path of options.paths ?? []) command.push('-P', path)
  return command
}

/** Whether strace can run here (it exists, and ptrace is allowed). */
export function straceWorks(): boolean {
  try {
    execFileSync('strace', ['-qq', '-o', '/dev/null', 'true'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}
