/**
 * Which failures the strace fault matrix injects (syscall-faults.spec.ts).
 * The sites come from a run of the workload without faults: every system
 * call the addon made on the log's files, by the kind of file it touched.
 * Each case makes one site fail — `-P` limits strace to the paths of that
 * kind — at its `when`-th call in each thread (and every later one, for a
 * failure that stays), with an errno the call can really return.
 */
import { basename, dirname, join } from 'node:path'
import { SEGMENT_FILE } from './kill-child'
import { between } from './random'
import type { Injection, TracedCall } from './strace'

/** A system call the addon makes on one kind of file of the log. */
export interface SyscallSite {
  syscall: string
  /** A file name (`LOCK`, `HEAD.tmp`, ...), `segment` for any segment file, or `directory` for the log's directory. */
  kind: string
  /** The names in the log directory of that kind the run touched (`''` for the directory): strace's `-P` list. */
  files: string[]
  /** The most calls one thread made. */
  perThread: number
}

/** One injection run. */
export interface FaultCase {
  site: SyscallSite
  injection: Injection
}

/** System calls a full or failing disk can make fail with ENOSPC or EDQUOT, besides EIO. */
const ALLOCATING = new Set([
  'pwrite64',
  'pwritev',
  'write',
  'fdatasync',
  'fsync',
  'openat',
  'mkdir',
  'rename',
  'fallocate',
  'ftruncate',
])
/** The sites where a write, a sync or a directory change of log data is made: each gets extra cases per run. */
const DATA_PATH = [
  'pwrite64 segment',
  'fdatasync segment',
  'fsync directory',
  'rename segment',
  'fdatasync next-segment.tmp',
]
/**
 * Calls left out. `execve` is Node's exec of the child (its arguments name
 * the log directory), not the addon's. `close`, because strace fails it by
 * not making it, which leaves the descriptor open, while a kernel releases
 * the descriptor even when close reports an error: no disk fails that way.
 */
const LEFT_OUT = new Set(['execve', 'close'])
/** strace's `-P` matches only the first path of a call with two (`rename`'s source, not its target). */
const ONE_PATH_MATCHED = new Set(['rename', 'link', 'symlink'])

/** What kind of log file `path` is, or undefined when it is not in `dir`. */
export function kindOf(dir: string, path: string): string | undefined {
  if (path === dir) return 'directory'
  if (dirname(path) !== dir) return undefined
  const name = basename(path)
  return SEGMENT_FILE.test(name) ? 'segment' : name
}

/** The sites of `calls` (a run's trace) in the log directory `dir`. */
export function syscallSites(calls: readonly TracedCall[], dir: string): SyscallSite[] {
  const sites = new Map<string, SyscallSite & { counts: Map<number, number> }>()
  for (const call of calls) {
    if (LEFT_OUT.has(call.syscall)) continue
    const matched = ONE_PATH_MATCHED.has(call.syscall) ? call.paths.slice(0, 1) : call.paths
    for (const kind of new Set(matched.map((path) => kindOf(dir, path)))) {
      if (kind === undefined) continue
      const key = `${call.syscall} ${kind}`
      let site = sites.get(key)
      if (site === undefined) {
        site = { syscall: call.syscall, kind, files: [], perThread: 0, counts: new Map() }
        sites.set(key, site)
      }
      for (const path of matched) {
        const file = path === dir ? '' : basename(path)
        if (kindOf(dir, path) === kind && !site.files.includes(file)) site.files.push(file)
      }
      const count = (site.counts.get(call.tid) ?? 0) + 1
      site.counts.set(call.tid, count)
      site.perThread = Math.max(site.perThread, count)
    }
  }
  return [...sites.values()]
    .map(({ counts: _, ...site }) => site)
    .sort((a, b) => `${a.syscall} ${a.kind}`.localeCompare(`${b.syscall} ${b.kind}`))
}

function errnosOf(syscall: string): string[] {
  return ALLOCATING.has(syscall) ? ['EIO', 'ENOSPC', 'EDQUOT'] : ['EIO']
}

/** Distinct `when` points worth trying at a site: its first calls, and one in the middle. */
function whenPoints(site: SyscallSite): number[] {
  return [...new Set([1, 2, Math.ceil(site.perThread / 2), site.perThread])].filter((when) => when <= site.perThread)
}

/**
 * The cases of one run. The per-push tier takes every site once, and three
 * more cases at each data-path site, each with a `when`, errno and
 * persistence drawn from `random` (`when` from the first half of the calls
 * a thread made, so that it is reached); the full tier takes every site at
 * every `when` point with every errno, once and from then on.
 */
export function chooseCases(sites: readonly SyscallSite[], random: () => number, full: boolean): FaultCase[] {
  if (full) {
    return sites.flatMap((site) =>
      whenPoints(site).flatMap((when) =>
        errnosOf(site.syscall).flatMap((errno) =>
          [false, true].map((onward) => ({ site, injection: { syscall: site.syscall, errno, when, onward } })),
        ),
      ),
    )
  }
  const draw = (site: SyscallSite): FaultCase => {
    const errnos = errnosOf(site.syscall)
    const injection = {
      syscall: site.syscall,
      errno: errnos[random() % errnos.length]!,
      when: between(random, 1, Math.ceil(site.perThread / 2)),
      onward: random() % 4 === 0,
    }
    return { site, injection }
  }
  const dataPath = sites.filter((site) => DATA_PATH.includes(`${site.syscall} ${site.kind}`))
  return [...sites.map(draw), ...dataPath.flatMap((site) => [draw(site), draw(site), draw(site)])]
}

/** The paths strace is to watch for `site` in the log directory `dir`. */
export function sitePaths(site: SyscallSite, dir: string): string[] {
  return site.files.map((file) => (file === '' ? dir : join(dir, file)))
}

/** How a case is named in messages: what fails, where, when, and how. */
export function describeCase({ site, injection }: FaultCase): string {
  const when = `${injection.when}${injection.onward ? '+' : ''}`
  return `${injection.syscall} on ${site.kind} fails with ${injection.errno} at call ${when} of each thread`
}
