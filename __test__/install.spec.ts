/**
 * The package as a user meets it. `npm pack` makes the tarball that would be
 * published; it is installed into a fresh project with the network off
 * (`npm install --offline` with an empty cache, and inside a network
 * namespace of its own when running as root) and no `cargo` on PATH. Then a
 * TypeScript consumer is type-checked against the installed types under
 * `module: nodenext` and under `module: commonjs` / `moduleResolution: node10`,
 * and its compiled workload is run by a CommonJS and an ES module consumer:
 * many producers write durably, the log is reopened and replayed, and every
 * record must come back byte-exact with dense LSNs. The tarball's file list is
 * pinned (no tests, Rust sources, benchmarks or data; a LICENSE; source maps
 * carry their sources), and so is the glibc floor of the bundled binary.
 */
import { execFile } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { promisify } from 'node:util'
import test from 'ava'
import { fixture, rootDir, runNode } from './helpers/processes'

const run = promisify(execFile)

/** What `npm pack --json` says of one file. */
interface PackedFile {
  path: string
  size: number
}

/** The bundled Linux binary and the oldest glibc it may need (npm/prebuild.mjs builds it). */
const prebuild = import(path.join(rootDir, 'npm', 'prebuild.mjs')) as Promise<{
  GLIBC_FLOOR: string
  PREBUILD_PATH: string
}>

/** PATH without any directory that holds a `cargo`: the install must not need Rust. */
function pathWithoutCargo(): string {
  return (process.env.PATH ?? '')
    .split(path.delimiter)
    .filter((dir) => dir !== '' && !fs.existsSync(path.join(dir, 'cargo')))
    .join(path.delimiter)
}

function commandExists(command: string, env: NodeJS.ProcessEnv): boolean {
  return (env.PATH ?? '').split(path.delimiter).some((dir) => fs.existsSync(path.join(dir, command)))
}

/**
 * The tarball bundles a Linux x64 glibc binary only; elsewhere a user's
 * install gets its binary from the platform package, which the release
 * workflow builds, so there is nothing here to install offline.
 */
const bundledBinaryLoadsHere =
  process.platform === 'linux' &&
  process.arch === 'x64' &&
  (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime !==
    undefined

/** `test`, or a visible skip where the bundled binary cannot load. */
const installTest = bundledBinaryLoadsHere ? test.serial : test.skip

/** Packs the package and installs the tarball into a new project. */
async function install() {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'durawal-install-'))
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: rootDir })
  const [packed] = JSON.parse(stdout) as [{ filename: string; files: PackedFile[] }]
  const tarball = path.join(work, packed.filename)

  const project = path.join(work, 'consumer')
  fs.mkdirSync(project)
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true }))
  for (const name of fs.readdirSync(fixture('consumer'))) {
    fs.copyFileSync(path.join(fixture('consumer'), name), path.join(project, name))
  }
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: pathWithoutCargo(),
    npm_config_cache: path.join(work, 'empty-npm-cache'),
    npm_config_update_notifier: 'false',
  }
  delete env.NODE_OPTIONS
  delete env.DURAWAL_NATIVE_PATH
  const npmInstall = ['npm', 'install', '--offline', '--no-audit', '--no-fund', tarball]
  const isolated = process.getuid?.() === 0 && commandExists('unshare', env)
  const [command, ...args] = isolated ? ['unshare', '--net', ...npmInstall] : npmInstall
  await run(command!, args, { cwd: project, env })
  return { work, project, env, packed, isolated }
}

let installing: ReturnType<typeof install> | undefined

/** The one installation the tests below share, made by the first that needs it. */
function installed(): ReturnType<typeof install> {
  installing ??= install()
  return installing
}

test.after.always(async () => {
  const done = await installing?.catch(() => undefined)
  if (done !== undefined) fs.rmSync(done.work, { recursive: true, force: true })
})

installTest('the tarball holds the built package, its types, a Linux binary and a LICENSE; nothing else', async (t) => {
  const { packed } = await installed()
  const files = new Map(packed.files.map((file) => [file.path, file.size]))
  t.log(
    [...files]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([file, size]) => `${String(size).padStart(9)}  ${file}`)
      .join('\n'),
  )
  for (const required of [
    'LICENSE',
    'README.md',
    'package.json',
    'dist/index.js',
    'dist/index.mjs',
    'dist/index.d.ts',
    'dist/index.d.mts',
    'native/binding.d.ts',
    'prebuilds/linux-x64/durawal.glibc.node',
  ]) {
    t.true(files.has(required), `the tarball lacks ${required}`)
  }
  const unwanted = [...files.keys()].filter(
    (file) =>
      /^(__test__|crates|bench|ts|docs|npm|target|native\/.*\.node$)/.test(file) ||
      /\.(rs|toml|lock)$/.test(file) ||
      /^(Cargo|biome|tsconfig)/.test(file),
  )
  t.deepEqual(unwanted, [], 'tests, Rust sources, benchmarks, build files or data were packed')
  const maps = [...files.keys()].filter((file) => file.endsWith('.map'))
  for (const map of maps) {
    const { sources, sourcesContent } = JSON.parse(fs.readFileSync(path.join(rootDir, map), 'utf8')) as {
      sources: string[]
      sourcesContent?: (string | null)[]
    }
    const carried = sources.every((source, index) => {
      const shipped = files.has(path.posix.join(path.posix.dirname(map), source))
      return shipped || typeof sourcesContent?.[index] === 'string'
    })
    t.true(carried, `${map} points at sources the tarball does not carry`)
  }
})

installTest('it installs offline, with no cargo on PATH, and depends on nothing', async (t) => {
  const { project, env, isolated } = await installed()
  t.log(isolated ? 'installed inside its own network namespace' : 'installed with --offline and an empty cache')
  t.false(commandExists('cargo', env), 'cargo is still on PATH')
  const installedNames = fs.readdirSync(path.join(project, 'node_modules')).filter((name) => !name.startsWith('.'))
  t.deepEqual(installedNames, ['durawal'])
  const installedPackage = path.join(project, 'node_modules', 'durawal')
  t.false(
    fs.existsSync(path.join(installedPackage, 'native', 'durawal.linux-x64-gnu.node')),
    'a local build came along',
  )
  t.true(fs.existsSync(path.join(installedPackage, 'prebuilds', 'linux-x64', 'durawal.glibc.node')))
})

for (const [label, config] of [
  ['module nodenext', 'tsconfig.nodenext.json'],
  ['module commonjs, moduleResolution node10', 'tsconfig.node10.json'],
] as const) {
  installTest(`a TypeScript consumer type-checks against the installed types (${label}, strict)`, async (t) => {
    const { project, env } = await installed()
    const tsc = path.join(rootDir, 'node_modules', 'typescript', 'bin', 'tsc')
    const typeRoots = path.join(rootDir, 'node_modules', '@types')
    const result = await runNode([tsc, '-p', config, '--typeRoots', typeRoots], {
      env,
      cwd: project,
      timeoutMs: 120_000,
    })
    t.is(result.code, 0, result.stdout + result.stderr)
  })
}

for (const consumer of ['consumer.cjs', 'consumer.mjs']) {
  installTest(`${consumer} loads the installed package, writes from 32 producers, reopens and replays`, async (t) => {
    const { project, env } = await installed()
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'durawal-consumer-log-'))
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
    // The node10 type check above compiled the workload into build/.
    t.true(fs.existsSync(path.join(project, 'build', 'workload.js')), 'the workload was not compiled')
    const result = await runNode([consumer, dir], { env, cwd: project, timeoutMs: 60_000 })
    t.is(result.code, 0, result.stderr)
    t.deepEqual(JSON.parse(result.stdout), {
      written: 800,
      distinctLsns: 800,
      recovered: 800,
      replayed: 800,
      byteExact: true,
      dense: true,
      walErrorCode: 'WAL_INVALID_ARGUMENT',
    })
  })
}

installTest('the bundled Linux binary needs no glibc newer than the floor (linux-x64 glibc only)', async (t) => {
  const { GLIBC_FLOOR, PREBUILD_PATH } = await prebuild
  const { stdout } = await run('objdump', ['-T', PREBUILD_PATH])
  const versions = [...new Set(stdout.match(/GLIBC_[0-9.]+/g) ?? [])]
  t.true(versions.length > 0, 'objdump found no versioned glibc symbol: not a dynamically linked glibc binary?')
  const numeric = (version: string): number[] => version.replace('GLIBC_', '').split('.').map(Number)
  const newest = versions.sort((a, b) => compareVersions(numeric(a), numeric(b))).at(-1)!
  t.log(`newest glibc symbol version: ${newest} (floor ${GLIBC_FLOOR})`)
  t.true(compareVersions(numeric(newest), numeric(GLIBC_FLOOR)) <= 0, `${newest} is newer than glibc ${GLIBC_FLOOR}`)
})

function compareVersions(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const difference = (a[i] ?? 0) - (b[i] ?? 0)
    if (difference !== 0) return difference
  }
  return 0
}
