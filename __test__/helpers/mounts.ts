/**
 * Filesystems made for a test: a small tmpfs, mounted as root on Linux, to
 * fill up or remount read-only.
 */
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import type { ExecutionContext } from 'ava'
import { tempDir } from './wal'

/** Mounts a tmpfs of `size` (as `mount -o size=` takes it) on a new directory, unmounted after the test. */
export function mountTmpfs(t: ExecutionContext, size: string): string {
  const mountPoint = path.join(tempDir(t, 'durawal-tmpfs-'), 'fs')
  fs.mkdirSync(mountPoint)
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', mountPoint])
  // Teardowns run last first: this runs after the logs' closes and before the directory's removal.
  t.teardown(() => execFileSync('umount', [mountPoint]))
  return mountPoint
}
