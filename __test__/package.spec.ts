/**
 * The built package (dist/ plus the native loader) works the way users load
 * it, without tsx: `require()` of the package root gets the CommonJS build,
 * `import('durawal')` and the dist/index.mjs path get the ESM entry, both
 * expose Wal, WalError and MAX_LSN, hand out the same classes (no
 * dual-package hazard), and open/write/replay/close a real log. And what
 * `npm pack` would publish contains every file the exports map and the
 * built modules point to.
 */
import { execFile } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { promisify } from 'node:util'
import test, { type ExecutionContext } from 'ava'
import { fixture, rootDir, runNode } from './helpers/processes'
import { tempDir } from './helpers/wal'

/** What every loading style must report (see fixtures/package-exercise.cjs). */
const expectedSummary = {
  walIsClass: true,
  walErrorIsError: true,
  maxLsn: Number.MAX_SAFE_INTEGER,
  lsns: [1, 2],
  batch: { first: 3, last: 4 },
  durable: 4,
  refused: { code: 'WAL_INVALID_ARGUMENT', isWalError: true },
  recoveredRecords: 4,
  replayed: [
    [1, 'first'],
    [2, 'second'],
    [3, 'third'],
    [4, 'fourth'],
  ],
  closed: true,
}

/** Runs a plain-node fixture (no tsx, whatever the parent was started with) and parses its JSON line. */
async function runPlain(t: ExecutionContext, args: string[]): Promise<Record<string, unknown>> {
  const env = { ...process.env }
  delete env.NODE_OPTIONS
  const result = await runNode(args, { timeoutMs: 30_000, env })
  t.false(result.timedOut, 'the child hung')
  t.is(result.code, 0, result.stderr)
  return JSON.parse(result.stdout) as Record<string, unknown>
}

function assertExports(t: ExecutionContext, summary: Record<string, unknown>): void {
  const exported = summary.exports as string[]
  for (const name of ['MAX_LSN', 'Wal', 'WalError']) t.true(exported.includes(name), `missing export ${name}`)
  t.like(summary, expectedSummary)
}

test('require() of the package root loads the CommonJS build and it works', async (t) => {
  const summary = await runPlain(t, [fixture('package-cjs.cjs'), path.join(tempDir(t), 'log')])
  t.is(summary.resolvedFrom, path.join(rootDir, 'dist', 'index.js'))
  assertExports(t, summary)
})

test("import('durawal') resolves to the ESM entry and it works, with the same classes as require()", async (t) => {
  const summary = await runPlain(t, [fixture('package-esm.mjs'), path.join(tempDir(t), 'log'), 'durawal'])
  t.is(summary.resolvedFrom, path.join(rootDir, 'dist', 'index.mjs'))
  assertExports(t, summary)
  t.true(summary.sameClassesAsCommonJs)
})

test('importing dist/index.mjs by path works, with the same classes as require()', async (t) => {
  const summary = await runPlain(t, [fixture('package-esm.mjs'), path.join(tempDir(t), 'log'), 'dist/index.mjs'])
  assertExports(t, summary)
  t.true(summary.sameClassesAsCommonJs)
})

test('npm pack includes every file the exports map and the built modules refer to', async (t) => {
  const manifest = JSON.parse(fs.readFileSync(path.join(rootDir, 'package.json'), 'utf8')) as {
    main: string
    types: string
    exports: Record<string, unknown>
  }
  const env = { ...process.env }
  delete env.NODE_OPTIONS
  const { stdout } = await promisify(execFile)('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: rootDir,
    env,
  })
  const packed = new Set(
    (JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((file) => file.path),
  )
  const targets = new Set<string>([manifest.main, manifest.types])
  const walk = (value: unknown): void => {
    if (typeof value === 'string') targets.add(value)
    else if (value !== null && typeof value === 'object') Object.values(value).forEach(walk)
  }
  walk(manifest.exports)
  for (const target of targets) {
    const normalized = path.posix.normalize(target)
    t.true(fs.existsSync(path.join(rootDir, normalized)), `${target} is missing on disk`)
    t.true(packed.has(normalized), `${target} is not in the package`)
  }
  // Every relative module a built JS file or declaration loads is packed too.
  // (The generated native loader is left out: it names the .node file of
  // every platform, which the per-platform packages carry.)
  for (const file of packed) {
    if (!file.startsWith('dist/') || !/\.(c|m)?js$|\.d\.(m|c)?ts$/.test(file)) continue
    const source = fs.readFileSync(path.join(rootDir, file), 'utf8')
    for (const match of source.matchAll(/(?:require\(|from |import\()\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
      const base = path.posix.normalize(path.posix.join(path.posix.dirname(file), match[1]!))
      const candidates = file.endsWith('ts')
        ? [base, `${base}.d.ts`, base.replace(/\.m?js$/, '.d.ts'), base.replace(/\.mjs$/, '.d.mts')]
        : [base, `${base}.js`]
      t.true(
        candidates.some((candidate) => packed.has(candidate)),
        `${file} refers to ${match[1]} which is not in the package`,
      )
    }
  }
})
