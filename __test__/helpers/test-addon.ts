/**
 * The test addon: the binding built with its `test-support` feature by
 * `npm run build:test-addon` (`npm test` builds it first). Child processes
 * load it instead of the release build through the generated loader's
 * `DURAWAL_NATIVE_PATH` override.
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import { rootDir } from './processes'

/** Where `npm run build:test-addon` puts it. */
export const testAddonPath = path.join(rootDir, 'target', 'test-addon', 'durawal.node')

/** The exports only the test addon has. */
export interface TestAddon {
  /** Makes the next entry into the named native entry point panic once. */
  injectPanic(site: string): void
  /** Env cleanup hooks registered and not yet run or removed, in this process. */
  liveCleanupHooks(): number
}

/** Whether `binding` is the test addon. */
export function isTestAddon(binding: unknown): binding is TestAddon {
  return typeof (binding as Partial<TestAddon>).injectPanic === 'function'
}

/** The environment of a child process that loads the test addon; throws when it was not built. */
export function testAddonEnv(): NodeJS.ProcessEnv {
  if (!fs.existsSync(testAddonPath)) {
    throw new Error(`${testAddonPath} is missing: run \`npm run build:test-addon\``)
  }
  return { ...process.env, DURAWAL_NATIVE_PATH: testAddonPath }
}
