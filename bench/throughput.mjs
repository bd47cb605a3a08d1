// Durable-write throughput: durawal against plain Node file writes + fdatasync.
//
//   npm run bench                               (or: node bench/throughput.mjs)
//   node bench/throughput.mjs --json results.json --duration 3
//
// Every case counts only writes whose promise (or call) returned after the
// record was on stable storage. For each record size (128 B and 4 KiB) it runs:
//   durawal x1    one writer: `await wal.write(record)` in a loop, sync 'always'
//   durawal x64   64 async writers doing the same on one log (group commit)
//   baseline x1   `fs.writeSync` + `fs.fdatasyncSync` per record on a plain file
//   baseline x64  64 async writers, each `await fh.write(record)` then
//                 `await fh.datasync()` on one FileHandle opened with 'a'
// The x64 baseline is what plain Node code does when many requests each want
// their own record durable: there is no group commit, so every record pays
// for its own fdatasync. The writes and syncs run on libuv's default pool of
// 4 threads, as in an application; the kernel may still let concurrent
// fdatasync calls share one journal commit, which this case measures too.
//
// Each case runs for a fixed time after a short unmeasured warm-up, in a
// fresh log or file under os.tmpdir(), so all cases use the same filesystem.
// The table gives records/s, payload MB/s, per-write latency percentiles
// (measured around each await or call), records made durable per data sync
// (durawal's `wal.stats().syncs`; the baseline syncs once per record) and the
// ratio to the baseline with the same record size and writer count. See
// bench/README.md.
import { randomFillSync } from 'node:crypto'
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs'
import { open as openFile } from 'node:fs/promises'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Wal } from '../dist/index.mjs'

const { values: args } = parseArgs({
  options: {
    json: { type: 'string' },
    duration: { type: 'string', default: '3' },
  },
})
const MEASURE_MS = Number(args.duration) * 1000
if (!(MEASURE_MS > 0)) throw new Error(`--duration must be a positive number of seconds; got ${args.duration}`)
const WARMUP_MS = 400
const RECORD_SIZES = [128, 4096]
const MANY_WRITERS = 64

const root = mkdtempSync(join(tmpdir(), 'durawal-bench-'))
let scratchCount = 0
const scratchPath = (name) => join(root, `${name}-${scratchCount++}`)

/**
 * Runs `writers` async loops of `writeOne` until the deadline, first for the
 * warm-up and then measured; returns the latencies, elapsed time and, when
 * `countSyncs` reads a sync counter, the syncs issued while measuring.
 */
async function runAsyncWriters(writers, writeOne, countSyncs) {
  const latencies = []
  let measuring = false
  let deadline = performance.now() + WARMUP_MS
  const loop = async () => {
    while (performance.now() < deadline) {
      const before = performance.now()
      await writeOne()
      if (measuring) latencies.push(performance.now() - before)
    }
  }
  await Promise.all(Array.from({ length: writers }, loop))
  measuring = true
  const syncsBefore = countSyncs?.()
  const startedAt = performance.now()
  deadline = startedAt + MEASURE_MS
  await Promise.all(Array.from({ length: writers }, loop))
  const seconds = (performance.now() - startedAt) / 1000
  return { latencies, seconds, syncs: countSyncs === undefined ? latencies.length : countSyncs() - syncsBefore }
}

async function durawalCase(writers, record) {
  const dir = scratchPath('durawal')
  const wal = await Wal.open(dir, { sync: 'always' })
  try {
    const result = await runAsyncWriters(
      writers,
      () => wal.write(record),
      () => wal.stats().syncs,
    )
    return { ...result, ioMode: wal.recovery.ioMode }
  } finally {
    await wal.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

function baselineSingleCase(record) {
  const path = scratchPath('baseline')
  const fd = openSync(path, 'a')
  try {
    const latencies = []
    const writeOne = () => {
      writeSync(fd, record)
      fdatasyncSync(fd)
    }
    for (const warmupEnd = performance.now() + WARMUP_MS; performance.now() < warmupEnd; ) writeOne()
    const startedAt = performance.now()
    const deadline = startedAt + MEASURE_MS
    while (performance.now() < deadline) {
      const before = performance.now()
      writeOne()
      latencies.push(performance.now() - before)
    }
    return { latencies, seconds: (performance.now() - startedAt) / 1000, syncs: latencies.length }
  } finally {
    closeSync(fd)
    rmSync(path, { force: true })
  }
}

async function baselineManyCase(writers, record) {
  const path = scratchPath('baseline')
  const file = await openFile(path, 'a')
  try {
    return await runAsyncWriters(writers, async () => {
      await file.write(record)
      await file.datasync()
    })
  } finally {
    await file.close()
    rmSync(path, { force: true })
  }
}

function percentile(sorted, fraction) {
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))]
}

function summarize(name, engine, writers, recordSize, { latencies, seconds, syncs }) {
  const sorted = Float64Array.from(latencies).sort()
  const records = latencies.length
  return {
    case: name,
    engine,
    writers,
    recordSize,
    records,
    seconds: Number(seconds.toFixed(3)),
    recordsPerSecond: records / seconds,
    megabytesPerSecond: (records * recordSize) / 1e6 / seconds,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    syncs,
    recordsPerSync: records / syncs,
    ratioToBaseline: 1,
  }
}

const results = []
let ioMode = 'unknown'
const caseCount = RECORD_SIZES.length * 4
console.log(
  `durable-write throughput: ${caseCount} cases of ${MEASURE_MS / 1000} s after ${WARMUP_MS} ms warm-up` +
    ` (about ${Math.ceil((caseCount * (MEASURE_MS + WARMUP_MS)) / 1000)} s), in ${root}` +
    ` (node ${process.version}, ${availableParallelism()} CPUs)`,
)
for (const recordSize of RECORD_SIZES) {
  const record = randomFillSync(Buffer.alloc(recordSize))
  const label = recordSize >= 1024 ? `${recordSize / 1024} KiB` : `${recordSize} B`
  for (const writers of [1, MANY_WRITERS]) {
    const baseline = summarize(
      `baseline x${writers}, ${label}`,
      'baseline',
      writers,
      recordSize,
      writers === 1 ? baselineSingleCase(record) : await baselineManyCase(writers, record),
    )
    const measured = await durawalCase(writers, record)
    ioMode = measured.ioMode
    const durawal = summarize(`durawal x${writers}, ${label}`, 'durawal', writers, recordSize, measured)
    durawal.ratioToBaseline = durawal.recordsPerSecond / baseline.recordsPerSecond
    results.push(durawal, baseline)
  }
}
rmSync(root, { recursive: true, force: true })

const columns = [
  ['case', (row) => row.case, 'left'],
  ['records/s', (row) => Math.round(row.recordsPerSecond).toLocaleString('en-US')],
  ['MB/s', (row) => row.megabytesPerSecond.toFixed(2)],
  ['p50 ms', (row) => row.p50Ms.toFixed(3)],
  ['p99 ms', (row) => row.p99Ms.toFixed(3)],
  ['records/sync', (row) => row.recordsPerSync.toFixed(1)],
  ['vs baseline', (row) => `${row.ratioToBaseline.toFixed(2)}x`],
]
const cells = results.map((row) => columns.map(([, format]) => format(row)))
const widths = columns.map(([title], index) => Math.max(title.length, ...cells.map((line) => line[index].length)))
const formatLine = (line) =>
  line.map((cell, index) => (columns[index][2] === 'left' ? cell.padEnd(widths[index]) : cell.padStart(widths[index])))
console.log(`durawal I/O mode: ${ioMode}; ratio = records/s over the baseline with the same size and writers`)
console.log(formatLine(columns.map(([title]) => title)).join('  '))
console.log(widths.map((width) => '-'.repeat(width)).join('  '))
for (const line of cells) console.log(formatLine(line).join('  '))

if (args.json !== undefined) {
  const report = {
    date: new Date().toISOString(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    cpus: availableParallelism(),
    tmpdir: tmpdir(),
    durawalIoMode: ioMode,
    measureSeconds: MEASURE_MS / 1000,
    warmupSeconds: WARMUP_MS / 1000,
    results,
  }
  writeFileSync(args.json, `${JSON.stringify(report, null, 2)}\n`)
  console.log(`results written to ${args.json}`)
}
