// durawal demo: many concurrent producers, every write durable, then a
// replay that checks every record byte for byte.
//
//   npm run demo            (or: node bench/demo.mjs)
//
// 64 async producers each loop on `await wal.write(record)` with sync
// 'always', so every resolved write is on stable storage and concurrent
// writes share one sync (group commit). The run stops at 200,000 records or
// 5 seconds, whichever comes first. The log is then closed, reopened and
// replayed; each record must sit at the LSN its write resolved with and hold
// exactly the bytes its producer wrote. Exits with status 1 otherwise.
//
// `wal.stats().syncs` counts the data syncs the flusher issued, so the
// summary can say how many records one sync made durable on average.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Wal } from '../dist/index.mjs'

const PRODUCERS = 64
const MAX_RECORDS = 200_000
const MAX_MILLISECONDS = 5_000
const RECORD_SIZE = 256

/**
 * The record producer `producer` writes as its `sequence`-th: a readable
 * header, then filler from a small PRNG seeded by both numbers, so the
 * expected bytes can be rebuilt at verification without keeping them.
 */
function makeRecord(producer, sequence) {
  const record = Buffer.alloc(RECORD_SIZE)
  const header = `durawal-demo producer=${producer} seq=${sequence} `
  const headerLength = record.write(header, 0, 'latin1')
  let state = (Math.imul(producer + 1, 0x9e3779b1) ^ Math.imul(sequence + 1, 0x85ebca6b)) >>> 0 || 1
  for (let index = headerLength; index < RECORD_SIZE; index++) {
    state ^= state << 13
    state ^= state >>> 17
    state ^= state << 5
    record[index] = state & 0xff
  }
  return record
}

function percentile(sorted, fraction) {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))]
}

const number = (value) => Math.round(value).toLocaleString('en-US')
const milliseconds = (value) => `${value.toFixed(value < 10 ? 2 : 1)} ms`

const dir = mkdtempSync(join(tmpdir(), 'durawal-demo-'))
const failures = []

const wal = await Wal.open(dir, { sync: 'always' })
const ioMode = wal.recovery.ioMode
/** lsn -> [producer, sequence], filled as writes resolve: the oracle for replay. */
const written = new Map()
const latencies = new Float64Array(MAX_RECORDS)
let claimed = 0
let completed = 0
const startedAt = performance.now()
const deadline = startedAt + MAX_MILLISECONDS

async function produce(producer) {
  for (let sequence = 0; claimed < MAX_RECORDS && performance.now() < deadline; sequence++) {
    claimed++
    const record = makeRecord(producer, sequence)
    const before = performance.now()
    const lsn = await wal.write(record)
    latencies[completed++] = performance.now() - before
    if (written.has(lsn)) failures.push(`LSN ${lsn} was returned twice`)
    written.set(lsn, [producer, sequence])
  }
}

await Promise.all(Array.from({ length: PRODUCERS }, (_, producer) => produce(producer)))
const writeSeconds = (performance.now() - startedAt) / 1000
const { syncs } = wal.stats()
await wal.close()

const reopened = await Wal.open(dir)
// Replay speed is timed on a pass of its own so that the checks below, which
// rebuild every record in JavaScript, do not count against it.
const replayStartedAt = performance.now()
let timedRecords = 0
let timedBytes = 0
for await (const { data } of reopened.replay()) {
  timedRecords++
  timedBytes += data.length
}
const replaySeconds = (performance.now() - replayStartedAt) / 1000

let replayed = 0
let previousLsn = reopened.firstLsn - 1
for await (const { lsn, data } of reopened.replay()) {
  replayed++
  if (lsn !== previousLsn + 1) failures.push(`LSN ${lsn} follows ${previousLsn}: not dense`)
  previousLsn = lsn
  const origin = written.get(lsn)
  if (origin === undefined) {
    failures.push(`LSN ${lsn} was never acknowledged to a producer`)
  } else if (!data.equals(makeRecord(origin[0], origin[1]))) {
    failures.push(`LSN ${lsn} (producer ${origin[0]}, seq ${origin[1]}) differs from what was written`)
  }
  if (failures.length > 20) break
}
const { firstLsn, lastLsn } = reopened
await reopened.close()

if (firstLsn !== 1) failures.push(`first LSN is ${firstLsn}, expected 1`)
if (lastLsn !== completed) failures.push(`last LSN is ${lastLsn}, expected ${completed}`)
if (replayed !== completed) failures.push(`replayed ${replayed} records, ${completed} were written`)

const sorted = latencies.subarray(0, completed).sort()
const bytes = completed * RECORD_SIZE
const lines = [
  ['records written', `${number(completed)} x ${RECORD_SIZE} B = ${(bytes / 1e6).toFixed(2)} MB`],
  ['producers', `${PRODUCERS} concurrent, each awaiting write() in a loop`],
  ['sync policy', "'always' (write() resolves once the record is on stable storage)"],
  ['I/O mode', `${ioMode} (${dir})`],
  ['elapsed', `${writeSeconds.toFixed(2)} s`],
  ['durable writes/s', number(completed / writeSeconds)],
  ['throughput', `${(bytes / 1e6 / writeSeconds).toFixed(2)} MB/s`],
  ['data syncs', `${number(syncs)} (${(completed / syncs).toFixed(1)} records per sync: group commit)`],
  ['write latency', `p50 ${milliseconds(percentile(sorted, 0.5))}, p99 ${milliseconds(percentile(sorted, 0.99))}`],
  [
    'replay',
    `${number(timedRecords)} records (${(timedBytes / 1e6).toFixed(2)} MB) in ${(replaySeconds * 1000).toFixed(0)} ms = ${number(timedRecords / replaySeconds)} records/s`,
  ],
]
console.log('durawal demo')
for (const [label, value] of lines) console.log(`  ${label.padEnd(17)} ${value}`)

if (failures.length > 0) {
  console.error(`\nVERIFICATION FAILED (log kept in ${dir}):`)
  for (const failure of failures.slice(0, 20)) console.error(`  ${failure}`)
  process.exit(1)
}
console.log(`  ${'verified'.padEnd(17)} ${number(replayed)} records byte-exact, LSNs 1..${number(lastLsn)} dense`)
rmSync(dir, { recursive: true, force: true })
