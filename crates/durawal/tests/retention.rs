//! Retention: sealed segments removed by size, by age, never past the latest
//! checkpoint when told so, never under a reader unless it lags too far, and
//! by a worker thread without being asked.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{open, read_all, segment_files, SMALL_SEGMENT};
use durawal::{Error, Options, RecoveryMode, Retention, Wal};

fn options(retention: Retention) -> Options {
    Options {
        segment_size: SMALL_SEGMENT,
        recovery: RecoveryMode::TolerateTail,
        retention,
        ..Options::default()
    }
}

/// Appends `count` 1000-byte records and syncs.
fn fill(wal: &Wal, count: u64) {
    for index in 0..count {
        wal.append(&[index as u8; 1000]).unwrap();
    }
    wal.sync(None).unwrap();
}

fn segment_count(dir: &Path) -> usize {
    segment_files(dir).len()
}

#[test]
fn size_retention_keeps_the_segment_files_within_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path(), options(Retention::default()));
    fill(&wal, 600);
    let before = segment_count(dir.path());
    assert!(before >= 8, "{before}");
    let policy = Retention {
        bytes: Some(4 * SMALL_SEGMENT),
        ..Retention::default()
    };
    let first = wal.apply_retention(&policy).unwrap();
    assert_eq!(segment_count(dir.path()), 4);
    assert_eq!(wal.segment_usage(), (4, 4 * SMALL_SEGMENT));
    assert_eq!(read_all(&wal).first().unwrap().0, first);
    assert_eq!(read_all(&wal).last().unwrap().0, 600);
    // Within the limit: nothing more goes.
    assert_eq!(wal.apply_retention(&policy).unwrap(), first);
    wal.close().unwrap();
    let reopened = open(dir.path(), options(Retention::default()));
    assert_eq!(reopened.first_lsn(), first);
}

#[test]
fn age_retention_removes_segments_sealed_longer_ago_than_the_age() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path(), options(Retention::default()));
    fill(&wal, 300);
    let policy = Retention {
        age: Some(Duration::from_millis(200)),
        ..Retention::default()
    };
    let before = segment_count(dir.path());
    assert_eq!(
        wal.apply_retention(&policy).unwrap(),
        1,
        "nothing is that old yet"
    );
    std::thread::sleep(Duration::from_millis(300));
    fill(&wal, 10);
    let first = wal.apply_retention(&policy).unwrap();
    assert!(first > 1);
    assert!(segment_count(dir.path()) < before);
    // Segments found sealed at open are aged by their files' modification time.
    wal.close().unwrap();
    let reopened = open(dir.path(), options(Retention::default()));
    std::thread::sleep(Duration::from_millis(300));
    let after = reopened.apply_retention(&policy).unwrap();
    assert_eq!(segment_count(dir.path()), 1);
    assert_eq!(reopened.first_lsn(), after);
}

#[test]
fn keep_from_checkpoint_holds_retention_at_the_latest_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path(), options(Retention::default()));
    fill(&wal, 400);
    let policy = Retention {
        bytes: Some(SMALL_SEGMENT),
        keep_from_checkpoint: true,
        ..Retention::default()
    };
    // No checkpoint yet: nothing may go.
    assert_eq!(wal.apply_retention(&policy).unwrap(), 1);
    let checkpoint = wal.checkpoint(b"snapshot at 150").unwrap();
    wal.sync(None).unwrap();
    fill(&wal, 200);
    let first = wal.apply_retention(&policy).unwrap();
    assert!(
        first > 1 && first <= checkpoint,
        "{first} vs checkpoint {checkpoint}"
    );
    assert_eq!(wal.last_checkpoint(), Some(checkpoint));
    assert!(segment_count(dir.path()) > 1);
}

#[test]
fn a_reader_holds_retention_back_until_it_lags_past_the_limit_then_it_is_told() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path(), options(Retention::default()));
    fill(&wal, 600);
    let mut cursor = wal.replay(1, u64::MAX).unwrap();
    assert_eq!(
        cursor.next_batch(1, usize::MAX).unwrap().unwrap().lsns,
        vec![1]
    );
    let patient = Retention {
        bytes: Some(2 * SMALL_SEGMENT),
        ..Retention::default()
    };
    assert_eq!(wal.apply_retention(&patient).unwrap(), 1);
    let impatient = Retention {
        reader_lag_bytes: Some(4 * SMALL_SEGMENT),
        ..patient
    };
    assert!(wal.apply_retention(&impatient).unwrap() > 1);
    // The reader finishes the segment it has open, then finds the next gone.
    let error = loop {
        match cursor.next_batch(64, usize::MAX) {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the reader reached the end"),
            Err(error) => break error,
        }
    };
    assert!(matches!(error, Error::Truncated { .. }), "{error}");
    assert_eq!(error.code(), "WAL_TRUNCATED");
}

#[test]
fn the_worker_applies_the_policy_without_being_asked_and_stops_at_close() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(
        dir.path(),
        options(Retention {
            bytes: Some(3 * SMALL_SEGMENT),
            ..Retention::default()
        }),
    );
    fill(&wal, 600);
    let deadline = Instant::now() + Duration::from_secs(20);
    while segment_count(dir.path()) > 3 {
        assert!(Instant::now() < deadline, "retention never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(read_all(&wal).last().unwrap().0, 600);
    wal.close().unwrap();
    let reopened = open(dir.path(), options(Retention::default()));
    assert_eq!(reopened.last_lsn(), 600);
}
