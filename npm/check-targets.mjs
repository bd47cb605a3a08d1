#!/usr/bin/env node
/**
 * `npm run lint` step: the package claims exactly the platforms it builds,
 * tests and packages. Against package.json's `napi.targets` it checks that
 * - the workflows in `.github/workflows/` build every target once and no
 *   other (a step running `napi build --target <target>`, per matrix
 *   combination, expanded as GitHub expands `include` and `exclude`, so
 *   entries that overwrite each other show up as missing targets);
 * - the workflows test every target, and only those, on each Node version in
 *   NODE_VERSIONS, on a runner of the target's OS and CPU, musl targets
 *   inside Alpine (a job running ava on the `bindings-<target>` artifact it
 *   downloads, Node from setup-node or from a `node:<version>-alpine` image);
 * - `npm/<platformArchABI>/package.json` exists for every target and for no
 *   other, with the name, os, cpu, libc, main and files napi-rs gives it
 *   (`napi create-npm-dirs`), the root package's metadata and public access.
 * Every mismatch is printed; the exit code is 1 if there was any.
 *
 * Usage: node npm/check-targets.mjs [package root, default: this repository]
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'

/** The Node versions every target is tested on: the supported LTS lines (engines: >=20). */
const NODE_VERSIONS = ['20', '22', '24']

/** Fields a platform package shares with the root package.json. */
const SHARED_FIELDS = ['license', 'repository', 'homepage', 'bugs', 'keywords', 'engines']

/** Rust architecture -> Node's `process.arch`, as napi-rs maps them. */
const NODE_ARCH = {
  x86_64: 'x64',
  aarch64: 'arm64',
  i686: 'ia32',
  armv7: 'arm',
  riscv64gc: 'riscv64',
  powerpc64le: 'ppc64',
  s390x: 's390x',
  loongarch64: 'loong64',
}

/** Rust OS -> Node's `process.platform`. */
const NODE_PLATFORM = { linux: 'linux', darwin: 'darwin', windows: 'win32', freebsd: 'freebsd' }

/**
 * What napi-rs makes of a Rust target triple: `platformArchABI` names the
 * npm/ directory, the package suffix and the `.node` file. Undefined for a
 * triple this table does not cover (Android, WASI, universal macOS), rather
 * than a guess.
 */
function parseTarget(triple) {
  const parts = triple.split('-')
  if (parts.some((part) => part.startsWith('android'))) return undefined
  const arch = NODE_ARCH[parts[0]]
  const system = parts.find((part) => part in NODE_PLATFORM)
  const platform = NODE_PLATFORM[system]
  if (arch === undefined || platform === undefined) return undefined
  const abi = platform === 'darwin' ? undefined : parts.at(-1) === system ? undefined : parts.at(-1)
  const platformArchABI = [platform, arch, abi].filter((part) => part !== undefined).join('-')
  const libc = platform !== 'linux' ? undefined : abi?.startsWith('musl') ? 'musl' : 'glibc'
  return { platform, arch, abi, libc, platformArchABI }
}

/** The OS and CPU a GitHub-hosted runner label gives, or undefined for a label this script does not know. */
function runnerPlatform(label) {
  if (/^ubuntu-[\w.]+-arm$/.test(label)) return { platform: 'linux', arch: 'arm64' }
  if (/^ubuntu-[\w.]+$/.test(label)) return { platform: 'linux', arch: 'x64' }
  if (/^windows-[\w.]+-arm$/.test(label)) return { platform: 'win32', arch: 'arm64' }
  if (/^windows-[\w.]+$/.test(label)) return { platform: 'win32', arch: 'x64' }
  if (/^macos-(\d+-intel|1[0-3](\.\d+)?)$/.test(label)) return { platform: 'darwin', arch: 'x64' }
  if (/^macos-[\w.]+$/.test(label)) return { platform: 'darwin', arch: 'arm64' }
  return undefined
}

const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value)

/** True when every key of `partial` has an equal value in `whole` (objects compared the same way). */
function matches(whole, partial) {
  if (!isObject(partial)) return whole === partial || String(whole) === String(partial)
  return isObject(whole) && Object.entries(partial).every(([key, value]) => matches(whole[key], value))
}

/**
 * The combinations GitHub runs for a `strategy.matrix`: the cross product of
 * its lists, minus `exclude`, then `include` (an entry is merged into every
 * combination whose original values it does not change, and becomes a
 * combination of its own when it fits none; merged values may be
 * overwritten by later entries).
 */
function expandMatrix(matrix) {
  if (matrix === undefined) return [{}]
  if (!isObject(matrix)) return undefined
  const { include = [], exclude = [], ...lists } = matrix
  const keys = Object.keys(lists)
  if (keys.some((key) => !Array.isArray(lists[key]))) return undefined
  let original = keys.length === 0 ? [] : [{}]
  for (const key of keys) {
    original = original.flatMap((combo) => lists[key].map((value) => ({ ...combo, [key]: value })))
  }
  original = original.filter((combo) => !exclude.some((entry) => matches(combo, entry)))
  const combos = original.map((combo) => ({ ...combo }))
  const added = []
  for (const entry of include) {
    let fitted = false
    original.forEach((combo, index) => {
      if (Object.entries(entry).every(([key, value]) => !(key in combo) || matches(combo[key], value))) {
        Object.assign(combos[index], entry)
        fitted = true
      }
    })
    if (!fitted) added.push({ ...entry })
  }
  return [...combos, ...added]
}

/** Replaces each `${{ matrix.a.b }}` with its value; other expressions are left as they are. */
function evaluate(text, combo) {
  if (typeof text !== 'string') return text === undefined ? undefined : String(text)
  return text.replace(/\$\{\{\s*matrix\.([\w.-]+)\s*\}\}/g, (expression, path) => {
    const value = path.split('.').reduce((object, key) => (isObject(object) ? object[key] : undefined), combo)
    return value === undefined || isObject(value) ? expression : String(value)
  })
}

/** What one matrix combination of one job builds and tests. */
function describeRun(job, combo) {
  const host = evaluate(job['runs-on'], combo)
  const built = []
  let tested
  let node
  let alpine = false
  let runsAva = false
  /** A `node:<version>-alpine` image, as the job's container or in a `docker run`, gives Node's version. */
  const useImage = (text) => {
    const image = /\bnode:([\w.]+?)-alpine\b/.exec(text)
    if (image === null) return
    node = image[1]
    alpine = true
  }
  useImage(evaluate(job.container?.image ?? job.container, combo) ?? '')
  for (const step of job.steps ?? []) {
    const run = evaluate(step.run, combo) ?? ''
    const uses = step.uses ?? ''
    for (const command of run.match(/\bnapi build\b[^\n;&|]*/g) ?? []) {
      built.push(/--target[= ](\S+)/.exec(command)?.[1] ?? '(no --target)')
    }
    if (/\bava\b/.test(run)) runsAva = true
    useImage(run)
    if (uses.startsWith('actions/setup-node@') && node === undefined) {
      node = evaluate(step.with?.['node-version'], combo)
    }
    if (uses.startsWith('actions/download-artifact@')) {
      tested = /^bindings-(.+)$/.exec(evaluate(step.with?.name, combo) ?? '')?.[1] ?? tested
    }
  }
  // `20`, `20.x` and `v20.1.0` all test Node 20.
  const major = node === undefined ? undefined : (/^v?(\d+)/.exec(node)?.[1] ?? node)
  return { host, built, tested: runsAva ? tested : undefined, node: major, alpine }
}

/** Problems with the workflows' build and test matrices against `targets`. */
function checkWorkflows(root, targets) {
  const problems = []
  const dir = join(root, '.github', 'workflows')
  const files = existsSync(dir) ? readdirSync(dir).filter((name) => /\.ya?ml$/.test(name)) : []
  if (files.length === 0) problems.push(`no workflow files in ${dir}`)
  /** Target -> the jobs building it. */
  const builds = new Map()
  /** (host, target, node) -> the jobs testing it. */
  const tests = new Map()
  /** `<target> on Node <version>`, for every test. */
  const tested = new Set()
  for (const file of files) {
    const jobs = parse(readFileSync(join(dir, file), 'utf8'))?.jobs ?? {}
    for (const [jobId, job] of Object.entries(jobs)) {
      const where = `${file} job ${jobId}`
      const combos = expandMatrix(job.strategy?.matrix)
      if (combos === undefined) {
        problems.push(`${where}: its matrix is not a plain list of values (an expression?), so it cannot be checked`)
        continue
      }
      for (const combo of combos) {
        const run = describeRun(job, combo)
        for (const target of run.built) builds.set(target, [...(builds.get(target) ?? []), where])
        if (run.tested === undefined) continue
        const label = `(${run.host}, ${run.tested}, Node ${run.node})`
        tests.set(label, [...(tests.get(label) ?? []), where])
        tested.add(`${run.tested} on Node ${run.node}`)
        if (run.node === undefined) {
          problems.push(`${where} ${label}: no setup-node or node:<version>-alpine image says which Node it tests`)
        }
        const target = parseTarget(run.tested)
        const runner = runnerPlatform(run.host ?? '')
        if (runner === undefined) {
          problems.push(`${where} ${label}: runner "${run.host}" is not one this script knows the OS and CPU of`)
        } else if (target !== undefined && (runner.platform !== target.platform || runner.arch !== target.arch)) {
          problems.push(`${where} ${label}: a ${runner.platform}-${runner.arch} runner cannot run ${run.tested}`)
        }
        if (target?.libc === 'musl' && !run.alpine) {
          problems.push(`${where} ${label}: a musl target is tested outside Alpine (no node:<version>-alpine image)`)
        }
      }
    }
  }
  for (const target of targets) {
    if (!builds.has(target)) problems.push(`${target} is in napi.targets but no workflow builds it`)
    for (const node of NODE_VERSIONS) {
      if (!tested.has(`${target} on Node ${node}`)) problems.push(`${target} is not tested on Node ${node}`)
    }
  }
  for (const [target, where] of builds) {
    if (!targets.includes(target)) problems.push(`${where.join(', ')} builds ${target}, which is not in napi.targets`)
    if (where.length > 1) problems.push(`${target} is built more than once: ${where.join(', ')}`)
  }
  const testedTargets = new Set([...tested].map((pair) => pair.split(' on Node ')[0]))
  for (const target of testedTargets) {
    if (!targets.includes(target)) problems.push(`a workflow tests ${target}, which is not in napi.targets`)
  }
  for (const pair of tested) {
    const [target, node] = pair.split(' on Node ')
    if (node !== 'undefined' && !NODE_VERSIONS.includes(node)) {
      problems.push(`${target} is tested on Node ${node}, not one of ${NODE_VERSIONS.join(', ')}`)
    }
  }
  for (const [label, where] of tests) {
    if (where.length > 1) problems.push(`${label} is tested more than once: ${where.join(', ')}`)
  }
  return { problems, tests: tests.size }
}

/** Problems with the npm/ platform packages against `targets`. */
function checkPackages(root, manifest, targets) {
  const problems = []
  const { packageName = manifest.name, binaryName = 'index' } = manifest.napi
  const npmDir = join(root, 'npm')
  const expectedDirs = new Set()
  for (const triple of targets) {
    const target = parseTarget(triple)
    if (target === undefined) {
      problems.push(`${triple}: unknown target triple (teach npm/check-targets.mjs napi-rs's name for it)`)
      continue
    }
    expectedDirs.add(target.platformArchABI)
    const path = join(npmDir, target.platformArchABI, 'package.json')
    if (!existsSync(path)) {
      problems.push(`${triple}: ${path} is missing (napi create-npm-dirs makes it)`)
      continue
    }
    const platformPackage = JSON.parse(readFileSync(path, 'utf8'))
    const binary = `${binaryName}.${target.platformArchABI}.node`
    const expected = {
      name: `${packageName}-${target.platformArchABI}`,
      os: [target.platform],
      cpu: [target.arch],
      libc: target.libc === undefined ? undefined : [target.libc],
      main: binary,
    }
    for (const field of SHARED_FIELDS) expected[field] = manifest[field]
    for (const [field, value] of Object.entries(expected)) {
      if (JSON.stringify(platformPackage[field]) !== JSON.stringify(value)) {
        problems.push(
          `${path}: ${field} is ${JSON.stringify(platformPackage[field])}, expected ${JSON.stringify(value)}`,
        )
      }
    }
    if (!platformPackage.files?.includes(binary)) problems.push(`${path}: files does not list ${binary}`)
    if (platformPackage.name?.startsWith('@') && platformPackage.publishConfig?.access !== 'public') {
      problems.push(`${path}: a scoped package needs publishConfig.access "public" (scoped packages publish private)`)
    }
  }
  const dirs = existsSync(npmDir)
    ? readdirSync(npmDir, { withFileTypes: true }).filter((entry) => entry.isDirectory())
    : []
  for (const { name } of dirs) {
    if (!expectedDirs.has(name)) problems.push(`npm/${name} is not the package of any target in napi.targets`)
  }
  return problems
}

function main() {
  const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..'))
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
  const targets = manifest.napi?.targets ?? []
  const problems = []
  if (targets.length === 0) problems.push('package.json has no napi.targets')
  if (new Set(targets).size !== targets.length) problems.push('napi.targets lists a target twice')
  const workflows = checkWorkflows(root, targets)
  const packages = checkPackages(root, manifest, targets)
  problems.push(...workflows.problems, ...packages)
  if (problems.length > 0) {
    console.error(`check-targets: ${problems.length} mismatch(es) with napi.targets:`)
    for (const problem of problems) console.error(`  - ${problem}`)
    process.exit(1)
  }
  console.log(
    `check-targets: ${targets.length} targets, each built once, tested on Node ${NODE_VERSIONS.join(', ')} ` +
      `(${workflows.tests} (host, target, node) combinations) and packaged in npm/`,
  )
}

main()
