/**
 * An ES module importing 'durawal' gets dist/index.d.mts (the exports map's
 * `import` types), and it declares the same names as the CommonJS entry
 * (dist/index.d.ts, which `require` gets), with the same types (the classes are the same at runtime too; see
 * package.spec.ts).
 */

import * as esm from 'durawal'
import { expectTypeOf } from 'expect-type'
import type * as Cjs from '../../dist/index.js'

expectTypeOf<keyof typeof esm>().toEqualTypeOf<'MAX_LSN' | 'Wal' | 'WalError'>()
expectTypeOf(esm.Wal).toEqualTypeOf<typeof Cjs.Wal>()
expectTypeOf(esm.WalError).toEqualTypeOf<typeof Cjs.WalError>()
expectTypeOf(esm.MAX_LSN).toEqualTypeOf<typeof Cjs.MAX_LSN>()
expectTypeOf<esm.BatchRange>().toEqualTypeOf<Cjs.BatchRange>()
expectTypeOf<esm.RecoveryInfo>().toEqualTypeOf<Cjs.RecoveryInfo>()
expectTypeOf<esm.ReplayRange>().toEqualTypeOf<Cjs.ReplayRange>()
expectTypeOf<esm.SyncPolicy>().toEqualTypeOf<Cjs.SyncPolicy>()
expectTypeOf<esm.WalErrorCode>().toEqualTypeOf<Cjs.WalErrorCode>()
expectTypeOf<esm.WalErrorDetails>().toEqualTypeOf<Cjs.WalErrorDetails>()
expectTypeOf<esm.WalOptions>().toEqualTypeOf<Cjs.WalOptions>()
expectTypeOf<esm.WalRecord>().toEqualTypeOf<Cjs.WalRecord>()
expectTypeOf<esm.WalStats>().toEqualTypeOf<Cjs.WalStats>()
expectTypeOf<esm.WriteOptions>().toEqualTypeOf<Cjs.WriteOptions>()
expectTypeOf<esm.WriteStreamOptions>().toEqualTypeOf<Cjs.WriteStreamOptions>()
expectTypeOf<esm.WaitOptions>().toEqualTypeOf<Cjs.WaitOptions>()
expectTypeOf<esm.WalEvents>().toEqualTypeOf<Cjs.WalEvents>()

// Top-level await, as ES module users write it.
const wal = await esm.Wal.open('./log')
for await (const { lsn, data } of wal.replay()) {
  expectTypeOf(lsn).toEqualTypeOf<number>()
  expectTypeOf(data).toEqualTypeOf<Buffer>()
}
await wal.close()
