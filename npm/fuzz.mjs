// Runs every cargo-fuzz target of crates/durawal/fuzz for the given number
// of seconds each (default 60: the per-push smoke run), with an allocation
// limit: a single allocation past 64 MiB (a length trusted before it was
// checked) or a process past 2 GiB is a failure, as is a panic, a timeout
// or a disagreement with the reference decoder. Needs the nightly toolchain
// and cargo-fuzz (`.ci/run` installs it).
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const seconds = Number(process.argv[2] ?? 60)
if (!Number.isInteger(seconds) || seconds <= 0) {
  console.error('usage: node npm/fuzz.mjs [seconds per target]')
  process.exit(2)
}
const crate = join(dirname(fileURLToPath(import.meta.url)), '..', 'crates', 'durawal')
const targets = readdirSync(join(crate, 'fuzz', 'fuzz_targets'))
  .filter((name) => name.endsWith('.rs'))
  .map((name) => name.slice(0, -'.rs'.length))
  .sort()
for (const target of targets) {
  console.log(`fuzz: ${target} for ${seconds} s`)
  const run = spawnSync(
    'cargo',
    [
      '+nightly',
      'fuzz',
      'run',
      target,
      '--',
      `-max_total_time=${seconds}`,
      '-malloc_limit_mb=64',
      '-rss_limit_mb=2048',
      '-timeout=10',
    ],
    { cwd: crate, stdio: 'inherit' },
  )
  if (run.status !== 0) {
    console.error(`fuzz: ${target} failed (exit ${run.status ?? run.signal})`)
    process.exit(1)
  }
}
