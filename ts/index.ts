/**
 * durawal: a durable write-ahead log for Node.js.
 *
 * @example
 * const wal = await Wal.open('./log')
 * const lsn = await wal.write(Buffer.from('hello'))
 * for await (const { lsn, data } of wal.replay()) console.log(lsn, data)
 * await wal.close()
 */
// durawal's types use Node's (`Buffer`, `Symbol.asyncDispose`), so the
// declaration loads `@types/node` itself: a project whose tsconfig lists
// `types` without `node` still compiles. `preserve` keeps the reference in the
// emitted .d.ts (TypeScript 5.5 and later drop those they did not add).
/// <reference types="node" preserve="true" />
export type { WaitOptions } from './abort'
export { WalError, type WalErrorCode, type WalErrorDetails } from './errors'
export { MAX_LSN, type RetentionOptions, type SyncPolicy, type WalOptions } from './options'
export type { ReaderRecoveryInfo, ReadOnlyOptions, WalReader } from './reader'
export type { WalRecord } from './replay'
export type { ReadStreamOptions, WriteStreamOptions } from './streams'
export type { TailOptions } from './tail'
export {
  type BatchRange,
  type RecoveryInfo,
  type ReplayRange,
  Wal,
  type WalEvents,
  type WalStats,
  type WriteOptions,
} from './wal'
