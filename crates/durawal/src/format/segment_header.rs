//! The segment header, stored in the first block of every segment file.
//!
//! ```text
//! 0..8    magic            b"DURAWAL\0"
//! 8..12   format_version   1, 2 (adds checkpoint records) or 3 (adds the
//!                          synced-before flag on records)
//! 12..16  salt             random per segment; seeds every record CRC
//! 16..32  log_id           random per log; all segments of a log share it
//! 32..40  first_lsn        LSN of the first record (also the file name)
//! 40..48  prev_seal_offset offset of the previous segment's seal (0: none)
//! 48..52  prev_digest      digest from the previous segment's seal
//! 52..56  header_crc       masked CRC32C (seed 0) of bytes 0..52
//! ```
//! The rest of the block is zero. Records start at [`SEGMENT_HEADER_SIZE`].

use super::checksum::masked_crc;

/// On-disk format version written by this code. Version 2 added checkpoint
/// records, version 3 the synced-before flag on the first record of each
/// flush; segments of versions 1 and 2 are still read (and continued).
pub const FORMAT_VERSION: u32 = 3;
/// The oldest format version this code reads.
pub const OLDEST_READABLE_VERSION: u32 = 1;
/// The first format version with checkpoint records.
pub const CHECKPOINT_VERSION: u32 = 2;
/// The first format version whose records may carry the synced-before flag.
pub const SYNCED_BEFORE_VERSION: u32 = 3;
/// The header takes one full block so records start block-aligned.
pub const SEGMENT_HEADER_SIZE: usize = 4096;

const MAGIC: &[u8; 8] = b"DURAWAL\0";
const ENCODED_SIZE: usize = 56;

/// A decoded segment header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Format version of the segment (what record kinds it may hold).
    pub version: u32,
    /// Seeds every record CRC in this segment.
    pub salt: u32,
    /// Identifies the log; a segment with another id is foreign.
    pub log_id: [u8; 16],
    /// LSN of the first record.
    pub first_lsn: u64,
    /// Offset of the seal record in the previous segment, 0 for the first segment of a log.
    pub prev_seal_offset: u64,
    /// Digest from the previous segment's seal.
    pub prev_digest: u32,
}

impl SegmentHeader {
    /// The full header block.
    pub fn encode(&self) -> Vec<u8> {
        let mut block = vec![0u8; SEGMENT_HEADER_SIZE];
        block[0..8].copy_from_slice(MAGIC);
        block[8..12].copy_from_slice(&self.version.to_le_bytes());
        block[12..16].copy_from_slice(&self.salt.to_le_bytes());
        block[16..32].copy_from_slice(&self.log_id);
        block[32..40].copy_from_slice(&self.first_lsn.to_le_bytes());
        block[40..48].copy_from_slice(&self.prev_seal_offset.to_le_bytes());
        block[48..52].copy_from_slice(&self.prev_digest.to_le_bytes());
        let crc = masked_crc(0, &block[0..52], &[]);
        block[52..56].copy_from_slice(&crc.to_le_bytes());
        block
    }

    /// Parses and checks a header; the error says what was wrong.
    pub fn decode(bytes: &[u8]) -> Result<Self, &'static str> {
        // The whole block: a file cut inside it has lost every record it
        // held, and must not read as an empty segment.
        if bytes.len() < SEGMENT_HEADER_SIZE {
            return Err("segment file is shorter than its header block");
        }
        if &bytes[0..8] != MAGIC {
            return Err("not a durawal segment (bad magic)");
        }
        let stored_crc = u32::from_le_bytes(bytes[52..56].try_into().expect("4 bytes"));
        if masked_crc(0, &bytes[0..52], &[]) != stored_crc {
            return Err("segment header checksum mismatch");
        }
        if bytes[ENCODED_SIZE..].iter().any(|&b| b != 0) {
            return Err("segment header block has non-zero reserved bytes");
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if !(OLDEST_READABLE_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err("unsupported segment format version");
        }
        Ok(Self {
            version,
            salt: u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes")),
            log_id: bytes[16..32].try_into().expect("16 bytes"),
            first_lsn: u64::from_le_bytes(bytes[32..40].try_into().expect("8 bytes")),
            prev_seal_offset: u64::from_le_bytes(bytes[40..48].try_into().expect("8 bytes")),
            prev_digest: u32::from_le_bytes(bytes[48..52].try_into().expect("4 bytes")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SegmentHeader {
        SegmentHeader {
            version: FORMAT_VERSION,
            salt: 5,
            log_id: [7; 16],
            first_lsn: 1000,
            prev_seal_offset: 8192,
            prev_digest: 77,
        }
    }

    #[test]
    fn round_trips() {
        let block = sample().encode();
        assert_eq!(block.len(), SEGMENT_HEADER_SIZE);
        assert_eq!(SegmentHeader::decode(&block), Ok(sample()));
    }

    #[test]
    fn every_readable_version_round_trips_and_a_newer_one_is_refused() {
        for version in OLDEST_READABLE_VERSION..=FORMAT_VERSION {
            let header = SegmentHeader {
                version,
                ..sample()
            };
            assert_eq!(SegmentHeader::decode(&header.encode()), Ok(header));
        }
        let newer = SegmentHeader {
            version: FORMAT_VERSION + 1,
            ..sample()
        };
        assert!(SegmentHeader::decode(&newer.encode()).is_err());
    }

    #[test]
    fn a_block_cut_short_is_refused() {
        let block = sample().encode();
        for length in [0, ENCODED_SIZE - 1, ENCODED_SIZE, SEGMENT_HEADER_SIZE - 1] {
            assert!(
                SegmentHeader::decode(&block[..length]).is_err(),
                "{length} bytes"
            );
        }
    }

    #[test]
    fn bytes_after_the_header_must_be_zero() {
        let mut block = sample().encode();
        block[SEGMENT_HEADER_SIZE - 1] = 1;
        assert!(SegmentHeader::decode(&block).is_err());
    }

    #[test]
    fn any_bit_flip_is_refused() {
        let block = sample().encode();
        for bit in 0..ENCODED_SIZE * 8 {
            let mut flipped = block.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(SegmentHeader::decode(&flipped).is_err(), "bit {bit}");
        }
    }
}
