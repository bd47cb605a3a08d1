//! Pins the line format 3 draws between a torn write and damage to synced
//! records (FORMAT.md, "What was synced"). The first record of each flush
//! carries the synced-before flag; damage followed by such a record hit
//! bytes that had been synced, which a crash cannot tear, so recovery
//! refuses it (`Corrupt`, naming file, offset and the LSNs lost) instead of
//! cutting acknowledged records as a tail, however close to the end it is.
//! Damage in the last flush, which no flagged record follows, is what a
//! crash can leave and is still cut. Point-in-time recovery keeps the valid
//! prefix and says the cut records had been synced.

mod common;

use common::*;
use durawal::RecoveryMode;

const SEGMENT: u64 = 1 << 20;
const RECORDS: u64 = 40;
/// Records per flush: the log syncs after every third.
const PER_FLUSH: u64 = 3;

/// A one-segment log written in flushes of `PER_FLUSH` records.
fn log_in_flushes() -> (tempfile::TempDir, Expected) {
    let mut rng = Rng::from_env(0x5ced_0001);
    let dir = tempfile::tempdir().unwrap();
    let mut expected = Expected::new(SEGMENT);
    let wal = open(dir.path(), options(SEGMENT, RecoveryMode::TolerateTail));
    for lsn in 1..=RECORDS {
        let length = rng.range(1, 700) as usize;
        expected.append(&wal, rng.nonzero_bytes(length));
        if lsn % PER_FLUSH == 0 {
            wal.sync(None).unwrap();
        }
    }
    wal.close().unwrap();
    assert_eq!(expected.layout.segments.len(), 1);
    (dir, expected)
}

#[test]
fn the_first_record_of_every_flush_carries_the_flag() {
    let (dir, expected) = log_in_flushes();
    let bytes = read_file(&dir.path().join(expected.layout.file_name(0)));
    let flagged: Vec<u64> = expected
        .layout
        .records
        .iter()
        .filter(|record| synced_before(&bytes, record.offset))
        .map(|record| record.first_lsn)
        .collect();
    // LSN 1 too: the segment header was synced when the log was created.
    let wanted: Vec<u64> = (1..=RECORDS).step_by(PER_FLUSH as usize).collect();
    assert_eq!(flagged, wanted);
}

#[test]
fn a_bit_flip_in_a_synced_record_is_refused_and_in_the_last_flush_is_cut() {
    let (dir, expected) = log_in_flushes();
    let name = expected.layout.file_name(0);
    let last_flush_starts = RECORDS - (RECORDS - 1) % PER_FLUSH;
    for record in &expected.layout.records {
        let lsn = record.first_lsn;
        let copy = copy_log(dir.path());
        let path = copy.path().join(&name);
        flip_bit(&path, record.offset + 24 + record.payload_len / 2, 3);
        let damaged = read_file(&path);
        let tolerate = options(SEGMENT, RecoveryMode::TolerateTail);
        if lsn < last_flush_starts {
            let error = open_err(copy.path(), tolerate);
            assert_eq!(corrupt_location(&error), (path.clone(), record.offset));
            let next_flush = (lsn - 1) / PER_FLUSH * PER_FLUSH + PER_FLUSH + 1;
            let message = error.to_string();
            assert!(
                message.contains("damage to synced records")
                    && message.contains(&format!("LSNs {lsn} to {}", next_flush - 1)),
                "LSN {lsn}: {message}"
            );
            assert!(
                read_file(&path) == damaged,
                "a refused open changed the segment"
            );
            let wal = open(copy.path(), options(SEGMENT, RecoveryMode::PointInTime));
            let report = wal.recovery().clone();
            assert_eq!(report.records, lsn - 1);
            assert!(
                report
                    .truncated_reason
                    .as_deref()
                    .unwrap_or("")
                    .contains("synced"),
                "{report:?}"
            );
            assert_log(&wal, &expected.payloads[..lsn as usize - 1]);
        } else {
            let wal = open(copy.path(), tolerate);
            assert_eq!(
                wal.recovery().records,
                lsn - 1,
                "LSN {lsn} is in the last flush"
            );
            assert_log(&wal, &expected.payloads[..lsn as usize - 1]);
        }
    }
}
