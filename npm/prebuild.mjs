#!/usr/bin/env node
/**
 * `npm run prebuild`: builds the Linux x64 binary that the npm tarball
 * carries in `prebuilds/`, in prebuildify's layout and naming
 * (`prebuilds/<platform>-<arch>/<package name>.<libc>.node`, what
 * `prebuildify --napi --tag-libc` writes and node-gyp-build resolves).
 *
 * The binary is linked by zig against glibc 2.17 (through cargo-zigbuild),
 * so it loads on every distribution with glibc 2.17 or newer (CentOS 7,
 * Debian 8, Ubuntu 14.04 and everything since), whatever glibc the build
 * machine has. The tools are installed on first use into `target/`, never
 * system-wide: zig from PyPI's `ziglang` package into a virtualenv, and
 * cargo-zigbuild from crates.io, both at pinned versions.
 *
 * Only the glibc binary is built here: the musl one needs Rust's musl
 * standard library, which this project's build machines cannot fetch; the
 * release workflow builds it (and the other platforms) natively.
 */
import { execFileSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The oldest glibc the binary may need; `__test__/prebuild.spec.ts` checks it with objdump. */
export const GLIBC_FLOOR = '2.17'
const ZIGLANG_VERSION = '0.17.1'
const CARGO_ZIGBUILD_VERSION = '0.24.1'
const RUST_TARGET = 'x86_64-unknown-linux-gnu'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const tools = join(root, 'target', 'prebuild-tools')
const venv = join(tools, 'zig-venv')
const buildDir = join(root, 'target', 'prebuild')
/** Where the tarball carries the binary: prebuildify's `<platform>-<arch>/<name>.<libc>.node`. */
export const PREBUILD_PATH = join(root, 'prebuilds', 'linux-x64', 'durawal.glibc.node')

function run(command, args, options = {}) {
  console.log(`prebuild: ${command} ${args.join(' ')}`)
  execFileSync(command, args, { stdio: 'inherit', cwd: root, ...options })
}

function succeeds(command, args, env) {
  try {
    execFileSync(command, args, { stdio: 'ignore', env })
    return true
  } catch {
    return false
  }
}

/** A Python with the pinned `ziglang` package, which cargo-zigbuild runs as `python3 -m ziglang`. */
function ensureZig() {
  const python = join(venv, 'bin', 'python3')
  if (
    !succeeds(python, [
      '-c',
      `import ziglang, importlib.metadata as m; assert m.version('ziglang') == '${ZIGLANG_VERSION}'`,
    ])
  ) {
    run('python3', ['-m', 'venv', venv])
    run(python, ['-m', 'pip', 'install', '--quiet', `ziglang==${ZIGLANG_VERSION}`])
  }
  return join(venv, 'bin')
}

/** The pinned cargo-zigbuild, installed into target/ unless that version is already there. */
function ensureCargoZigbuild() {
  const binary = join(tools, 'bin', 'cargo-zigbuild')
  let installed = ''
  try {
    installed = execFileSync(binary, ['--version'], { encoding: 'utf8' })
  } catch {}
  if (!installed.includes(CARGO_ZIGBUILD_VERSION)) {
    run('cargo', ['install', '--locked', '--quiet', '--root', tools, `cargo-zigbuild@${CARGO_ZIGBUILD_VERSION}`])
  }
  return binary
}

function main() {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    // Not an error: `npm test` runs this everywhere, and only the Linux x64
    // tarball test needs it (the other platforms' binaries come from the
    // release workflow's platform packages).
    console.log(
      `prebuild: skipped: the bundled binary is built on linux-x64 only (this is ${process.platform}-${process.arch})`,
    )
    return
  }
  const zigBin = ensureZig()
  const cargoZigbuild = ensureCargoZigbuild()
  run(
    cargoZigbuild,
    [
      'zigbuild',
      '--release',
      '--locked',
      '--package',
      'durawal-node',
      '--target',
      `${RUST_TARGET}.${GLIBC_FLOOR}`,
      '--target-dir',
      buildDir,
    ],
    { env: { ...process.env, PATH: `${zigBin}:${process.env.PATH}` } },
  )
  const built = join(buildDir, RUST_TARGET, 'release', 'libdurawal_node.so')
  if (!existsSync(built)) throw new Error(`prebuild: cargo-zigbuild reported success but ${built} is missing`)
  mkdirSync(dirname(PREBUILD_PATH), { recursive: true })
  copyFileSync(built, PREBUILD_PATH)
  console.log(`prebuild: wrote ${PREBUILD_PATH} (glibc ${GLIBC_FLOOR} or newer)`)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main()
