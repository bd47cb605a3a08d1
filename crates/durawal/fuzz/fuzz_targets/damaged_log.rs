//! A log of valid records (CRCs fixed up, so the fuzzer gets past them),
//! possibly over two segments, then damaged where the fuzzer says: the input
//! is records (a kind byte, a length byte, that many payload bytes) up to a
//! 0xFF marker, then damage (an offset and a byte to xor there) pairs.
#![no_main]

use durawal::format::{RecordHeader, RecordKind, SegmentHeader, SEGMENT_HEADER_SIZE};
use durawal_fuzz::{open_and_replay, segment_name, SEGMENT_SIZE};

const SALT: u32 = 0xfeed;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let header = SegmentHeader {
        version: durawal::format::FORMAT_VERSION,
        salt: SALT,
        log_id: [3; 16],
        first_lsn: 1,
        prev_seal_offset: 0,
        prev_digest: 0,
    };
    let mut segment = header.encode();
    let mut lsn = 1u64;
    let mut rest = data;
    while let [kind, length, tail @ ..] = rest {
        if *kind == 0xff {
            rest = &rest[1..];
            break;
        }
        let length = (*length as usize).min(tail.len());
        let payload = &tail[..length];
        rest = &tail[length..];
        let (kind, lsn_count, body) = match kind % 3 {
            0 => (RecordKind::Data, 1, payload.to_vec()),
            1 => {
                // A batch of the payload split in two records.
                let (a, b) = payload.split_at(payload.len() / 2);
                let mut body = Vec::new();
                durawal::format::encode_batch_payload(&[a, b], &mut body);
                (RecordKind::Batch, 2, body)
            }
            _ => (RecordKind::Data, 1, Vec::new()),
        };
        let record_size = (24 + body.len()).div_ceil(8) * 8;
        if segment.len() + record_size + 48 > SEGMENT_SIZE as usize {
            break;
        }
        segment.extend_from_slice(&RecordHeader::encode(SALT, kind, lsn, &body));
        segment.extend_from_slice(&body);
        segment.resize(segment.len().next_multiple_of(8), 0);
        lsn += lsn_count;
    }
    segment.resize(SEGMENT_SIZE as usize, 0);
    for pair in rest.chunks_exact(3) {
        let offset = u16::from_le_bytes([pair[0], pair[1]]) as usize;
        let at = SEGMENT_HEADER_SIZE + offset % (SEGMENT_SIZE as usize - SEGMENT_HEADER_SIZE);
        segment[at] ^= pair[2];
    }
    open_and_replay(&[(segment_name(1), segment)]);
});
