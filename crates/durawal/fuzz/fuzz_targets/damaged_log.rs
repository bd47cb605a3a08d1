//! One segment of valid records (CRCs fixed up, so the fuzzer gets past
//! them), then damaged where the fuzzer says, compared with the reference
//! decoder in every recovery mode. The input is records (see
//! `SegmentBuilder::append_from`) up to a 0xFF marker, then damage (an
//! offset and a byte to xor there) triples.
#![no_main]

use durawal::format::SEGMENT_HEADER_SIZE;
use durawal_fuzz::{check_against_reference, SegmentBuilder, SEGMENT_SIZE};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut builder = SegmentBuilder::new(0xfeed, [3; 16], 1, None);
    let rest = builder.append_from(data);
    let mut segment = builder.finish();
    for triple in rest.chunks_exact(3) {
        let offset = u16::from_le_bytes([triple[0], triple[1]]) as usize;
        let at = SEGMENT_HEADER_SIZE + offset % (SEGMENT_SIZE as usize - SEGMENT_HEADER_SIZE);
        segment[at] ^= triple[2];
    }
    check_against_reference(&segment);
});
