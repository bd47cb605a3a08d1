// The release tier of the reliability harnesses (../shared/RELIABILITY.md):
// every harness at release scale (DURAWAL_RELIABILITY=full), one after the
// other, then a summary of the figures each printed and how long it took.
// Takes hours; run by hand before a release, and record the summary in
// docs/TESTING.md. `node npm/reliability-full.mjs --only <name>` runs one
// step; FUZZ_SECONDS sets each fuzz target's run (default 3600).
import { spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const fuzzSeconds = process.env.FUZZ_SECONDS ?? '3600'

/** Each step: a name, the command, and the lines of its output that carry its figures. */
const steps = [
  {
    name: 'power-loss (G2)',
    command: ['cargo', 'test', '--release', '-p', 'durawal', '--test', 'power_loss', '--', '--nocapture'],
    figures: /crash states/,
  },
  {
    name: 'corruption matrix (G3)',
    command: ['cargo', 'test', '--release', '-p', 'durawal', '--test', 'corruption_matrix', '--', '--nocapture'],
    figures: /corruption matrix:|variants/,
  },
  {
    name: 'I/O fault matrix (G4, simulated)',
    command: ['cargo', 'test', '--release', '-p', 'durawal', '--test', 'io_fault_matrix', '--', '--nocapture'],
    figures: /I\/O fault matrix:/,
  },
  {
    name: 'kill -9 (G1)',
    command: ['npx', 'ava', '__test__/crash.spec.ts'],
    figures: /cycles in/,
  },
  {
    name: 'kill -9 during truncation',
    command: ['npx', 'ava', '__test__/truncation-crash.spec.ts'],
    figures: /cycles in/,
  },
  {
    name: 'strace faults (G4, real addon)',
    command: ['npx', 'ava', '__test__/syscall-faults.spec.ts'],
    figures: /injection points/,
  },
  {
    name: 'fuzz (G5)',
    command: ['node', 'npm/fuzz.mjs', fuzzSeconds],
    figures: /^fuzz: |DONE/,
  },
]

const only = process.argv.indexOf('--only')
const selected = only >= 0 ? steps.filter((step) => step.name.startsWith(process.argv[only + 1])) : steps
if (selected.length === 0) {
  console.error(`no step named ${process.argv[only + 1]}; steps: ${steps.map((step) => step.name).join(', ')}`)
  process.exit(2)
}

/** Runs a step, echoing its output, and resolves with its exit code and figure lines. */
function run(step) {
  return new Promise((resolve) => {
    const started = Date.now()
    const child = spawn(step.command[0], step.command.slice(1), {
      cwd: root,
      env: { ...process.env, DURAWAL_RELIABILITY: 'full' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const figures = []
    const collect = (stream, sink) => {
      let pending = ''
      stream.on('data', (chunk) => {
        sink.write(chunk)
        pending += chunk
        const lines = pending.split('\n')
        pending = lines.pop()
        figures.push(...lines.filter((line) => step.figures.test(line)))
      })
    }
    collect(child.stdout, process.stdout)
    collect(child.stderr, process.stderr)
    child.on('close', (code, signal) =>
      resolve({ code: code ?? signal, figures, seconds: (Date.now() - started) / 1000 }),
    )
  })
}

const results = []
for (const step of selected) {
  console.log(`\n=== ${step.name}: ${step.command.join(' ')}`)
  results.push({ step, ...(await run(step)) })
}
console.log(`\n=== release tier, ${new Date().toISOString()}`)
for (const { step, code, figures, seconds } of results) {
  console.log(`${step.name}: ${code === 0 ? 'passed' : `FAILED (${code})`} in ${seconds.toFixed(0)} s`)
  for (const line of figures) console.log(`  ${line.trim()}`)
}
process.exit(results.every((result) => result.code === 0) ? 0 : 1)
