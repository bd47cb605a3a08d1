//! Logs written by every earlier format version still open, replay byte for
//! byte to what their writer recorded, and take new records; and today's
//! writer still writes today's fixture byte for byte.
//!
//! Each `tests/compat/v<N>/` holds `log/` (written by `examples/compat_fixture.rs`
//! at format version N) and `expected.txt` (`<lsn> <hex payload>` per record,
//! then ` checkpoint` for a checkpoint record).

mod common;
mod compat_writer;

use std::path::{Path, PathBuf};

use common::{checkpoint_lsns, copy_log, open, options, read_all, SMALL_SEGMENT};
use durawal::RecoveryMode;

fn fixture_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no fixtures under {}", root.display());
    dirs
}

/// The records of a fixture, and the LSNs of its checkpoints.
fn expected(dir: &Path) -> (Vec<(u64, Vec<u8>)>, Vec<u64>) {
    let mut records = Vec::new();
    let mut checkpoints = Vec::new();
    for line in std::fs::read_to_string(dir.join("expected.txt"))
        .unwrap()
        .lines()
    {
        let mut fields = line.split(' ');
        let lsn: u64 = fields.next().unwrap().parse().unwrap();
        let hex = fields.next().unwrap_or_default();
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        if fields.next() == Some("checkpoint") {
            checkpoints.push(lsn);
        }
        records.push((lsn, bytes));
    }
    (records, checkpoints)
}

#[test]
fn every_fixture_replays_what_its_writer_wrote_in_every_recovery_mode() {
    for dir in fixture_dirs() {
        let (want, checkpoints) = expected(&dir);
        assert!(want.len() >= 100, "{}: fixture too small", dir.display());
        for mode in [
            RecoveryMode::TolerateTail,
            RecoveryMode::Absolute,
            RecoveryMode::PointInTime,
            RecoveryMode::SkipCorrupted,
        ] {
            let copy = copy_log(&dir.join("log"));
            let wal = open(copy.path(), options(SMALL_SEGMENT, mode));
            assert_eq!(wal.recovery().truncated_bytes, 0, "{}", dir.display());
            assert_eq!(read_all(&wal), want, "{} in {mode:?}", dir.display());
            assert_eq!(checkpoint_lsns(&wal, 1), checkpoints);
            assert_eq!(wal.last_checkpoint(), checkpoints.last().copied());
        }
    }
}

#[test]
fn every_fixture_takes_new_records_across_a_rotation_and_reopens() {
    for dir in fixture_dirs() {
        let (mut want, _) = expected(&dir);
        let copy = copy_log(&dir.join("log"));
        let wal = open(copy.path(), options(SMALL_SEGMENT, RecoveryMode::Absolute));
        for index in 0..40u64 {
            let record = vec![index as u8; 2000];
            let lsn = wal.append(&record).unwrap();
            assert_eq!(lsn, want.last().unwrap().0 + 1);
            want.push((lsn, record));
        }
        wal.sync(None).unwrap();
        wal.close().unwrap();
        let reopened = open(copy.path(), options(SMALL_SEGMENT, RecoveryMode::Absolute));
        assert_eq!(read_all(&reopened), want, "{}", dir.display());
    }
}

/// The files of a log directory by name (the lock file, which holds no log
/// data, left out).
fn log_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| common::file_name(path) != durawal::LOCK_FILE_NAME)
        .map(|path| (common::file_name(&path), common::read_file(&path)))
        .collect();
    files.sort();
    files
}

#[test]
fn todays_writer_writes_todays_fixture_byte_for_byte() {
    let committed = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/compat")
        .join(format!("v{}", durawal::format::FORMAT_VERSION));
    let written = tempfile::tempdir().unwrap();
    compat_writer::write_fixture(written.path()).unwrap();
    assert_eq!(
        std::fs::read_to_string(written.path().join("expected.txt")).unwrap(),
        std::fs::read_to_string(committed.join("expected.txt")).unwrap(),
        "expected.txt"
    );
    let (written, committed) = (
        log_files(&written.path().join("log")),
        log_files(&committed.join("log")),
    );
    let names = |files: &[(String, Vec<u8>)]| {
        files
            .iter()
            .map(|(name, _)| name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&written), names(&committed));
    for ((name, written), (_, committed)) in written.iter().zip(&committed) {
        let first_difference = written.iter().zip(committed).position(|(a, b)| a != b);
        assert!(
            written.len() == committed.len() && first_difference.is_none(),
            "{name} differs from the committed fixture (lengths {} and {}, first different byte {first_difference:?})",
            written.len(),
            committed.len()
        );
    }
}
