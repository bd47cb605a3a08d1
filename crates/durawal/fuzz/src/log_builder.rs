//! Builds valid segments from fuzzer input (CRCs, LSNs, digests and seals
//! computed as the writer would), so that the fuzzer spends its effort on
//! damage and on how segments and control files fit together, not on
//! guessing checksums.

use durawal::format::{
    chain_digest, encode_batch_payload, RecordHeader, RecordKind, SealPayload, SegmentHeader,
};

use crate::SEGMENT_SIZE;

/// Room every segment keeps for its seal record.
const SEAL_ROOM: usize = 48;

/// A segment being filled with records.
pub struct SegmentBuilder {
    header: SegmentHeader,
    bytes: Vec<u8>,
    next_lsn: u64,
    digest: u32,
    count: u64,
}

impl SegmentBuilder {
    /// An empty segment of the log `log_id` starting at `first_lsn`, after a
    /// segment sealed at `previous` (offset and digest), if any.
    pub fn new(salt: u32, log_id: [u8; 16], first_lsn: u64, previous: Option<(u64, u32)>) -> Self {
        let (prev_seal_offset, prev_digest) = previous.unwrap_or((0, 0));
        let header = SegmentHeader {
            version: durawal::format::FORMAT_VERSION,
            salt,
            log_id,
            first_lsn,
            prev_seal_offset,
            prev_digest,
        };
        Self {
            bytes: header.encode(),
            header,
            next_lsn: first_lsn,
            digest: 0,
            count: 0,
        }
    }

    /// LSN the next record gets.
    pub fn next_lsn(&self) -> u64 {
        self.next_lsn
    }

    /// Appends records described by `input` (a kind byte — its low bits
    /// choose data, batch, empty or checkpoint, bit 7 the synced-before flag
    /// — a length byte, that many payload bytes) until a 0xFF kind byte,
    /// the end of the input, or a full segment; returns the rest of the input.
    pub fn append_from<'a>(&mut self, mut input: &'a [u8]) -> &'a [u8] {
        while let [kind, length, tail @ ..] = input {
            if *kind == 0xff {
                return &input[1..];
            }
            let length = (*length as usize).min(tail.len());
            let payload = &tail[..length];
            let (record_kind, lsn_count, body) = match kind % 4 {
                0 => (RecordKind::Data, 1, payload.to_vec()),
                1 => {
                    let (a, b) = payload.split_at(payload.len() / 2);
                    let mut body = Vec::new();
                    encode_batch_payload(&[a, b], &mut body);
                    (RecordKind::Batch, 2, body)
                }
                2 => (RecordKind::Data, 1, Vec::new()),
                _ => (RecordKind::Checkpoint, 1, payload.to_vec()),
            };
            let size = (24 + body.len()).div_ceil(8) * 8;
            if self.bytes.len() + size + SEAL_ROOM > SEGMENT_SIZE as usize {
                return &tail[length..];
            }
            input = &tail[length..];
            let synced_before = kind & 0x80 != 0;
            let header = RecordHeader::encode_flagged(
                self.header.salt,
                record_kind,
                self.next_lsn,
                synced_before,
                &body,
            );
            self.digest = chain_digest(
                self.digest,
                u32::from_le_bytes(header[0..4].try_into().unwrap()),
            );
            self.bytes.extend_from_slice(&header);
            self.bytes.extend_from_slice(&body);
            self.bytes.resize(self.bytes.len().next_multiple_of(8), 0);
            self.next_lsn += lsn_count;
            self.count += lsn_count;
        }
        input
    }

    /// Closes the segment with its seal; returns its bytes (zero-filled to
    /// the segment size) and the seal's offset and digest, which the next
    /// segment's header repeats.
    pub fn seal(mut self) -> (Vec<u8>, (u64, u32)) {
        let offset = self.bytes.len() as u64;
        let last_lsn = self.next_lsn - 1;
        let seal = SealPayload {
            record_count: self.count,
            last_lsn,
            digest: self.digest,
        }
        .encode();
        let header = RecordHeader::encode(self.header.salt, RecordKind::Seal, last_lsn, &seal);
        self.bytes.extend_from_slice(&header);
        self.bytes.extend_from_slice(&seal);
        let digest = self.digest;
        (self.finish(), (offset, digest))
    }

    /// The segment's bytes as they are, zero-filled to the segment size.
    pub fn finish(mut self) -> Vec<u8> {
        self.bytes.resize(SEGMENT_SIZE as usize, 0);
        self.bytes
    }
}
