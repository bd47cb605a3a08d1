/**
 * durawal: a durable write-ahead log for Node.js.
 *
 * @example
 * const wal = await Wal.open('./log')
 * const lsn = await wal.write(Buffer.from('hello'))
 * for await (const { lsn, data } of wal.replay()) console.log(lsn, data)
 * await wal.close()
 */
export { WalError, type WalErrorCode, type WalErrorDetails } from './errors'
export { MAX_LSN, type SyncPolicy, type WalOptions } from './options'
export type { WalRecord } from './replay'
export { type BatchRange, type RecoveryInfo, Wal, type WalStats, type WriteOptions } from './wal'
