// Tail latency across processes: a writer process makes records durable one
// at a time (each `await wal.write()` with sync 'always'), a reader in this
// process follows with `Wal.openReadOnly(dir).tail()`, and each record's
// delay is the time the reader got it minus the time the writer's write()
// resolved (both on CLOCK_MONOTONIC, which processes on one machine share).
// A negative delay means the reader had the record before the writer's
// promise resolved (both wait for the same flush).
//
//   node bench/tail-latency.mjs [records=3000]
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Wal } from '../dist/index.mjs'

const records = Number(process.argv[2] ?? 3000)

if (process.argv[2] === '--writer') {
  const [dir, count] = process.argv.slice(3)
  const wal = await Wal.open(dir)
  const acknowledged = []
  for (let i = 0; i < Number(count); i++) {
    const lsn = await wal.write(Buffer.alloc(100, i))
    acknowledged.push(`${lsn} ${process.hrtime.bigint()}`)
    // A writer that pauses now and then, so the reader is caught up and waiting.
    if (i % 10 === 9) await new Promise((resolve) => setTimeout(resolve, 1))
  }
  await wal.close()
  process.stdout.write(`${acknowledged.join('\n')}\n`)
  process.exit(0)
}

const dir = mkdtempSync(join(tmpdir(), 'durawal-tail-latency-'))
const reader = await Wal.openReadOnly(dir)
const delivered = new Map()
const abort = new AbortController()
const following = (async () => {
  for await (const record of reader.tail({ signal: abort.signal })) {
    delivered.set(record.lsn, process.hrtime.bigint())
    if (record.lsn === records) abort.abort()
  }
})()
const writer = spawn(process.execPath, [new URL(import.meta.url).pathname, '--writer', dir, String(records)], {
  stdio: ['ignore', 'pipe', 'inherit'],
})
let output = ''
writer.stdout.on('data', (chunk) => {
  output += chunk
})
await new Promise((resolve) => writer.on('exit', resolve))
await following
await reader.close()
rmSync(dir, { recursive: true, force: true })

const delays = output
  .trim()
  .split('\n')
  .map((line) => {
    const [lsn, at] = line.split(' ')
    return Number(delivered.get(Number(lsn)) - BigInt(at)) / 1000
  })
  .sort((a, b) => a - b)
const at = (q) => delays[Math.min(delays.length - 1, Math.floor(q * delays.length))].toFixed(0)
console.log(`${delays.length} records delivered to a reader in another process`)
console.log(
  `delay from the writer's durable write to the reader's tail, µs: p50 ${at(0.5)}  p90 ${at(0.9)}  p99 ${at(0.99)}  max ${at(1)}`,
)
