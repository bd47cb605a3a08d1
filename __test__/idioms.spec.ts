/**
 * Pins the Node idioms of the API: an `AbortSignal` stops a wait in `sync`,
 * `write` and `ready` (rejecting with WAL_ABORTED, the signal's reason as
 * cause) without undoing the append; `dir` may be a `file:` URL; replay's
 * range refuses unknown keys like open's options do; and `new Wal()` outside
 * `Wal.open` fails with a message that says what to call instead.
 */
import * as path from 'node:path'
import { pathToFileURL } from 'node:url'
import test from 'ava'
import { Wal } from '../ts'
import { assertWalError, rejectionOf, thrownBy } from './helpers/errors'
import { collect, openWal, payload, tempDir } from './helpers/wal'

test('an aborted signal rejects sync, write and ready with WAL_ABORTED; the records stay appended and become durable', async (t) => {
  const wal = await openWal(t, tempDir(t), { sync: 'none', maxRecordSize: 1000, maxBufferedBytes: 2048 })
  const reason = new Error('caller gave up')

  const before = new AbortController()
  before.abort(reason)
  wal.append(payload(1, 100))
  const early = assertWalError(
    t,
    await rejectionOf(t, wal.sync(1, { signal: before.signal }), 'sync'),
    'WAL_ABORTED',
    'sync',
  )
  t.is(early?.cause, reason, 'the cause is the signal’s reason')

  const during = new AbortController()
  const write = wal.write(payload(2, 100), { durable: true, signal: during.signal })
  during.abort(reason)
  assertWalError(t, await rejectionOf(t, write, 'write'), 'WAL_ABORTED', 'write')

  for (let lsn = 3; lsn <= 5; lsn++) wal.append(payload(lsn, 1000))
  const waiting = new AbortController()
  const ready = wal.ready({ signal: waiting.signal })
  waiting.abort()
  assertWalError(t, await rejectionOf(t, ready, 'ready'), 'WAL_ABORTED', 'ready')

  t.is(await wal.sync(), 5, 'aborting a wait undid nothing')
  t.deepEqual(
    (await collect(wal)).map(({ lsn }) => lsn),
    [1, 2, 3, 4, 5],
  )
  assertWalError(
    t,
    await rejectionOf(t, wal.sync(1, { signal: 'soon' as unknown as AbortSignal }), 'not a signal'),
    'WAL_INVALID_ARGUMENT',
    'not a signal',
  )
})

test('dir may be a file: URL; another URL scheme is refused', async (t) => {
  const dir = path.join(tempDir(t), 'log')
  const wal = await Wal.open(pathToFileURL(dir))
  await wal.write(payload(1, 10))
  await wal.close()
  const reopened = await openWal(t, dir)
  t.is(reopened.lastLsn, 1)
  assertWalError(
    t,
    await rejectionOf(t, Wal.open(new URL('https://example.invalid/log')), 'https URL'),
    'WAL_INVALID_ARGUMENT',
    'https URL',
  )
})

test("replay refuses unknown range keys, like open's options", async (t) => {
  const wal = await openWal(t, tempDir(t))
  await wal.write(payload(1, 10))
  const error = thrownBy(t, () => wal.replay({ from: 1, limit: 10 } as never), 'limit')
  assertWalError(t, error, 'WAL_INVALID_ARGUMENT', 'limit')
  t.regex(String((error as Error).message), /unknown range key 'limit'/)
})

test('new Wal() outside Wal.open fails with a message naming Wal.open', (t) => {
  const Constructor = Wal as unknown as new () => Wal
  const error = thrownBy(t, () => new Constructor(), 'new Wal()')
  assertWalError(t, error, 'WAL_INVALID_ARGUMENT', 'new Wal()')
  t.regex(String((error as Error).message), /Wal\.open/)
})
