//! A replay cursor that follows the log: extended to each new durable LSN,
//! it goes on from where it stopped, across rotations, and never reads past
//! what it was extended to.

mod common;

use common::{drain, open, options, Rng, SMALL_SEGMENT};
use durawal::RecoveryMode;

#[test]
fn a_cursor_extended_to_each_durable_lsn_reads_every_record_once_across_rotations() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(
        dir.path(),
        options(SMALL_SEGMENT, RecoveryMode::TolerateTail),
    );
    // Started on an empty log: from 1, nothing durable yet.
    let mut cursor = wal.replay(1, u64::MAX).unwrap();
    assert!(drain(&mut cursor).is_empty());
    let mut rng = Rng::new(3);
    let mut written = Vec::new();
    let mut read = Vec::new();
    for round in 0..40 {
        for _ in 0..rng.range(1, 30) {
            let length = rng.range(0, 3000) as usize;
            let record = rng.bytes(length);
            written.push((wal.append(&record).unwrap(), record));
        }
        // Appended but not durable: nothing new to read.
        cursor.follow_to(wal.durable_lsn()).unwrap();
        read.extend(drain(&mut cursor));
        assert_eq!(read.len() as u64, wal.durable_lsn(), "round {round}");
        wal.sync(None).unwrap();
        cursor.follow_to(wal.durable_lsn()).unwrap();
        read.extend(drain(&mut cursor));
        assert_eq!(read, written, "round {round}");
    }
    assert!(common::segment_files(dir.path()).len() > 5);
}

#[test]
fn a_cursor_starting_past_the_end_waits_for_its_first_record() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(
        dir.path(),
        options(SMALL_SEGMENT, RecoveryMode::TolerateTail),
    );
    for index in 0..50u8 {
        wal.append(&[index; 2000]).unwrap();
    }
    wal.sync(None).unwrap();
    let mut cursor = wal.replay(61, u64::MAX).unwrap();
    assert!(drain(&mut cursor).is_empty());
    for index in 50..100u8 {
        wal.append(&[index; 2000]).unwrap();
    }
    wal.sync(None).unwrap();
    cursor.follow_to(wal.durable_lsn()).unwrap();
    let lsns: Vec<u64> = drain(&mut cursor).into_iter().map(|(lsn, _)| lsn).collect();
    assert_eq!(lsns, (61..=100).collect::<Vec<_>>());
}
