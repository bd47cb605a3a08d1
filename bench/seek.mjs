// Seek cost: how long a replay of one record takes from the start, the
// middle and the end of a ~61 MiB segment, with the page cache dropped
// before each run when this process may (root on Linux), else warm.
//
//   node bench/seek.mjs
import { rmSync, writeFileSync } from 'node:fs'
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
for (let i = 0; i < 60_000; i++) {
  wal.append(record)
  if (i % 1000 === 999) await wal.ready()
}
await wal.sync()
await wal.close()
wal = await Wal.open(dir)
const last = wal.lastLsn
console.log(`${last} records of 1000 B in ${wal.recovery.segments} segment(s)`)
for (const [label, from] of [
  ['start', 1],
  ['middle', Math.floor(last / 2)],
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
