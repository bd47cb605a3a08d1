/**
 * Segment bytes written from docs/FORMAT.md, for tests that craft a log by
 * hand: CRC32C (Castagnoli) in plain JavaScript, the LevelDB mask, segment
 * names and the segment header. It follows the document, not the Rust code,
 * so a log it writes checks the code against the spec (an independent oracle).
 */
import * as fs from 'node:fs'
import * as path from 'node:path'

/** Reflected Castagnoli polynomial. */
const CASTAGNOLI = 0x82f63b78

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, byte) => {
  let crc = byte
  for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ CASTAGNOLI : crc >>> 1
  return crc >>> 0
})

/** CRC32C of `bytes` (initial value and final xor 0xffffffff: the standard check value of "123456789" is 0xe3069283). */
export function crc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff
  for (const byte of bytes) crc = CRC_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8)
  return (crc ^ 0xffffffff) >>> 0
}

/** FORMAT.md's masking: `rotate_right(crc, 15) + 0xa282ead8`, wrapping. */
export function maskCrc(crc: number): number {
  return (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0
}

/** One block: the segment header's size and the unit of every write. */
export const BLOCK_SIZE = 4096

/** The fields of a segment header (FORMAT.md, "Segment header"). */
export interface SegmentHeaderFields {
  salt: number
  logId: Uint8Array
  firstLsn: number
  prevSealOffset: number
  prevDigest: number
}

/** The header block of a segment: the fields, the masked header CRC (seed 0) of bytes 0..52, zeros. */
export function encodeSegmentHeader(fields: SegmentHeaderFields): Buffer {
  const block = Buffer.alloc(BLOCK_SIZE)
  block.write('DURAWAL\0', 0, 'latin1')
  block.writeUInt32LE(1, 8)
  block.writeUInt32LE(fields.salt, 12)
  Buffer.from(fields.logId).copy(block, 16, 0, 16)
  block.writeBigUInt64LE(BigInt(fields.firstLsn), 32)
  block.writeBigUInt64LE(BigInt(fields.prevSealOffset), 40)
  block.writeUInt32LE(fields.prevDigest, 48)
  block.writeUInt32LE(maskCrc(crc32c(block.subarray(0, 52))), 52)
  return block
}

/** A segment's file name: its first LSN in 20 zero-padded digits, then `.wal`. */
export function segmentFileName(firstLsn: number): string {
  return `${String(firstLsn).padStart(20, '0')}.wal`
}

/**
 * Writes, into `dir`, the first segment of a new log: a header for
 * `firstLsn` and no records (zeros to `segmentSize`). Returns its path.
 */
export function writeEmptySegment(dir: string, firstLsn: number, segmentSize: number): string {
  const file = path.join(dir, segmentFileName(firstLsn))
  const bytes = Buffer.alloc(segmentSize)
  encodeSegmentHeader({
    salt: 0x5eed_1234,
    logId: Buffer.alloc(16, 0x42),
    firstLsn,
    prevSealOffset: 0,
    prevDigest: 0,
  }).copy(bytes)
  fs.writeFileSync(file, bytes)
  return file
}
