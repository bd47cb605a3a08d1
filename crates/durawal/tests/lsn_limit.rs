//! Pins the LSN ceiling: LSNs are exposed to JavaScript as numbers, so the
//! log refuses to assign one past 2^53 - 1 (`LsnExhausted`), for single
//! records and for batches that would straddle the limit, and a refused
//! append leaves the log unchanged.

use std::fs;

use durawal::format::{segment_file_name, SegmentHeader};
use durawal::{Error, Options, Wal, MAX_LSN};

const SEGMENT_SIZE: u64 = 64 * 1024;

/// A log whose only segment starts two LSNs below the ceiling.
fn log_near_the_ceiling() -> (tempfile::TempDir, u64) {
    let dir = tempfile::tempdir().unwrap();
    let first_lsn = MAX_LSN - 1;
    let header = SegmentHeader {
        version: durawal::format::FORMAT_VERSION,
        salt: 0x1234_5678,
        log_id: [9; 16],
        first_lsn,
        prev_seal_offset: 0,
        prev_digest: 0,
    };
    let mut bytes = header.encode();
    bytes.resize(SEGMENT_SIZE as usize, 0);
    fs::write(dir.path().join(segment_file_name(first_lsn)), bytes).unwrap();
    (dir, first_lsn)
}

fn options() -> Options {
    Options {
        segment_size: SEGMENT_SIZE,
        ..Options::default()
    }
}

#[test]
fn appends_stop_at_the_largest_safe_integer() {
    let (dir, first_lsn) = log_near_the_ceiling();
    let wal = Wal::open(dir.path(), options()).unwrap();
    assert_eq!(wal.append(b"second to last").unwrap(), first_lsn);
    let refused = wal.append_batch(&[b"a", b"b"]).unwrap_err();
    assert!(
        matches!(refused, Error::LsnExhausted { max } if max == MAX_LSN),
        "{refused:?}"
    );
    assert_eq!(wal.append(b"last").unwrap(), MAX_LSN);
    let refused = wal.append(b"one too many").unwrap_err();
    assert_eq!(refused.code(), "WAL_LSN_EXHAUSTED");
    assert_eq!(wal.sync(None).unwrap(), MAX_LSN);
    wal.close().unwrap();

    let reopened = Wal::open(dir.path(), options()).unwrap();
    assert_eq!(reopened.last_lsn(), MAX_LSN);
    let mut cursor = reopened.replay(first_lsn, MAX_LSN).unwrap();
    let batch = cursor.next_batch(10, 1 << 20).unwrap().unwrap();
    assert_eq!(batch.lsns, vec![first_lsn, MAX_LSN]);
    assert_eq!(&batch.data[..], b"second to lastlast");
    assert!(reopened.append(b"still too many").is_err());
    reopened.close().unwrap();
}
