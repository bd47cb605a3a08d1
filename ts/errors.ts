/**
 * Typed errors. Every error durawal throws or rejects with is a `WalError`
 * whose `code` is stable and meant to be branched on.
 */
import { constants } from 'node:os'

/**
 * The stable error codes, meant to be branched on (messages may change).
 *
 * - `WAL_INVALID_ARGUMENT`: a wrong type, an out-of-range option or LSN, a detached buffer, an empty batch.
 * - `WAL_TOO_LARGE`: a record over `maxRecordSize`, or a batch over a segment's capacity (`size`, `limit`).
 * - `WAL_CLOSED`: use after `close()`; pending promises when the log closes before they became durable.
 * - `WAL_LOCKED`: another writer (this process, a worker thread, another process) has the log open (`path`).
 * - `WAL_CORRUPT`: damage recovery or replay refuses (`path`, `offset`).
 * - `WAL_IO`: an OS call failed (`syscall`, `path`; the OS error, with its `code` such as `EIO`, as `cause`).
 * - `WAL_POISONED`: a write or sync failed earlier (that error is the `cause`); nothing more is accepted, only `close()` works.
 * - `WAL_LSN_EXHAUSTED`: the next LSN would pass `MAX_LSN` (2^53 - 1).
 * - `WAL_BACKPRESSURE`: the append would take the bytes appended and not yet durable past `bufferLimit` (`buffered`, `size`, `limit`); nothing was appended: wait for `ready()` and retry.
 * - `WAL_ABORTED`: the `signal` given to `sync`, `write` or `ready` aborted before it settled (the signal's `reason` is the `cause`); the record itself stays appended.
 * - `WAL_BUSY`: an append while `truncateAfter` is cutting the log; append once its promise settles.
 * - `WAL_TRUNCATED`: records a reader needed were removed by truncation (`lsn`: the first one it missed; `path`: the segment that is gone).
 *   A `tail()` or `replay()` of the writing process meets it only after `truncateAfter` cut records it had read,
 *   or when retention stopped waiting for it (`retention.readerLagBytes`); a reader in another process, whenever the writer removed what it had not read yet.
 * - `WAL_INTERNAL`: a bug in durawal (a panic, caught before it reaches Node); a log that saw it is poisoned.
 * - `WAL_NATIVE_MISSING`: loading durawal (`require`/`import`) found no native binary for this platform; the message lists what was tried.
 */
export type WalErrorCode =
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

/** Context carried by an error, when it applies. */
export interface WalErrorDetails {
  /** The file or directory concerned (corruption, I/O, lock). */
  path?: string
  /** Byte offset in `path` where corruption starts. */
  offset?: number
  /** The failed operation for `WAL_IO` (`write`, `fdatasync`, `open`, ...). */
  syscall?: string
  /** Size of the refused record or batch for `WAL_TOO_LARGE` and `WAL_BACKPRESSURE`, in bytes. */
  size?: number
  /** The limit it exceeded, in bytes. */
  limit?: number
  /** Bytes appended and not yet durable when `WAL_BACKPRESSURE` refused an append. */
  buffered?: number
  /** For `WAL_TRUNCATED`: the first LSN the reader missed. */
  lsn?: number
}

/**
 * An error from durawal, with a stable `code`. Every error durawal throws or
 * rejects with is one; the fields of {@link WalErrorDetails} are set when they apply.
 */
export class WalError extends Error implements WalErrorDetails {
  /** Always `'WalError'`. */
  override readonly name = 'WalError'
  /** What went wrong; see {@link WalErrorCode}. */
  readonly code: WalErrorCode
  readonly path?: string
  readonly offset?: number
  readonly syscall?: string
  readonly size?: number
  readonly limit?: number
  readonly buffered?: number
  readonly lsn?: number

  /**
   * For durawal's own use; exported so that `instanceof WalError` works and tests can build one.
   *
   * @param code - The error's code.
   * @param message - What happened, for people.
   * @param details - Context fields, copied onto the error.
   * @param cause - The underlying error (an OS error, or the failure that poisoned the log), as `error.cause`.
   */
  constructor(code: WalErrorCode, message: string, details: WalErrorDetails = {}, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause })
    this.code = code
    Object.assign(this, details)
  }
}

/** Shape of the JSON the native binding puts in its error messages. */
interface NativeErrorDetail extends WalErrorDetails {
  code: WalErrorCode
  message: string
  errno?: number | null
  osMessage?: string
  cause?: NativeErrorDetail
}

const errnoNames = new Map<number, string>(Object.entries(constants.errno).map(([name, value]) => [value, name]))

function fromDetail(detail: NativeErrorDetail): WalError {
  const { code, message, errno, osMessage, cause, ...context } = detail
  let origin: unknown
  if (cause !== undefined) {
    origin = fromDetail(cause)
  } else if (typeof errno === 'number' || osMessage !== undefined) {
    // The OS error as Node reports its own: `code` is the errno name.
    origin = Object.assign(new Error(osMessage ?? 'operating system error'), {
      code: typeof errno === 'number' ? (errnoNames.get(errno) ?? `errno ${errno}`) : undefined,
      errno: errno ?? undefined,
      syscall: context.syscall,
      path: context.path,
    })
  }
  return new WalError(code, message, context, origin)
}

/** Converts whatever the native binding threw into a `WalError`. */
export function fromNative(error: unknown): WalError {
  if (error instanceof WalError) return error
  if (error instanceof Error && error.message.startsWith('{')) {
    try {
      return fromDetail(JSON.parse(error.message) as NativeErrorDetail)
    } catch {
      // Not one of ours after all; reported below.
    }
  }
  const message = error instanceof Error ? error.message : String(error)
  return new WalError('WAL_INTERNAL', `internal error in durawal: ${message}`, {}, error)
}

/** Runs a native call, translating what it throws. */
export function callNative<T>(call: () => T): T {
  try {
    return call()
  } catch (error) {
    throw fromNative(error)
  }
}

/**
 * Runs a native call that returns a promise and awaits it, translating what
 * it rejects with. It takes the call, not its promise, because a native call
 * can also throw before it returns one (a panic, a bad argument): that error
 * is translated and rejected the same way.
 */
export async function awaitNative<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call()
  } catch (error) {
    throw fromNative(error)
  }
}

/** Shorthand for an invalid-argument error. */
export function invalidArgument(message: string): WalError {
  return new WalError('WAL_INVALID_ARGUMENT', message)
}
