/** ES module entry point: the same exports as the CommonJS build. */
export type {
  BatchRange,
  RecoveryInfo,
  ReplayRange,
  SyncPolicy,
  WaitOptions,
  WalErrorCode,
  WalErrorDetails,
  WalEvents,
  WalOptions,
  WalRecord,
  WalStats,
  WriteOptions,
  WriteStreamOptions,
} from './index.js'
export { MAX_LSN, Wal, WalError } from './index.js'
