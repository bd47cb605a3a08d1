// Seek cost: how long a replay of one record takes from the start, the
// middle and the end of a full 64 MiB segment (the log's segments grow to
// that size, so the log is filled until it has one), with the page cache
// dropped before each run when this process may (root on Linux), else warm.
//
//   node bench/seek.mjs
import { readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Wal } from '../dist/index.mjs'

const dir = join(tmpdir(), `durawal-seek-${process.pid}`)
rmSync(dir, { recursive: true, force: true })

function dropCaches() {
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3')
    return true
  } catch {
    return false
  }
}

let wal = await Wal.open(dir)
const record = Buffer.alloc(1000, 3)
// Segments of 1, 2, 4, ... 32 MiB hold the first 63 MiB; then one of 64 MiB.
for (let i = 0; i < 135_000; i++) {
  wal.append(record)
  if (i % 1000 === 999) await wal.ready()
}
await wal.sync()
await wal.close()
const starts = readdirSync(dir)
  .filter((name) => /^\d{20}\.wal$/.test(name))
  .map((name) => ({ first: Number(name.slice(0, 20)), size: statSync(join(dir, name)).size }))
  .sort((a, b) => a.first - b.first)
const full = starts.findIndex(({ size }) => size === 64 << 20)
if (full < 0 || full + 1 >= starts.length) throw new Error('no sealed 64 MiB segment was written')
const first = starts[full].first
const last = starts[full + 1].first - 1
wal = await Wal.open(dir)
console.log(`the 64 MiB segment holds LSNs ${first} to ${last} (1000 B records)`)
for (const [label, from] of [
  ['start', first],
  ['middle', Math.floor((first + last) / 2)],
  ['end', last - 10],
]) {
  const times = []
  let cold = true
  for (let run = 0; run < 5; run++) {
    cold = dropCaches() && cold
    const started = process.hrtime.bigint()
    for await (const { lsn } of wal.replay({ from, to: from })) {
      if (lsn !== from) throw new Error(`replay from ${from} began at ${lsn}`)
    }
    times.push(Number(process.hrtime.bigint() - started) / 1e6)
  }
  times.sort((a, b) => a - b)
  console.log(
    `one record from the ${label} (LSN ${from}): median ${times[2].toFixed(2)} ms, min ${times[0].toFixed(2)}, max ${times[4].toFixed(2)} (${cold ? 'cold' : 'warm'} cache)`,
  )
}
await wal.close()
rmSync(dir, { recursive: true, force: true })
