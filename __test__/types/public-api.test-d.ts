/**
 * The public surface as users compile against it, pinned: the exported
 * names, every method's and getter's signature and return type, the shapes
 * of the option and result types, the sync policy union (one key, never
 * `{ intervalMs, bytes }`) and the `WalErrorCode` union. Checked by `npm run
 * test:types` against the built declarations (dist/*.d.ts, resolved through
 * the package's exports map) under strict nodenext settings and under the
 * defaults of a bare `tsc --strict` (target ES5, module commonjs); a change to
 * the surface fails the check until the pin here changes with it. Type-only:
 * nothing here runs.
 */

import type { EventEmitter } from 'node:events'
import type { Readable, Writable } from 'node:stream'
import type * as durawal from 'durawal'
import {
  type BatchRange,
  MAX_LSN,
  type ReaderRecoveryInfo,
  type ReadOnlyOptions,
  type ReadStreamOptions,
  type RecoveryInfo,
  type ReplayRange,
  type RetentionOptions,
  type SyncPolicy,
  type TailOptions,
  type WaitOptions,
  Wal,
  WalError,
  type WalErrorCode,
  type WalErrorDetails,
  type WalEvents,
  type WalOptions,
  type WalReader,
  type WalRecord,
  type WalStats,
  type WriteOptions,
  type WriteStreamOptions,
} from 'durawal'
import { expectTypeOf } from 'expect-type'

declare const wal: Wal
declare const dir: string

// The runtime exports, all of them.
expectTypeOf<keyof typeof durawal>().toEqualTypeOf<'MAX_LSN' | 'Wal' | 'WalError'>()
expectTypeOf(MAX_LSN).toEqualTypeOf<number>()

// Wal: created only by Wal.open.
expectTypeOf(Wal.open).toEqualTypeOf<(dir: string | URL, options?: WalOptions) => Promise<Wal>>()
expectTypeOf(Wal.openReadOnly).toEqualTypeOf<(dir: string | URL, options?: ReadOnlyOptions) => Promise<WalReader>>()
expectTypeOf<ReadOnlyOptions>().toEqualTypeOf<{ recovery?: WalOptions['recovery'] }>()
expectTypeOf<keyof WalReader>().toEqualTypeOf<
  | 'recovery'
  | 'replay'
  | 'tail'
  | 'createReadStream'
  | 'firstLsn'
  | 'durableLsn'
  | 'closed'
  | 'close'
  | typeof Symbol.asyncDispose
>()
expectTypeOf<WalReader['recovery']>().toEqualTypeOf<ReaderRecoveryInfo>()
expectTypeOf<ReaderRecoveryInfo>().toEqualTypeOf<Omit<RecoveryInfo, 'ioMode'>>()
expectTypeOf<WalReader['tail']>().toEqualTypeOf<(options?: TailOptions) => AsyncIterableIterator<WalRecord>>()
declare const reader: WalReader
// @ts-expect-error a reader cannot append
reader.append(Buffer.alloc(1))
// @ts-expect-error the constructor is private
new Wal()
// A Wal is an EventEmitter ('drain'); its own members, besides the emitter's:
expectTypeOf<Wal>().toExtend<EventEmitter<WalEvents>>()
expectTypeOf<WalEvents>().toEqualTypeOf<{ drain: [] }>()
expectTypeOf<Exclude<keyof Wal, keyof EventEmitter>>().toEqualTypeOf<
  | 'recovery'
  | 'append'
  | 'appendBatch'
  | 'sync'
  | 'ready'
  | 'write'
  | 'createWriteStream'
  | 'createReadStream'
  | 'replay'
  | 'tail'
  | 'checkpoint'
  | 'lastCheckpoint'
  | 'truncateBefore'
  | 'truncateAfter'
  | 'firstLsn'
  | 'lastLsn'
  | 'durableLsn'
  | 'stats'
  | 'closed'
  | 'close'
  | typeof Symbol.asyncDispose
>()
expectTypeOf<Wal['append']>().toEqualTypeOf<(data: Uint8Array) => number>()
expectTypeOf<Wal['appendBatch']>().toEqualTypeOf<(records: readonly Uint8Array[]) => BatchRange>()
expectTypeOf<Wal['sync']>().toEqualTypeOf<(lsn?: number, options?: WaitOptions) => Promise<number>>()
expectTypeOf<Wal['ready']>().toEqualTypeOf<(options?: WaitOptions) => Promise<void>>()
expectTypeOf<WaitOptions>().toEqualTypeOf<{ signal?: AbortSignal }>()
expectTypeOf<Wal['createWriteStream']>().toEqualTypeOf<(options?: WriteStreamOptions) => Writable>()
expectTypeOf<Wal['createReadStream']>().toEqualTypeOf<(options?: ReadStreamOptions) => Readable>()
expectTypeOf<ReadStreamOptions>().toEqualTypeOf<{
  from?: number
  to?: number
  fromCheckpoint?: boolean
  live?: boolean
}>()
expectTypeOf<Wal['tail']>().toEqualTypeOf<(options?: TailOptions) => AsyncIterableIterator<WalRecord>>()
expectTypeOf<TailOptions>().toEqualTypeOf<{ from?: number; signal?: AbortSignal }>()
expectTypeOf<Wal['checkpoint']>().toEqualTypeOf<(data: Uint8Array, options?: WaitOptions) => Promise<number>>()
expectTypeOf(wal.lastCheckpoint).toEqualTypeOf<number | null>()
expectTypeOf<Wal['truncateBefore']>().toEqualTypeOf<(lsn: number) => Promise<number>>()
expectTypeOf<Wal['truncateAfter']>().toEqualTypeOf<(lsn: number) => Promise<number>>()
expectTypeOf<WriteStreamOptions>().toEqualTypeOf<{ highWaterMark?: number }>()
expectTypeOf<Wal['write']>().toEqualTypeOf<(data: Uint8Array, options?: WriteOptions) => Promise<number>>()
expectTypeOf<Wal['replay']>().toEqualTypeOf<(range?: ReplayRange) => AsyncIterableIterator<WalRecord>>()
expectTypeOf<Wal['stats']>().toEqualTypeOf<() => WalStats>()
expectTypeOf<Wal['close']>().toEqualTypeOf<() => Promise<void>>()
expectTypeOf<Wal[typeof Symbol.asyncDispose]>().toEqualTypeOf<() => Promise<void>>()
expectTypeOf<Wal>().toExtend<AsyncDisposable>()
expectTypeOf(wal.firstLsn).toEqualTypeOf<number>()
expectTypeOf(wal.lastLsn).toEqualTypeOf<number>()
expectTypeOf(wal.durableLsn).toEqualTypeOf<number>()
expectTypeOf(wal.closed).toEqualTypeOf<boolean>()
expectTypeOf(wal.recovery).toEqualTypeOf<RecoveryInfo>()
// @ts-expect-error the getters are read-only
wal.lastLsn = 1
// @ts-expect-error recovery is read-only
wal.recovery = { ...wal.recovery }

// What replay() hands out: an async iterator that is its own iterable, of records.
expectTypeOf(wal.replay()).toExtend<AsyncIterable<WalRecord>>()
expectTypeOf(wal.replay()).toExtend<AsyncIterator<WalRecord>>()
expectTypeOf(wal.replay()[Symbol.asyncIterator]()).toEqualTypeOf<AsyncIterableIterator<WalRecord>>()
expectTypeOf(wal.replay().next()).resolves.toExtend<IteratorResult<WalRecord>>()
expectTypeOf<WalRecord>().toEqualTypeOf<{ lsn: number; data: Buffer; checkpoint: boolean }>()
expectTypeOf<ReplayRange>().toEqualTypeOf<{ from?: number; to?: number; fromCheckpoint?: boolean }>()
wal.replay({ from: 1 })
wal.replay({ to: 10 })
// @ts-expect-error only from and to
wal.replay({ from: 1, limit: 10 })

// Results.
expectTypeOf<BatchRange>().toEqualTypeOf<{ first: number; last: number }>()
expectTypeOf<WalStats>().toEqualTypeOf<{
  syncs: number
  lastLsn: number
  durableLsn: number
  bufferedBytes: number
  segments: number
  bytesOnDisk: number
}>()
expectTypeOf<WriteOptions>().toEqualTypeOf<{ durable?: boolean; signal?: AbortSignal }>()
expectTypeOf<RecoveryInfo>().toEqualTypeOf<{
  segments: number
  records: number
  truncatedBytes: number
  truncatedReason: string | null
  skippedRegions: number
  skippedRecords: number
  removedFiles: string[]
  strayFiles: string[]
  ioMode: 'direct' | 'buffered'
}>()

// Options.
expectTypeOf<WalOptions>().toEqualTypeOf<{
  sync?: SyncPolicy
  segmentSize?: number
  directIo?: 'auto' | boolean
  recovery?: 'tolerate-tail' | 'absolute' | 'point-in-time' | 'skip-corrupted'
  maxRecordSize?: number
  maxBufferedBytes?: number
  bufferLimit?: number
  retention?: RetentionOptions
}>()
expectTypeOf<RetentionOptions>().toEqualTypeOf<{
  bytes?: number
  ageMs?: number
  keepFromCheckpoint?: boolean
  readerLagBytes?: number
}>()
expectTypeOf<SyncPolicy>().toEqualTypeOf<
  'always' | 'none' | { intervalMs: number; bytes?: never } | { bytes: number; intervalMs?: never }
>()
const policies: SyncPolicy[] = ['always', 'none', { intervalMs: 5 }, { bytes: 65_536 }]
Wal.open(dir, { sync: policies[0]!, segmentSize: 1 << 20, directIo: 'auto', recovery: 'absolute', maxRecordSize: 4096 })
Wal.open(dir, { sync: { intervalMs: 10 } })
Wal.open(dir, { sync: { bytes: 1 << 20 } })
// @ts-expect-error a sync policy has one key: intervalMs or bytes, not both
const both: SyncPolicy = { intervalMs: 5, bytes: 65_536 }
// @ts-expect-error not both in Wal.open's options either
Wal.open(dir, { sync: { intervalMs: 5, bytes: 65_536 } })
// @ts-expect-error an object policy needs its key
Wal.open(dir, { sync: {} })
// @ts-expect-error 'interval' is the native name, not an option value
Wal.open(dir, { sync: 'interval' })
// @ts-expect-error unknown options do not compile
Wal.open(dir, { segmentSizeBytes: 1 << 20 })
// @ts-expect-error recovery modes are a closed set
Wal.open(dir, { recovery: 'best-effort' })

// Errors.
expectTypeOf<WalErrorCode>().toEqualTypeOf<
  | 'WAL_LOCKED'
  | 'WAL_CLOSED'
  | 'WAL_CORRUPT'
  | 'WAL_IO'
  | 'WAL_POISONED'
  | 'WAL_TOO_LARGE'
  | 'WAL_INVALID_ARGUMENT'
  | 'WAL_LSN_EXHAUSTED'
  | 'WAL_BACKPRESSURE'
  | 'WAL_ABORTED'
  | 'WAL_BUSY'
  | 'WAL_TRUNCATED'
  | 'WAL_INTERNAL'
  | 'WAL_NATIVE_MISSING'
>()
expectTypeOf<WalError>().toExtend<Error>()
expectTypeOf<WalError>().toExtend<WalErrorDetails>()
expectTypeOf<WalError['code']>().toEqualTypeOf<WalErrorCode>()
expectTypeOf<WalError['name']>().toEqualTypeOf<'WalError'>()
expectTypeOf<WalErrorDetails>().toEqualTypeOf<{
  path?: string
  offset?: number
  syscall?: string
  size?: number
  limit?: number
  buffered?: number
  lsn?: number
}>()
expectTypeOf<ConstructorParameters<typeof WalError>>().toEqualTypeOf<
  [code: WalErrorCode, message: string, details?: WalErrorDetails, cause?: unknown]
>()
// Narrowing a caught error is how users branch on codes.
export function codeOf(error: unknown): WalErrorCode | undefined {
  return error instanceof WalError ? error.code : undefined
}
export { both }
