//! Segment file names: the first LSN, zero-padded to 20 digits, then `.wal`,
//! so that lexical order is log order.

/// Name of the zero-filled file prepared ahead of the next rotation. It only
/// becomes a segment by an atomic rename; recovery deletes a leftover one.
pub const PREPARED_SEGMENT_NAME: &str = "next-segment.tmp";

const DIGITS: usize = 20;
const SUFFIX: &str = ".wal";

/// The file name of the segment whose first record has `first_lsn`.
pub fn segment_file_name(first_lsn: u64) -> String {
    format!("{first_lsn:0DIGITS$}{SUFFIX}")
}

/// The first LSN named by `name`, or `None` when `name` is not exactly a
/// segment name (20 ASCII digits and `.wal`, nothing else).
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SUFFIX)?;
    if digits.len() != DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_in_log_order() {
        assert_eq!(segment_file_name(1), "00000000000000000001.wal");
        assert_eq!(
            parse_segment_name(&segment_file_name(987_654_321)),
            Some(987_654_321)
        );
        assert!(segment_file_name(9) < segment_file_name(10));
    }

    #[test]
    fn near_misses_are_not_segments() {
        for name in [
            "1.wal",
            "0000000000000000001.wal",
            "000000000000000000001.wal",
            "0000000000000000000a.wal",
            "+0000000000000000001.wal",
            "00000000000000000001.wal.bak",
            "00000000000000000001.WAL",
            "99999999999999999999.wal",
        ] {
            assert_eq!(parse_segment_name(name), None, "{name}");
        }
    }
}
