// Memory under overload: producers faster than the disk, and what
// backpressure does to the process's peak RSS.
//
//   node bench/overload.mjs [--seconds 5] [--case NAME] [--max-buffered BYTES]
//
// Each case runs in a child process of its own (so peak RSS is its own) for
// a fixed time, then reports records appended, records durable and the peak
// RSS (process.resourceUsage().maxRSS):
//   unawaited         write() in a tight loop that never awaits nor yields
//                     (sync 'always'); WAL_BACKPRESSURE rejections are counted
//   unawaited-ready   the same producer, but awaiting wal.ready() before each
//                     write: the way to outrun nothing
//   writers-10000     10,000 concurrent writers looping on await wal.write()
//   baseline          one durable write, then idle: the process without overload
// With the defaults (maxBufferedBytes 16 MiB, bufferLimit 64 MiB) the bytes
// appended and not yet durable stay under 64 MiB, so RSS must stay within a
// baseline plus that plus the writers' own promises and buffers.
// --max-buffered sets maxBufferedBytes (bufferLimit stays 4 times it), to
// compare the peaks with a lower mark.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    case: { type: 'string' },
    child: { type: 'boolean' },
    'max-buffered': { type: 'string' },
  },
})
const SECONDS = Number(args.seconds)
const RECORD = Buffer.alloc(1024, 7)

async function runCase(name) {
  const { Wal } = await import('../dist/index.mjs')
  const dir = mkdtempSync(join(tmpdir(), 'durawal-overload-'))
  const maxBuffered = args['max-buffered']
  const wal = await Wal.open(dir, maxBuffered === undefined ? {} : { maxBufferedBytes: Number(maxBuffered) })
  const deadline = Date.now() + SECONDS * 1000
  let appended = 0
  let refused = 0
  if (name === 'unawaited' || name === 'unawaited-ready') {
    while (Date.now() < deadline) {
      if (name === 'unawaited-ready') await wal.ready()
      for (let i = 0; i < 1000; i++) {
        wal.write(RECORD).then(
          () => {},
          (error) => {
            if (error.code !== 'WAL_BACKPRESSURE') throw error
          },
        )
      }
      appended += 1000
      // The ready() producer yields (in ready()) like a real one; the
      // unawaited one never does, so no flush notice reaches it until the end.
      if (name === 'unawaited-ready') await new Promise((resolve) => setImmediate(resolve))
    }
    try {
      // Count what the limit refused (appends never happened for those).
      refused = appended - wal.lastLsn
    } catch {}
  } else if (name === 'baseline') {
    await wal.write(RECORD)
    appended = 1
    await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000))
  } else if (name === 'writers-10000') {
    await Promise.all(
      Array.from({ length: 10_000 }, async () => {
        while (Date.now() < deadline) {
          await wal.write(RECORD)
          appended++
        }
      }),
    )
  } else {
    throw new Error(`unknown case ${name}`)
  }
  await wal.sync()
  const durable = wal.durableLsn
  await wal.close()
  rmSync(dir, { recursive: true, force: true })
  const peakRssMiB = process.resourceUsage().maxRSS / 1024
  console.log(
    JSON.stringify({ name, seconds: SECONDS, appended, refused, durable, peakRssMiB: Math.round(peakRssMiB) }),
  )
}

if (args.child) {
  await runCase(args.case)
} else {
  const cases = args.case ? [args.case] : ['baseline', 'unawaited', 'unawaited-ready', 'writers-10000']
  const mark = args['max-buffered'] === undefined ? 'default options' : `maxBufferedBytes ${args['max-buffered']}`
  console.log(`durawal overload: each case ${SECONDS} s in its own process, 1 KiB records, ${mark}`)
  console.log('case               appended    refused    durable   peak RSS')
  for (const name of cases) {
    const output = execFileSync(
      process.execPath,
      [
        new URL(import.meta.url).pathname,
        '--child',
        '--case',
        name,
        '--seconds',
        String(SECONDS),
        ...(args['max-buffered'] === undefined ? [] : ['--max-buffered', args['max-buffered']]),
      ],
      { encoding: 'utf8' },
    )
    const result = JSON.parse(output.trim().split('\n').at(-1))
    console.log(
      `${name.padEnd(16)} ${String(result.appended).padStart(10)} ${String(result.refused).padStart(10)} ${String(result.durable).padStart(10)} ${String(result.peakRssMiB).padStart(7)} MiB`,
    )
  }
}
