//! `truncate_before`: whole segments below an LSN go, durably, and only
//! what no reader needs; a crash halfway leaves the old or the new log,
//! which recovery finishes.

mod common;

use std::path::Path;

use common::{copy_log, open, open_err, options, read_all, segment_files, Rng, SMALL_SEGMENT};
use durawal::{Error, RecoveryMode, Wal};

const MODE: RecoveryMode = RecoveryMode::TolerateTail;

/// A log of `count` 1 KiB records over many small segments, all durable.
fn filled_log(dir: &Path, count: u64) -> (Wal, Vec<(u64, Vec<u8>)>) {
    let wal = open(dir, options(SMALL_SEGMENT, MODE));
    let mut rng = Rng::new(7);
    let mut written = Vec::new();
    for _ in 0..count {
        let record = rng.bytes(1000);
        written.push((wal.append(&record).unwrap(), record));
    }
    wal.sync(None).unwrap();
    (wal, written)
}

fn first_lsns(dir: &Path) -> Vec<u64> {
    segment_files(dir)
        .iter()
        .map(|path| common::file_name(path)[..20].parse().unwrap())
        .collect()
}

#[test]
fn whole_segments_below_the_lsn_go_and_the_rest_replays_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, written) = filled_log(dir.path(), 400);
    let starts = first_lsns(dir.path());
    assert!(starts.len() >= 5, "{starts:?}");
    // Inside the fourth segment: the first three go, the fourth stays.
    let target = starts[3] + 2;
    assert_eq!(wal.truncate_before(target).unwrap(), starts[3]);
    assert_eq!(wal.first_lsn(), starts[3]);
    assert_eq!(first_lsns(dir.path()), starts[3..]);
    let kept: Vec<_> = written[starts[3] as usize - 1..].to_vec();
    assert_eq!(read_all(&wal), kept);
    // Nothing more is removable below the same LSN.
    assert_eq!(wal.truncate_before(target).unwrap(), starts[3]);
    let more = wal.append(b"after").unwrap();
    wal.sync(None).unwrap();
    wal.close().unwrap();

    let reopened = open(dir.path(), options(SMALL_SEGMENT, RecoveryMode::Absolute));
    assert_eq!(reopened.first_lsn(), starts[3]);
    assert!(reopened.recovery().removed_files.is_empty());
    let mut expected = kept;
    expected.push((more, b"after".to_vec()));
    assert_eq!(read_all(&reopened), expected);
}

#[test]
fn the_segment_appends_go_to_and_undurable_records_are_never_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = filled_log(dir.path(), 300);
    let last_segment = *first_lsns(dir.path()).last().unwrap();
    assert_eq!(wal.truncate_before(u64::MAX).unwrap(), last_segment);
    assert_eq!(first_lsns(dir.path()), vec![last_segment]);
    assert_eq!(read_all(&wal).first().unwrap().0, last_segment);
}

#[test]
fn a_replay_in_progress_keeps_its_segments_until_it_moves_on() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, written) = filled_log(dir.path(), 400);
    let starts = first_lsns(dir.path());
    let mut cursor = wal.replay(starts[1] + 1, u64::MAX).unwrap();
    // The cursor pins LSN starts[1] + 1: the segment holding it stays.
    assert_eq!(wal.truncate_before(u64::MAX).unwrap(), starts[1]);
    let mut seen = Vec::new();
    while let Some(batch) = cursor.next_batch(16, 1 << 20).unwrap() {
        seen.extend(batch.lsns);
    }
    let expected: Vec<u64> = (starts[1] + 1..=written.len() as u64).collect();
    assert_eq!(seen, expected);
    drop(cursor);
    assert_eq!(
        wal.truncate_before(u64::MAX).unwrap(),
        *starts.last().unwrap()
    );
}

#[test]
fn recovery_finishes_a_truncation_that_a_crash_interrupted_after_head() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, written) = filled_log(dir.path(), 400);
    let before = copy_log(dir.path());
    let starts = first_lsns(dir.path());
    wal.truncate_before(starts[2]).unwrap();
    wal.close().unwrap();
    // The crash: HEAD is in place, the old segments were not yet unlinked.
    let crashed = copy_log(before.path());
    std::fs::copy(dir.path().join("HEAD"), crashed.path().join("HEAD")).unwrap();
    let wal = open(crashed.path(), options(SMALL_SEGMENT, MODE));
    assert_eq!(wal.first_lsn(), starts[2]);
    let mut removed = wal.recovery().removed_files.clone();
    removed.retain(|name| name.ends_with(".wal"));
    removed.sort();
    let expected_removed: Vec<String> = starts[..2]
        .iter()
        .map(|&first| common::segment_file_name(first))
        .collect();
    assert_eq!(removed, expected_removed);
    assert_eq!(first_lsns(crashed.path()), starts[2..]);
    assert_eq!(read_all(&wal), written[starts[2] as usize - 1..]);
}

#[test]
fn a_missing_damaged_or_foreign_head_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = filled_log(dir.path(), 400);
    let starts = first_lsns(dir.path());
    wal.truncate_before(starts[2]).unwrap();
    wal.close().unwrap();

    // The segment HEAD names is gone.
    let missing = copy_log(dir.path());
    std::fs::remove_file(missing.path().join(common::segment_file_name(starts[2]))).unwrap();
    let error = open_err(missing.path(), options(SMALL_SEGMENT, MODE));
    assert!(
        matches!(&error, Error::Corrupt { file, reason, .. } if file.ends_with("HEAD") && reason.contains("missing")),
        "{error}"
    );

    // HEAD damaged.
    let damaged = copy_log(dir.path());
    common::flip_bit(&damaged.path().join("HEAD"), 26, 0);
    let error = open_err(damaged.path(), options(SMALL_SEGMENT, MODE));
    assert!(
        matches!(&error, Error::Corrupt { file, .. } if file.ends_with("HEAD")),
        "{error}"
    );

    // HEAD of another log.
    let other = tempfile::tempdir().unwrap();
    let (other_wal, _) = filled_log(other.path(), 400);
    other_wal.truncate_before(starts[2]).unwrap();
    other_wal.close().unwrap();
    let foreign = copy_log(dir.path());
    std::fs::copy(other.path().join("HEAD"), foreign.path().join("HEAD")).unwrap();
    let error = open_err(foreign.path(), options(SMALL_SEGMENT, MODE));
    assert!(
        matches!(&error, Error::Corrupt { reason, .. } if reason.contains("another log")),
        "{error}"
    );
}

// ---- truncate_after ----

fn all_modes() -> [RecoveryMode; 4] {
    [
        RecoveryMode::TolerateTail,
        RecoveryMode::Absolute,
        RecoveryMode::PointInTime,
        RecoveryMode::SkipCorrupted,
    ]
}

#[test]
fn a_cut_inside_the_last_segment_takes_unsynced_records_and_appends_continue_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path(), options(SMALL_SEGMENT, MODE));
    let mut written = Vec::new();
    for index in 0..20u64 {
        let record = vec![index as u8 + 1; 100];
        written.push((wal.append(&record).unwrap(), record));
    }
    // Ten records durable, ten only appended.
    wal.sync(Some(10)).unwrap();
    assert_eq!(wal.truncate_after(12).unwrap(), 12);
    assert_eq!((wal.last_lsn(), wal.durable_lsn()), (12, 12));
    written.truncate(12);
    assert_eq!(read_all(&wal), written);
    let next = wal.append(b"replacement").unwrap();
    assert_eq!(next, 13);
    wal.sync(None).unwrap();
    written.push((13, b"replacement".to_vec()));
    assert_eq!(read_all(&wal), written);
    wal.close().unwrap();
    for mode in all_modes() {
        let copy = copy_log(dir.path());
        let reopened = open(copy.path(), options(SMALL_SEGMENT, mode));
        assert_eq!(read_all(&reopened), written, "{mode:?}");
        assert_eq!(reopened.recovery().truncated_bytes, 0);
    }
}

#[test]
fn a_cut_across_segments_removes_the_later_ones_and_the_log_grows_again_through_rotations() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, mut written) = filled_log(dir.path(), 400);
    let starts = first_lsns(dir.path());
    let lsn = starts[1] + 3;
    assert_eq!(wal.truncate_after(lsn).unwrap(), lsn);
    assert_eq!(first_lsns(dir.path()), starts[..2]);
    written.truncate(lsn as usize);
    assert_eq!(read_all(&wal), written);
    // Enough to fill the cut segment and several more.
    let mut rng = Rng::new(99);
    for _ in 0..300 {
        let record = rng.bytes(900);
        written.push((wal.append(&record).unwrap(), record));
    }
    wal.sync(None).unwrap();
    assert!(first_lsns(dir.path()).len() > 3);
    assert_eq!(read_all(&wal), written);
    wal.close().unwrap();
    let reopened = open(dir.path(), options(SMALL_SEGMENT, RecoveryMode::Absolute));
    assert_eq!(read_all(&reopened), written);
}

#[test]
fn a_cut_at_a_segment_end_keeps_its_seal_and_a_cut_inside_a_batch_removes_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, mut written) = filled_log(dir.path(), 200);
    let starts = first_lsns(dir.path());
    let end_of_second = starts[2] - 1;
    assert_eq!(wal.truncate_after(end_of_second).unwrap(), end_of_second);
    assert_eq!(first_lsns(dir.path()), starts[..2]);
    written.truncate(end_of_second as usize);
    let (first, last) = wal.append_batch(&[b"a", b"b", b"c"]).unwrap();
    assert_eq!(first, end_of_second + 1);
    // The next append opened a new segment under the old name.
    assert_eq!(first_lsns(dir.path()).len(), 2);
    wal.sync(None).unwrap();
    assert_eq!(first_lsns(dir.path()), starts[..3]);
    // Inside the batch: the whole batch goes.
    assert_eq!(wal.truncate_after(first + 1).unwrap(), end_of_second);
    assert_eq!(wal.last_lsn(), end_of_second);
    assert_eq!(read_all(&wal), written);
    assert!(last > first);
    wal.close().unwrap();
    let reopened = open(dir.path(), options(SMALL_SEGMENT, RecoveryMode::Absolute));
    assert_eq!(read_all(&reopened), written);
}

#[test]
fn cuts_below_the_first_record_are_refused_and_cuts_past_the_end_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, written) = filled_log(dir.path(), 300);
    let starts = first_lsns(dir.path());
    wal.truncate_before(starts[2]).unwrap();
    let error = wal.truncate_after(starts[2] - 2).unwrap_err();
    assert_eq!(error.code(), "WAL_INVALID_ARGUMENT", "{error}");
    assert_eq!(wal.truncate_after(300).unwrap(), 300);
    assert_eq!(wal.truncate_after(u64::MAX).unwrap(), 300);
    assert_eq!(read_all(&wal), written[starts[2] as usize - 1..]);
    // Everything: the first segment stays, empty, and the log continues at its first LSN.
    assert_eq!(wal.truncate_after(starts[2] - 1).unwrap(), starts[2] - 1);
    assert_eq!(wal.first_lsn(), 0);
    assert_eq!(wal.append(b"again").unwrap(), starts[2]);
    wal.sync(None).unwrap();
    wal.close().unwrap();
    let reopened = open(dir.path(), options(SMALL_SEGMENT, RecoveryMode::Absolute));
    assert_eq!(read_all(&reopened), vec![(starts[2], b"again".to_vec())]);
}

/// Writes the `TRUNCATE` intent for `lsn` into a copy of a log, as if the
/// writer crashed right after writing it.
fn write_cut_intent(dir: &Path, lsn: u64) {
    let first = &segment_files(dir)[0];
    let log_id: [u8; 16] = common::read_file(first)[16..32].try_into().unwrap();
    let record = durawal::format::ControlRecord {
        kind: durawal::format::ControlKind::Cut,
        log_id,
        lsn,
    };
    std::fs::write(dir.join("TRUNCATE"), record.encode()).unwrap();
}

#[test]
fn recovery_finishes_a_cut_that_a_crash_interrupted_at_any_step() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, written) = filled_log(dir.path(), 400);
    wal.close().unwrap();
    let starts = first_lsns(dir.path());
    let lsn = starts[2] + 5;
    let kept = &written[..lsn as usize];
    // Intent only; intent and some later segments removed; intent and all removed.
    for removed_later in [0, 1, starts.len() - 3] {
        for mode in all_modes() {
            let crashed = copy_log(dir.path());
            write_cut_intent(crashed.path(), lsn);
            for first in starts.iter().rev().take(removed_later) {
                std::fs::remove_file(crashed.path().join(common::segment_file_name(*first)))
                    .unwrap();
            }
            let wal = open(crashed.path(), options(SMALL_SEGMENT, mode));
            assert_eq!(read_all(&wal), kept, "{mode:?}, {removed_later} removed");
            assert!(!crashed.path().join("TRUNCATE").exists());
            assert_eq!(first_lsns(crashed.path()), starts[..3]);
            assert_eq!(wal.append(b"next").unwrap(), lsn + 1);
            wal.sync(None).unwrap();
            wal.close().unwrap();
            let again = open(
                crashed.path(),
                options(SMALL_SEGMENT, RecoveryMode::Absolute),
            );
            assert_eq!(again.last_lsn(), lsn + 1);
        }
    }
}

#[test]
fn a_damaged_or_foreign_cut_intent_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = filled_log(dir.path(), 100);
    wal.close().unwrap();
    let damaged = copy_log(dir.path());
    write_cut_intent(damaged.path(), 50);
    common::flip_bit(&damaged.path().join("TRUNCATE"), 25, 3);
    let error = open_err(damaged.path(), options(SMALL_SEGMENT, MODE));
    assert!(
        matches!(&error, Error::Corrupt { file, .. } if file.ends_with("TRUNCATE")),
        "{error}"
    );
    let foreign = copy_log(dir.path());
    std::fs::write(
        foreign.path().join("TRUNCATE"),
        durawal::format::ControlRecord {
            kind: durawal::format::ControlKind::Cut,
            log_id: [9; 16],
            lsn: 50,
        }
        .encode(),
    )
    .unwrap();
    let error = open_err(foreign.path(), options(SMALL_SEGMENT, MODE));
    assert!(
        matches!(&error, Error::Corrupt { reason, .. } if reason.contains("another log")),
        "{error}"
    );
}
