//! Pins the split of recovery into a read-only inspection and the repairs it
//! applies: inspecting a log that needs every kind of repair (a leftover
//! prepared segment, segments point-in-time recovery drops, a torn tail to
//! zero) changes nothing on disk — through a backend that refuses every
//! write, removal, rename and directory sync — and names exactly the repairs
//! that opening the log then makes.

mod common;

use std::fs;
use std::io;
use std::path::Path;
use std::sync::Arc;

use common::faults::{InjectingStorage, Operation};
use common::*;
use durawal::format::PREPARED_SEGMENT_NAME;
use durawal::storage::OpenMode;
use durawal::{inspect, RecoveryMode, Repair, Wal};

/// A backend on which anything but reading fails.
fn read_only_disk() -> InjectingStorage {
    InjectingStorage::new(|operation| match operation {
        Operation::Open {
            mode: OpenMode::Read,
            ..
        }
        | Operation::Read { .. } => None,
        _ => Some(io::Error::from_raw_os_error(libc::EROFS)),
    })
}

/// Every file in `dir` with its bytes.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (
                entry.file_name().to_string_lossy().into_owned(),
                fs::read(entry.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn inspection_writes_nothing_and_names_the_repairs_open_makes() {
    let mut rng = Rng::from_env(0x1a5e_c700);
    let dir = tempfile::tempdir().unwrap();
    let mut expected = Expected::new(SMALL_SEGMENT);
    let wal = open(
        dir.path(),
        options(SMALL_SEGMENT, RecoveryMode::TolerateTail),
    );
    while expected.layout.segments.len() < 4 || expected.layout.records_in(3).len() < 5 {
        let len = rng.range(500, 2000) as usize;
        expected.append(&wal, rng.nonzero_bytes(len));
    }
    wal.close().unwrap();
    // Three repairs to plan: a leftover prepared segment to remove; a damaged
    // header in the third segment, so point-in-time recovery drops it and the
    // fourth; and a damaged last record in the second segment, which becomes
    // the last one, so its tail is cut from there.
    fs::write(dir.path().join(PREPARED_SEGMENT_NAME), vec![0u8; 4096]).unwrap();
    let third = dir.path().join(expected.layout.file_name(2));
    flip_bit(&third, 20, 3);
    let second = dir.path().join(expected.layout.file_name(1));
    let victim = expected.layout.records_in(1).last().unwrap().clone();
    flip_bit(&second, victim.offset + 30, 1);

    let before = snapshot(dir.path());
    let inspection = inspect(&read_only_disk(), dir.path(), RecoveryMode::PointInTime).unwrap();
    assert!(
        snapshot(dir.path()) == before,
        "inspection changed the directory"
    );
    let fourth = dir.path().join(expected.layout.file_name(3));
    let zeroed = match inspection.repairs.as_slice() {
        [Repair::RemoveFile(prepared), Repair::RemoveFile(dropped_third), Repair::RemoveFile(dropped_fourth), zero @ Repair::Zero { .. }] =>
        {
            assert_eq!(prepared, &dir.path().join(PREPARED_SEGMENT_NAME));
            assert_eq!((dropped_third, dropped_fourth), (&third, &fourth));
            zero.clone()
        }
        other => panic!("unexpected repairs {other:?}"),
    };
    assert_eq!(
        zeroed,
        Repair::Zero {
            path: second.clone(),
            from: victim.offset,
            to: end_of_nonzero(&read_file(&second), victim.offset),
        }
    );
    let report = inspection.report.clone();
    assert_eq!(report.records, victim.first_lsn - 1);

    // Opening applies exactly those repairs and reports the same.
    let wal = Wal::open_with(
        dir.path(),
        options(SMALL_SEGMENT, RecoveryMode::PointInTime),
        Arc::new(InjectingStorage::new(|_| None)),
        None,
    )
    .unwrap();
    assert_eq!(wal.recovery(), &report);
    assert_log(&wal, &expected.payloads[..victim.first_lsn as usize - 1]);
    drop(wal);
    assert!(!third.exists() && !fourth.exists());
}
