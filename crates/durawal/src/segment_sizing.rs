//! How big each new segment file is.
//!
//! A new log starts with a small first segment and each new segment doubles
//! the one before, up to `segmentSize`, so a log that holds little takes
//! little disk (an empty log: 1 MiB plus the 2 MiB prepared next) while a
//! busy one reaches full-size, zero-filled segments after about
//! `segmentSize` bytes of records. Segments are never grown in place: each
//! is zero-filled to its size before it takes records, which keeps every
//! data sync a sync of already-written blocks (see `segment_files.rs`).

use crate::format::{SEAL_RECORD_SIZE, SEGMENT_HEADER_SIZE};
use crate::options::{MIN_SEGMENT_SIZE, SEGMENT_SIZE_GRANULE};

/// Size of the first segment of a new log (or `segmentSize`, when smaller).
pub const FIRST_SEGMENT_SIZE: u64 = 1 << 20;

/// Size of the first segment of a new log whose segments go up to `largest`.
pub fn first_segment_size(largest: u64) -> u64 {
    FIRST_SEGMENT_SIZE.min(largest)
}

/// Size of the segment that follows one of `current` bytes: twice as big,
/// up to `largest`, and big enough for a record of `record_bytes` bytes
/// (header and padding included) with the seal after it.
pub fn next_segment_size(current: u64, record_bytes: u64, largest: u64) -> u64 {
    let needed = SEGMENT_HEADER_SIZE as u64 + record_bytes + SEAL_RECORD_SIZE as u64;
    current
        .saturating_mul(2)
        .max(needed.next_multiple_of(SEGMENT_SIZE_GRANULE))
        .clamp(MIN_SEGMENT_SIZE, largest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_double_up_to_the_largest_and_always_fit_the_record() {
        let largest = 64 << 20;
        assert_eq!(first_segment_size(largest), 1 << 20);
        assert_eq!(first_segment_size(256 << 10), 256 << 10);
        assert_eq!(next_segment_size(1 << 20, 100, largest), 2 << 20);
        assert_eq!(next_segment_size(32 << 20, 100, largest), largest);
        assert_eq!(next_segment_size(largest, 100, largest), largest);
        // A record larger than twice the current segment gets a segment of its own size.
        let big = 10 << 20;
        let size = next_segment_size(1 << 20, big, largest);
        assert!(size >= big + 4096 + 48 && size.is_multiple_of(SEGMENT_SIZE_GRANULE));
        assert!(size < 11 << 20);
    }
}
