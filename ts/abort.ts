/**
 * `AbortSignal` support for the promises that wait for the flusher (`sync`,
 * `write`, `ready`). Aborting stops the wait, not the work: the record stays
 * appended and becomes durable as it would have; only the caller stops
 * waiting for it.
 */
import { invalidArgument, WalError } from './errors'

/** Options of a call that waits: `sync`, `ready` (and `write`, through `WriteOptions`). */
export interface WaitOptions {
  /** Aborting it rejects the call's promise with `WAL_ABORTED` (the signal's `reason` as `cause`). */
  signal?: AbortSignal
}

/** Checks that `signal` is an `AbortSignal`, or absent. */
export function checkSignal(signal: unknown): AbortSignal | undefined {
  if (signal === undefined || signal instanceof AbortSignal) return signal
  throw invalidArgument('signal must be an AbortSignal')
}

function abortError(signal: AbortSignal): WalError {
  return new WalError('WAL_ABORTED', 'the wait was aborted; the operation itself goes on', {}, signal.reason)
}

/**
 * `promise`, or a rejection with `WAL_ABORTED` as soon as `signal` aborts.
 * The waiter behind `promise` is left to settle on its own (it does, with
 * the next flush report or at close), and its outcome is then ignored.
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise
  if (signal.aborted) {
    promise.catch(() => {})
    return Promise.reject(abortError(signal))
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortError(signal))
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort)
        resolve(value)
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(error)
      },
    )
  })
}
