/**
 * Assertions on errors shared by the spec files: that something failed, and
 * with which WalError code.
 */
import type { ExecutionContext } from 'ava'
import { WalError, type WalErrorCode } from '../../ts'

/** Asserts that `error` is a WalError with `code`, and returns it. */
export function assertWalError(
  t: ExecutionContext,
  error: unknown,
  code: WalErrorCode,
  label: string,
): WalError | undefined {
  t.true(error instanceof WalError, `${label}: expected a WalError, got ${String(error)}`)
  t.is((error as { code?: unknown } | undefined)?.code, code, `${label}: code`)
  return error instanceof WalError ? error : undefined
}

/** The error of a synchronous call; fails the test when it does not throw. */
export function thrownBy(t: ExecutionContext, call: () => unknown, label: string): unknown {
  try {
    call()
  } catch (error) {
    return error
  }
  t.fail(`${label}: did not throw`)
  return undefined
}

/** The rejection reason of `promise`; fails the test when it resolves. */
export async function rejectionOf(t: ExecutionContext, promise: Promise<unknown>, label: string): Promise<unknown> {
  try {
    const value = await promise
    t.fail(`${label}: resolved with ${String(value)} instead of rejecting`)
  } catch (error) {
    return error
  }
  return undefined
}
