/** ES module entry point: the same exports as the CommonJS build. */
export type {
  BatchRange,
  RecoveryInfo,
  SyncPolicy,
  WalErrorCode,
  WalErrorDetails,
  WalOptions,
  WalRecord,
  WriteOptions,
} from './index.js'
export { MAX_LSN, Wal, WalError } from './index.js'
