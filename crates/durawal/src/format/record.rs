//! Records: a 24-byte header, then the payload, padded to 8 bytes.
//!
//! ```text
//! 0..4   crc         masked CRC32C (salted) of bytes 4..24 and the payload
//! 4..8   length      payload length in bytes
//! 8..16  lsn         LSN of the (first) logical record inside
//! 16     kind        1 data, 2 batch, 3 seal, 4 checkpoint (format 2)
//! 17     flags       bit 0: synced before (format 3); other bits zero
//! 18..20 reserved    zero
//! 20..24 header_crc  masked CRC32C (salted) of bytes 4..20
//! ```
//!
//! The header has a CRC of its own so a damaged length is caught before it is
//! trusted to read (or allocate) anything.
//!
//! The synced-before flag is set on the first record of each flush that
//! continues a segment: it says that every byte of the segment before the
//! record was on stable storage when the record was written. Recovery uses
//! it to tell damage to synced records (refused) from a torn write (cut).

use super::checksum::masked_crc;

/// Size of a record header in bytes.
pub const RECORD_HEADER_SIZE: usize = 24;
/// Records start on multiples of this many bytes.
pub const RECORD_ALIGNMENT: usize = 8;
/// Size of a seal payload in bytes.
const SEAL_PAYLOAD_SIZE: usize = 20;
/// Bytes a seal record occupies; every segment keeps this much room for it.
pub const SEAL_RECORD_SIZE: usize = record_size(SEAL_PAYLOAD_SIZE);

/// Bytes a record with a payload of `payload_len` bytes occupies on disk.
pub const fn record_size(payload_len: usize) -> usize {
    (RECORD_HEADER_SIZE + payload_len).div_ceil(RECORD_ALIGNMENT) * RECORD_ALIGNMENT
}

/// What a record holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// One logical record.
    Data = 1,
    /// Several logical records written atomically (see [`encode_batch_payload`]).
    Batch = 2,
    /// Closes a segment; see [`SealPayload`].
    Seal = 3,
    /// One logical record that the application marked as a checkpoint
    /// (format version 2 on).
    Checkpoint = 4,
}

impl RecordKind {
    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(RecordKind::Data),
            2 => Some(RecordKind::Batch),
            3 => Some(RecordKind::Seal),
            4 => Some(RecordKind::Checkpoint),
            _ => None,
        }
    }
}

/// A decoded record header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// The stored record CRC (also chained into the segment digest).
    pub crc: u32,
    /// Payload length in bytes.
    pub length: u32,
    /// LSN of the first logical record inside (the last LSN of the segment for a seal).
    pub lsn: u64,
    /// What the payload holds.
    pub kind: RecordKind,
    /// Every byte of the segment before this record had been synced when
    /// it was written (format version 3).
    pub synced_before: bool,
}

/// Flag bit of header byte 17: see [`RecordHeader::synced_before`].
const SYNCED_BEFORE: u8 = 0x01;

/// Outcome of decoding a header.
#[derive(Debug, PartialEq, Eq)]
pub enum HeaderCheck {
    /// Only zeros: the end of the written part of a segment.
    Zero,
    /// Not a header this segment wrote; the reason in words.
    Invalid(&'static str),
    /// A header whose own CRC checks out.
    Valid(RecordHeader),
}

impl RecordHeader {
    /// Encodes the header of a record holding `payload` and returns the 24 bytes.
    pub fn encode(
        salt: u32,
        kind: RecordKind,
        lsn: u64,
        payload: &[u8],
    ) -> [u8; RECORD_HEADER_SIZE] {
        Self::encode_flagged(salt, kind, lsn, false, payload)
    }

    /// Like [`Self::encode`], with the synced-before flag as given.
    pub fn encode_flagged(
        salt: u32,
        kind: RecordKind,
        lsn: u64,
        synced_before: bool,
        payload: &[u8],
    ) -> [u8; RECORD_HEADER_SIZE] {
        let mut bytes = [0u8; RECORD_HEADER_SIZE];
        bytes[4..8].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        bytes[8..16].copy_from_slice(&lsn.to_le_bytes());
        bytes[16] = kind as u8;
        if synced_before {
            bytes[17] = SYNCED_BEFORE;
        }
        let header_crc = masked_crc(salt, &bytes[4..20], &[]);
        bytes[20..24].copy_from_slice(&header_crc.to_le_bytes());
        let crc = masked_crc(salt, &bytes[4..24], payload);
        bytes[0..4].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    /// Decodes and checks the header CRC with the segment's `salt`.
    pub fn decode(salt: u32, bytes: &[u8; RECORD_HEADER_SIZE]) -> HeaderCheck {
        if bytes.iter().all(|&b| b == 0) {
            return HeaderCheck::Zero;
        }
        let stored_header_crc = u32::from_le_bytes(bytes[20..24].try_into().expect("4 bytes"));
        if masked_crc(salt, &bytes[4..20], &[]) != stored_header_crc {
            return HeaderCheck::Invalid("record header checksum mismatch");
        }
        if bytes[17] & !SYNCED_BEFORE != 0 || bytes[18..20] != [0, 0] {
            return HeaderCheck::Invalid("reserved header bits are not zero");
        }
        let Some(kind) = RecordKind::from_byte(bytes[16]) else {
            return HeaderCheck::Invalid("unknown record kind");
        };
        HeaderCheck::Valid(RecordHeader {
            crc: u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes")),
            length: u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes")),
            lsn: u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")),
            kind,
            synced_before: bytes[17] & SYNCED_BEFORE != 0,
        })
    }

    /// True when `payload` is the one this header was written with.
    pub fn payload_matches(
        &self,
        salt: u32,
        header_bytes: &[u8; RECORD_HEADER_SIZE],
        payload: &[u8],
    ) -> bool {
        payload.len() == self.length as usize
            && masked_crc(salt, &header_bytes[4..24], payload) == self.crc
    }

    /// Bytes this record occupies in the segment.
    pub fn record_size(&self) -> usize {
        record_size(self.length as usize)
    }
}

/// Appends the batch payload for `records`: a u32 count, then each record as
/// a u32 length and its bytes. One CRC covers the whole batch, which is what
/// makes it all-or-nothing after a crash.
pub fn encode_batch_payload(records: &[&[u8]], out: &mut Vec<u8>) {
    out.extend_from_slice(&(records.len() as u32).to_le_bytes());
    for record in records {
        out.extend_from_slice(&(record.len() as u32).to_le_bytes());
        out.extend_from_slice(record);
    }
}

/// Iterates over the logical records of a batch payload, refusing a payload
/// whose lengths do not add up.
pub struct BatchEntries<'a> {
    rest: &'a [u8],
    remaining: u32,
}

impl<'a> BatchEntries<'a> {
    /// Parses the count; `None` when the payload is too short to hold one.
    pub fn new(payload: &'a [u8]) -> Option<Self> {
        let count = u32::from_le_bytes(payload.get(0..4)?.try_into().ok()?);
        Some(Self {
            rest: &payload[4..],
            remaining: count,
        })
    }

    /// Number of logical records the batch declares.
    pub fn declared_count(&self) -> u32 {
        self.remaining
    }

    /// True once nothing of the payload is left: after the declared entries
    /// of a well-formed batch, which fill its payload exactly.
    pub fn is_exhausted(&self) -> bool {
        self.rest.is_empty()
    }
}

impl<'a> Iterator for BatchEntries<'a> {
    /// `None` for a malformed entry, which ends iteration.
    type Item = Option<&'a [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let entry = (|| {
            let length = u32::from_le_bytes(self.rest.get(0..4)?.try_into().ok()?) as usize;
            let bytes = self.rest.get(4..4 + length)?;
            self.rest = &self.rest[4 + length..];
            Some(bytes)
        })();
        if entry.is_none() {
            self.remaining = 0;
        }
        Some(entry)
    }
}

/// The payload of a seal record, which closes a segment. The next segment's
/// header repeats `last_lsn` and `digest`, so a missing or truncated middle
/// segment cannot go unnoticed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealPayload {
    /// Number of logical records in the segment.
    pub record_count: u64,
    /// LSN of the last logical record in the segment.
    pub last_lsn: u64,
    /// Chained CRC of every record CRC in the segment.
    pub digest: u32,
}

impl SealPayload {
    /// The payload bytes.
    pub fn encode(&self) -> [u8; SEAL_PAYLOAD_SIZE] {
        let mut bytes = [0u8; SEAL_PAYLOAD_SIZE];
        bytes[0..8].copy_from_slice(&self.record_count.to_le_bytes());
        bytes[8..16].copy_from_slice(&self.last_lsn.to_le_bytes());
        bytes[16..20].copy_from_slice(&self.digest.to_le_bytes());
        bytes
    }

    /// Parses a seal payload; `None` when it has the wrong size.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != SEAL_PAYLOAD_SIZE {
            return None;
        }
        Some(Self {
            record_count: u64::from_le_bytes(bytes[0..8].try_into().ok()?),
            last_lsn: u64::from_le_bytes(bytes[8..16].try_into().ok()?),
            digest: u32::from_le_bytes(bytes[16..20].try_into().ok()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_checks_payload() {
        let payload = b"hello";
        let bytes = RecordHeader::encode(42, RecordKind::Data, 7, payload);
        let HeaderCheck::Valid(header) = RecordHeader::decode(42, &bytes) else {
            panic!("invalid")
        };
        assert_eq!(
            (header.lsn, header.length, header.kind),
            (7, 5, RecordKind::Data)
        );
        assert!(header.payload_matches(42, &bytes, payload));
        assert!(!header.payload_matches(42, &bytes, b"hellO"));
    }

    #[test]
    fn every_single_bit_flip_of_a_header_is_detected() {
        let bytes = RecordHeader::encode(9, RecordKind::Data, 3, b"abc");
        for bit in 0..RECORD_HEADER_SIZE * 8 {
            let mut flipped = bytes;
            flipped[bit / 8] ^= 1 << (bit % 8);
            let detected = match RecordHeader::decode(9, &flipped) {
                HeaderCheck::Valid(header) => !header.payload_matches(9, &flipped, b"abc"),
                HeaderCheck::Invalid(_) | HeaderCheck::Zero => true,
            };
            assert!(detected, "bit {bit} flip went unnoticed");
        }
    }

    #[test]
    fn wrong_salt_fails_the_header() {
        let bytes = RecordHeader::encode(1, RecordKind::Data, 1, b"");
        assert!(matches!(
            RecordHeader::decode(2, &bytes),
            HeaderCheck::Invalid(_)
        ));
    }

    #[test]
    fn batch_payload_round_trips() {
        let mut payload = Vec::new();
        encode_batch_payload(&[b"a", b"", b"ccc"], &mut payload);
        let entries: Vec<_> = BatchEntries::new(&payload).unwrap().collect();
        assert_eq!(
            entries,
            vec![Some(&b"a"[..]), Some(&b""[..]), Some(&b"ccc"[..])]
        );
    }

    #[test]
    fn lying_batch_lengths_are_refused() {
        let mut payload = Vec::new();
        encode_batch_payload(&[b"abcd"], &mut payload);
        payload[4] = 200;
        let entries: Vec<_> = BatchEntries::new(&payload).unwrap().collect();
        assert_eq!(entries, vec![None]);
    }

    #[test]
    fn sizes_are_aligned() {
        assert_eq!(record_size(0), 24);
        assert_eq!(record_size(1), 32);
        assert_eq!(record_size(8), 32);
        assert_eq!(SEAL_RECORD_SIZE, 48);
    }
}
