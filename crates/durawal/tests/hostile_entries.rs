//! Pins how open treats directory entries that are not regular files where
//! the log expects its own files: a FIFO, a directory or a symbolic link named
//! like a segment, and a `LOCK` that is a symbolic link (dangling or not) or a
//! FIFO. Each is refused with `Corrupt` naming the entry; open never blocks on
//! a FIFO (which would hang `Wal.open` and then Node's exit), never follows a
//! link, and never creates or changes anything outside the log directory.
#![cfg(unix)]

mod common;

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use durawal::{Error, Options, RecoveryMode, Wal, LOCK_FILE_NAME};

/// Puts a hostile entry at a path.
type MakeEntry<'a> = Box<dyn Fn(&Path) + 'a>;

fn mkfifo(path: &Path) {
    let name = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a plain syscall with a valid NUL-terminated path.
    assert_eq!(
        unsafe { libc::mkfifo(name.as_ptr(), 0o600) },
        0,
        "mkfifo {}",
        path.display()
    );
}

/// Opens on another thread so that a hang fails the test instead of stalling it.
fn open_with_deadline(dir: &Path, mode: RecoveryMode) -> Result<Wal, Error> {
    let (sender, receiver) = mpsc::channel();
    let dir = dir.to_owned();
    std::thread::spawn(move || {
        let _ = sender.send(Wal::open(&dir, options(SMALL_SEGMENT, mode)));
    });
    receiver
        .recv_timeout(Duration::from_secs(20))
        .expect("Wal::open hung")
}

/// A closed log of one segment holding a few records; returns the segment's path.
fn small_log(dir: &Path) -> PathBuf {
    let wal = open(
        dir,
        Options {
            segment_size: SMALL_SEGMENT,
            ..Options::default()
        },
    );
    for lsn in 1..=5u64 {
        wal.append(format!("record {lsn}").as_bytes()).unwrap();
    }
    wal.sync(None).unwrap();
    wal.close().unwrap();
    segment_files(dir).pop().unwrap()
}

fn assert_refused_naming(result: Result<Wal, Error>, path: &Path, kind: &str, label: &str) {
    let error = match result {
        Ok(_) => panic!("{label}: open accepted a {kind} at {}", path.display()),
        Err(error) => error,
    };
    assert_eq!(
        corrupt_location(&error),
        (path.to_owned(), 0),
        "{label}: {error}"
    );
    assert!(
        error.to_string().contains(kind),
        "{label}: the error must say it is a {kind}: {error}"
    );
}

#[test]
fn a_segment_name_taken_by_a_fifo_a_directory_or_a_symlink_is_refused_without_blocking() {
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("elsewhere.wal");
    let cases: Vec<(&str, MakeEntry)> = vec![
        ("FIFO", Box::new(mkfifo)),
        (
            "directory",
            Box::new(|path: &Path| fs::create_dir(path).unwrap()),
        ),
        (
            "symbolic link",
            Box::new({
                let target = target.clone();
                move |path: &Path| {
                    fs::write(&target, b"not a segment").unwrap();
                    symlink(&target, path).unwrap();
                }
            }),
        ),
    ];
    for (kind, make) in &cases {
        for position in ["before the log's segments", "after them"] {
            let dir = tempfile::tempdir().unwrap();
            let segment = small_log(dir.path());
            let name = if position.starts_with("before") {
                // Sorts first, so it is taken for the head of the log.
                "00000000000000000000.wal"
            } else {
                "00000000000000000009.wal"
            };
            let hostile = dir.path().join(name);
            make(&hostile);
            let segment_bytes = read_file(&segment);
            for mode in [
                RecoveryMode::TolerateTail,
                RecoveryMode::PointInTime,
                RecoveryMode::SkipCorrupted,
            ] {
                let label = format!("{kind} {position}, {mode:?}");
                assert_refused_naming(open_with_deadline(dir.path(), mode), &hostile, kind, &label);
                assert!(
                    read_file(&segment) == segment_bytes,
                    "{label}: the log changed"
                );
            }
        }
    }
    assert_eq!(
        fs::read(&target).unwrap(),
        b"not a segment",
        "the link target was changed"
    );
}

#[test]
fn a_lock_file_that_is_a_symlink_or_a_fifo_is_refused_and_nothing_is_created_outside() {
    let outside = tempfile::tempdir().unwrap();
    let dangling_target = outside.path().join("created-by-durawal");
    let existing_target = outside.path().join("existing");
    fs::write(&existing_target, b"someone else's file").unwrap();
    let cases: Vec<(&str, MakeEntry)> = vec![
        (
            "symbolic link",
            Box::new(|path: &Path| symlink(&dangling_target, path).unwrap()),
        ),
        (
            "symbolic link",
            Box::new(|path: &Path| symlink(&existing_target, path).unwrap()),
        ),
        ("FIFO", Box::new(mkfifo)),
    ];
    for (index, (kind, make)) in cases.iter().enumerate() {
        for with_log in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            if with_log {
                small_log(dir.path());
            }
            let lock = dir.path().join(LOCK_FILE_NAME);
            let _ = fs::remove_file(&lock);
            make(&lock);
            let label = format!("case {index}: LOCK is a {kind}, existing log: {with_log}");
            assert_refused_naming(
                open_with_deadline(dir.path(), RecoveryMode::TolerateTail),
                &lock,
                kind,
                &label,
            );
        }
    }
    assert!(
        !dangling_target.exists(),
        "a dangling LOCK link was followed and its target created"
    );
    assert_eq!(fs::read(&existing_target).unwrap(), b"someone else's file");
}
