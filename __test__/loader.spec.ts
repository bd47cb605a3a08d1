/**
 * Pins how the package finds its native binary (ts/native.ts): an explicit
 * DURAWAL_NATIVE_PATH is used and nothing else; without it, a package with no
 * binary anywhere fails with WAL_NATIVE_MISSING naming every place it looked
 * (local build, platform package, bundled prebuild) with why each failed, the
 * detected platform, and what to install — never a message blaming npm.
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import test, { type ExecutionContext } from 'ava'
import { rootDir, runNode } from './helpers/processes'
import { testAddonPath } from './helpers/test-addon'
import { tempDir } from './helpers/wal'

/** A copy of the built package (dist/ and package.json) with no binary in it. */
function packageWithoutBinary(t: ExecutionContext): string {
  const copy = path.join(tempDir(t), 'durawal')
  fs.cpSync(path.join(rootDir, 'dist'), path.join(copy, 'dist'), { recursive: true })
  fs.copyFileSync(path.join(rootDir, 'package.json'), path.join(copy, 'package.json'))
  return copy
}

/** Loads the package at `packageDir` in a plain Node child; returns the error code and message, or 'loaded'. */
async function load(t: ExecutionContext, packageDir: string, nativePath?: string) {
  const env: NodeJS.ProcessEnv = { ...process.env }
  delete env.NODE_OPTIONS
  delete env.DURAWAL_NATIVE_PATH
  if (nativePath !== undefined) env.DURAWAL_NATIVE_PATH = nativePath
  const script = `
    try {
      const api = require(${JSON.stringify(packageDir)})
      console.log(JSON.stringify({ loaded: typeof api.Wal.open === 'function' }))
    } catch (error) {
      console.log(JSON.stringify({ code: error.code, name: error.name, message: error.message }))
    }`
  const result = await runNode(['-e', script], { env, timeoutMs: 30_000 })
  t.is(result.code, 0, result.stderr)
  return JSON.parse(result.stdout) as { loaded?: boolean; code?: string; name?: string; message?: string }
}

test('with no binary anywhere, the error lists every place tried, why, the platform and what to install', async (t) => {
  const packageDir = packageWithoutBinary(t)
  const outcome = await load(t, packageDir)
  t.is(outcome.code, 'WAL_NATIVE_MISSING')
  t.is(outcome.name, 'WalError')
  const message = outcome.message ?? ''
  t.log(message)
  const triple = process.platform === 'linux' ? `linux-${process.arch}-` : `${process.platform}-${process.arch}`
  t.true(message.includes(triple), 'names the detected platform')
  t.regex(message, new RegExp(`local build: ${escapeRegExp(path.join(packageDir, 'native'))}.*: no such file`))
  t.regex(message, /platform package: @durawal\/native-[a-z0-9-]+: not installed/)
  t.regex(message, new RegExp(`bundled prebuild: ${escapeRegExp(path.join(packageDir, 'prebuilds'))}.*: no such file`))
  t.regex(message, /To fix: install the platform package \(npm install @durawal\/native-/)
  t.notRegex(message, /npm bug|bug in npm/i)
})

test('DURAWAL_NATIVE_PATH is loaded when set, and is the only place tried', async (t) => {
  const packageDir = packageWithoutBinary(t)
  t.deepEqual(await load(t, packageDir, testAddonPath), { loaded: true })

  const missing = path.join(tempDir(t), 'nowhere.node')
  const outcome = await load(t, rootDir, missing)
  t.is(outcome.code, 'WAL_NATIVE_MISSING')
  t.true(outcome.message?.includes(`DURAWAL_NATIVE_PATH: ${missing}: no such file`), outcome.message)
  t.false(outcome.message?.includes('local build'), 'fell back to another binary although one was named')
})

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
