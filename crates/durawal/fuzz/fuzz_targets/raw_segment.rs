//! One segment whose header is valid and whose records are the fuzzer's raw
//! bytes: record headers, lengths and CRCs as they come, so every damage path
//! of the scanner is reached; compared with the reference decoder.
#![no_main]

use durawal::format::{SegmentHeader, SEGMENT_HEADER_SIZE};
use durawal_fuzz::{check_against_reference, SEGMENT_SIZE};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let header = SegmentHeader {
        version: durawal::format::FORMAT_VERSION,
        salt: 0x5eed,
        log_id: [7; 16],
        first_lsn: 1,
        prev_seal_offset: 0,
        prev_digest: 0,
    };
    let mut segment = header.encode();
    segment.extend_from_slice(&data[..data.len().min(SEGMENT_SIZE as usize - SEGMENT_HEADER_SIZE)]);
    segment.resize(SEGMENT_SIZE as usize, 0);
    check_against_reference(&segment);
});
