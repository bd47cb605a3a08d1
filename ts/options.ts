/**
 * Open options: their types, defaults and validation. Everything is checked
 * up front so a bad option fails `Wal.open` with a message that names the
 * option and what is allowed, before anything touches the disk.
 */
import type { NativeOptions } from '../native/binding'
import { callNative, invalidArgument } from './errors'
import { binding } from './native'

/**
 * When appended records are made durable without an explicit `sync()`.
 * An object policy takes exactly one key: `{ intervalMs, bytes }` together
 * does not compile (and `Wal.open` refuses it with `WAL_INVALID_ARGUMENT`).
 */
export type SyncPolicy =
  /** Every `write()` requests a sync and waits for it; concurrent writers share one sync (group commit). */
  | 'always'
  /** Nothing is synced until `sync()` or `close()` (or 4 MiB are pending); `write()` does not wait. */
  | 'none'
  /** Pending records are synced every `intervalMs` milliseconds (an integer from 1 to 3,600,000); `write()` waits for that sync. */
  | { intervalMs: number; bytes?: never }
  /** Pending records are synced once `bytes` bytes are pending (an integer from 1; at most 4 MiB are ever pending unsynced); `write()` does not wait. */
  | { bytes: number; intervalMs?: never }

/**
 * Options of `Wal.open`. Every one is optional; unknown keys and values out
 * of range make `Wal.open` reject with `WAL_INVALID_ARGUMENT`, naming the
 * option and what is allowed.
 */
export interface WalOptions {
  /** When records become durable without `sync()`; see {@link SyncPolicy}. Default `'always'`. */
  sync?: SyncPolicy
  /**
   * Size of each segment file in bytes; files are preallocated (zero-filled) to it.
   * A multiple of 4096 from 65,536 (64 KiB) to 4,294,967,296 (4 GiB). Default 67,108,864 (64 MiB).
   */
  segmentSize?: number
  /**
   * `'auto'` uses O_DIRECT where the filesystem accepts it and buffered I/O otherwise;
   * `true` requires it (open rejects with `WAL_INVALID_ARGUMENT` where refused); `false` never uses it.
   * Default `'auto'`. `wal.recovery.ioMode` tells which one is in use.
   */
  directIo?: 'auto' | boolean
  /**
   * What open does with damage: `'tolerate-tail'` cuts a torn tail and refuses damage elsewhere,
   * `'absolute'` refuses any damage, `'point-in-time'` keeps the valid prefix before the first damage,
   * `'skip-corrupted'` skips damaged records and keeps the rest. Refused damage makes open reject
   * with `WAL_CORRUPT`. Default `'tolerate-tail'`.
   */
  recovery?: 'tolerate-tail' | 'absolute' | 'point-in-time' | 'skip-corrupted'
  /**
   * Largest payload of one record in bytes, from 1 to what a segment holds (`segmentSize` - 4176).
   * Default 16,777,216 (16 MiB), or what a segment holds when that is less.
   */
  maxRecordSize?: number
  /**
   * High-water mark, in bytes, of records appended and not yet durable (each
   * counted with its 24-byte header, rounded up to 8). While the log holds
   * this much or more, `ready()` waits. An integer from 1. Default
   * 16,777,216 (16 MiB), or one record of `maxRecordSize` when that is more.
   */
  maxBufferedBytes?: number
  /**
   * Hard cap, in bytes, on records appended and not yet durable: an append
   * that would pass it throws `WAL_BACKPRESSURE` and appends nothing, so memory
   * stays bounded when producers outrun the disk. An integer, at least
   * `maxBufferedBytes`. Default 4 × `maxBufferedBytes`.
   */
  bufferLimit?: number
  /**
   * Removes the oldest sealed segments without being asked (as
   * `truncateBefore` does: durable records only, never the segment appends
   * go to). Checked about once a second by a thread of the log's own. Default: none.
   */
  retention?: RetentionOptions
}

/** When sealed segments are removed without being asked; see `WalOptions.retention`. */
export interface RetentionOptions {
  /** Keep the segment files at or below this many bytes in total (files are `segmentSize` each). An integer from 1. */
  bytes?: number
  /**
   * Remove a segment this many milliseconds after it was sealed (one found sealed at open: after its file was
   * last modified). An integer from 1.
   */
  ageMs?: number
  /** `true`: never remove the latest durable checkpoint or what follows it (nothing at all until there is one). Default `false`. */
  keepFromCheckpoint?: boolean
  /**
   * A `replay` or `tail` further behind the end of the log than this many bytes of segments stops holding retention
   * back: what it still needed is removed, and it throws `WAL_TRUNCATED`. An integer from 1. Default: readers always
   * hold retention back.
   */
  readerLagBytes?: number
}

/** Options checked and completed, as the `Wal` and the native binding use them. */
export interface NormalizedOptions {
  /** What the native binding takes. */
  native: NativeOptions
  /** `maxBufferedBytes`, with its default. */
  maxBufferedBytes: number
}

/** Default high-water mark of bytes appended and not yet durable. */
const DEFAULT_MAX_BUFFERED_BYTES = 16 * 1024 * 1024
/** The hard cap is this many times the high-water mark unless set. */
const BUFFER_LIMIT_FACTOR = 4
/** Bytes a record header takes; records are padded to 8 bytes. */
const RECORD_HEADER_BYTES = 24

const nativeLimits = callNative(() => binding.limits())

/** Largest LSN durawal assigns: `Number.MAX_SAFE_INTEGER` (2^53 - 1); an append past it fails with `WAL_LSN_EXHAUSTED`. */
export const MAX_LSN = nativeLimits.maxLsn

const knownKeys = new Set([
  'sync',
  'segmentSize',
  'directIo',
  'recovery',
  'maxRecordSize',
  'maxBufferedBytes',
  'bufferLimit',
  'retention',
])
const recoveryModes = new Set(['tolerate-tail', 'absolute', 'point-in-time', 'skip-corrupted'])

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function integerIn(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalidArgument(`${name} must be an integer from ${min} to ${max}; got ${String(value)}`)
  }
  return value
}

function syncOption(sync: unknown): Pick<NativeOptions, 'sync' | 'syncIntervalMs' | 'syncBytes'> {
  if (sync === 'always' || sync === 'none') return { sync }
  if (isPlainObject(sync)) {
    const keys = Object.keys(sync)
    if (keys.length === 1 && keys[0] === 'intervalMs') {
      return { sync: 'interval', syncIntervalMs: integerIn('sync.intervalMs', sync.intervalMs, 1, 3_600_000) }
    }
    if (keys.length === 1 && keys[0] === 'bytes') {
      return { sync: 'bytes', syncBytes: integerIn('sync.bytes', sync.bytes, 1, Number.MAX_SAFE_INTEGER) }
    }
  }
  throw invalidArgument(
    `sync must be 'always', 'none', { intervalMs: number } or { bytes: number }; got ${JSON.stringify(sync)}`,
  )
}

function retentionOptions(
  retention: unknown,
): Pick<
  NativeOptions,
  'retentionBytes' | 'retentionAgeMs' | 'retentionKeepFromCheckpoint' | 'retentionReaderLagBytes'
> {
  if (retention === undefined) return {}
  checkKeys('retention', retention, ['bytes', 'ageMs', 'keepFromCheckpoint', 'readerLagBytes'])
  const optionalCount = (name: string, value: unknown): number | undefined =>
    value === undefined ? undefined : integerIn(name, value, 1, Number.MAX_SAFE_INTEGER)
  const { keepFromCheckpoint } = retention
  if (keepFromCheckpoint !== undefined && typeof keepFromCheckpoint !== 'boolean') {
    throw invalidArgument('retention.keepFromCheckpoint must be a boolean')
  }
  const bytes = optionalCount('retention.bytes', retention.bytes)
  const ageMs = optionalCount('retention.ageMs', retention.ageMs)
  if (bytes === undefined && ageMs === undefined) {
    throw invalidArgument('retention needs bytes or ageMs (or both)')
  }
  const readerLagBytes = optionalCount('retention.readerLagBytes', retention.readerLagBytes)
  return {
    ...(bytes === undefined ? {} : { retentionBytes: bytes }),
    ...(ageMs === undefined ? {} : { retentionAgeMs: ageMs }),
    ...(keepFromCheckpoint === undefined ? {} : { retentionKeepFromCheckpoint: keepFromCheckpoint }),
    ...(readerLagBytes === undefined ? {} : { retentionReaderLagBytes: readerLagBytes }),
  }
}

/** Validates `options` and fills in defaults. */
export function normalizeOptions(options: unknown): NormalizedOptions {
  if (options === undefined) options = {}
  checkKeys('options', options, knownKeys)
  const segmentSize = integerIn(
    'segmentSize',
    options.segmentSize ?? nativeLimits.defaultSegmentSize,
    nativeLimits.minSegmentSize,
    nativeLimits.maxSegmentSize,
  )
  if (segmentSize % nativeLimits.segmentSizeGranule !== 0) {
    throw invalidArgument(`segmentSize must be a multiple of ${nativeLimits.segmentSizeGranule}; got ${segmentSize}`)
  }
  const capacity = callNative(() => binding.recordCapacity(segmentSize))
  const maxRecordSize = integerIn(
    'maxRecordSize',
    options.maxRecordSize ?? Math.min(nativeLimits.defaultMaxRecordSize, capacity),
    1,
    capacity,
  )
  const directIo = options.directIo ?? 'auto'
  if (directIo !== 'auto' && typeof directIo !== 'boolean') {
    throw invalidArgument(`directIo must be 'auto', true or false; got ${JSON.stringify(directIo)}`)
  }
  const recovery = options.recovery ?? 'tolerate-tail'
  if (typeof recovery !== 'string' || !recoveryModes.has(recovery)) {
    throw invalidArgument(`recovery must be one of ${[...recoveryModes].join(', ')}; got ${JSON.stringify(recovery)}`)
  }
  const largestRecord = Math.ceil((RECORD_HEADER_BYTES + maxRecordSize) / 8) * 8
  const maxBufferedBytes = integerIn(
    'maxBufferedBytes',
    options.maxBufferedBytes ?? Math.max(DEFAULT_MAX_BUFFERED_BYTES, largestRecord),
    1,
    Number.MAX_SAFE_INTEGER,
  )
  const bufferLimit = integerIn(
    'bufferLimit',
    options.bufferLimit ?? Math.max(BUFFER_LIMIT_FACTOR * maxBufferedBytes, largestRecord),
    Math.max(maxBufferedBytes, largestRecord),
    Number.MAX_SAFE_INTEGER,
  )
  return {
    native: {
      ...syncOption(options.sync ?? 'always'),
      segmentSize,
      directIo: directIo === 'auto' ? 'auto' : directIo ? 'on' : 'off',
      recovery,
      maxRecordSize,
      bufferLimit,
      ...retentionOptions(options.retention),
    },
    maxBufferedBytes,
  }
}

/** Refuses a non-object `value` and any key of it that is not in `known`, naming both. */
export function checkKeys(
  name: string,
  value: unknown,
  known: Iterable<string>,
): asserts value is Record<string, unknown> {
  if (!isPlainObject(value)) throw invalidArgument(`${name} must be an object`)
  const allowed = new Set(known)
  for (const key of Object.keys(value)) {
    if (!allowed.has(key)) {
      throw invalidArgument(`unknown ${name} key '${key}'; known keys are ${[...allowed].join(', ')}`)
    }
  }
}

/** Checks that `count` is an integer from 1. */
export function checkCount(name: string, count: unknown): number {
  return integerIn(name, count, 1, Number.MAX_SAFE_INTEGER)
}

/** Checks that `lsn` is an LSN-shaped number. */
export function checkLsn(name: string, lsn: unknown): number {
  return integerIn(name, lsn, 0, MAX_LSN)
}

/** Checks the `from` of a tail: an LSN from 1 (a tail starts at a record). */
export function checkTailStart(lsn: unknown): number {
  return integerIn('from', lsn, 1, MAX_LSN)
}
