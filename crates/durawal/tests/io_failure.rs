//! Pins rule 3 of the durability contract: a failed write or sync is never
//! retried and never acknowledged. The log is poisoned: the failed sync, every
//! later sync and every later append fail with `Poisoned` carrying the original
//! I/O error, no further sync is issued on the failed file, and a reopen
//! recovers every record that was acknowledged before the failure.

mod common;

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::faults::{InjectingStorage, Operation};
use durawal::{Error, Options, Wal};

/// What the faulty backend saw and when it starts failing.
#[derive(Default)]
struct Faults {
    /// Fail data syncs once armed.
    sync_armed: AtomicBool,
    /// Fail writes once armed.
    write_armed: AtomicBool,
    /// Every data sync attempted: which file (by its number) and whether it was failed.
    syncs: Mutex<Vec<(u64, bool)>>,
    /// Every write attempted: which file and whether it was failed.
    writes: Mutex<Vec<(u64, bool)>>,
}

/// Real files whose writes fail with ENOSPC and whose syncs fail with EIO
/// while `faults` says so, every attempt noted.
fn faulty_storage(faults: &Arc<Faults>) -> InjectingStorage {
    let faults = faults.clone();
    InjectingStorage::new(move |operation| {
        let (attempts, armed, errno, file) = match operation {
            Operation::Sync { file, .. } => (&faults.syncs, &faults.sync_armed, libc::EIO, *file),
            Operation::Write { file, .. } => {
                (&faults.writes, &faults.write_armed, libc::ENOSPC, *file)
            }
            _ => return None,
        };
        let fail = armed.load(Ordering::SeqCst);
        attempts.lock().unwrap().push((file, fail));
        fail.then(|| io::Error::from_raw_os_error(errno))
    })
}

fn open_faulty(dir: &Path, faults: &Arc<Faults>) -> Wal {
    let options = Options {
        segment_size: 64 * 1024,
        ..Options::default()
    };
    Wal::open_with(dir, options, Arc::new(faulty_storage(faults)), None).unwrap()
}

fn payload(lsn: u64) -> Vec<u8> {
    format!("record {lsn} ").repeat(7).into_bytes()
}

fn assert_poisoned_by(error: &Error, errno: i32) {
    match error {
        Error::Poisoned(cause) => match &**cause {
            Error::Io { source, .. } => assert_eq!(source.raw_os_error(), Some(errno), "{error}"),
            other => panic!("poisoned by {other:?}, expected an I/O error"),
        },
        other => panic!("expected Poisoned, got {other:?}"),
    }
}

/// Replays the log with the real backend and checks it holds exactly a
/// prefix of `expected` that includes every acknowledged LSN.
fn assert_recovers_prefix(dir: &Path, acknowledged: u64, appended: u64) {
    let wal = Wal::open(
        dir,
        Options {
            segment_size: 64 * 1024,
            ..Options::default()
        },
    )
    .unwrap();
    let last = wal.last_lsn();
    assert!(
        last >= acknowledged,
        "acknowledged LSN {acknowledged} lost: log ends at {last}"
    );
    assert!(
        last <= appended,
        "log has LSN {last} that was never appended"
    );
    let mut cursor = wal.replay(1, last).unwrap();
    let mut next = 1;
    while let Some(batch) = cursor.next_batch(1000, 1 << 20).unwrap() {
        let mut start = 0;
        for (index, lsn) in batch.lsns.iter().enumerate() {
            let end = batch.ends[index] as usize;
            assert_eq!(*lsn, next, "LSNs must be dense");
            assert_eq!(
                &batch.data[start..end],
                payload(*lsn).as_slice(),
                "wrong bytes at LSN {lsn}"
            );
            start = end;
            next += 1;
        }
    }
    assert_eq!(next - 1, last);
    wal.close().unwrap();
}

/// Checks that no file saw another attempt after one of its attempts failed.
/// Files are told apart by their number, since the prepared segment's path
/// is reused by each new prepared file.
fn assert_no_retry_after_failure(attempts: &[(u64, bool)], what: &str) {
    let failed_files: Vec<u64> = attempts
        .iter()
        .filter(|(_, failed)| *failed)
        .map(|(id, _)| *id)
        .collect();
    assert!(!failed_files.is_empty(), "nothing was failed");
    for failed in failed_files {
        let after = attempts
            .iter()
            .filter(|(id, _)| *id == failed)
            .skip_while(|(_, failed)| !failed)
            .count();
        assert_eq!(after, 1, "file #{failed} was {what} again after a failure");
    }
}

#[test]
fn failed_sync_poisons_the_log_and_is_never_retried() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let wal = open_faulty(dir.path(), &faults);
    for lsn in 1..=50 {
        assert_eq!(wal.append(&payload(lsn)).unwrap(), lsn);
    }
    assert_eq!(wal.sync(None).unwrap(), 50);
    for lsn in 51..=60 {
        wal.append(&payload(lsn)).unwrap();
    }
    faults.sync_armed.store(true, Ordering::SeqCst);
    let error = wal.sync(None).unwrap_err();
    assert_eq!(error.code(), "WAL_POISONED");
    assert_poisoned_by(&error, libc::EIO);
    assert_eq!(
        wal.durable_lsn(),
        50,
        "nothing after the failed sync may be acknowledged"
    );

    faults.sync_armed.store(false, Ordering::SeqCst);
    assert_poisoned_by(&wal.append(&payload(61)).unwrap_err(), libc::EIO);
    assert_poisoned_by(&wal.append_batch(&[b"x"]).unwrap_err(), libc::EIO);
    assert_poisoned_by(&wal.sync(None).unwrap_err(), libc::EIO);
    assert_poisoned_by(&wal.check_health().unwrap_err(), libc::EIO);
    assert_close_reports_the_failure(&wal, libc::EIO);

    assert_no_retry_after_failure(&faults.syncs.lock().unwrap(), "synced");

    assert_recovers_prefix(dir.path(), 50, 60);
}

#[test]
fn failed_write_poisons_the_log_without_acknowledging() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let wal = open_faulty(dir.path(), &faults);
    for lsn in 1..=20 {
        wal.append(&payload(lsn)).unwrap();
    }
    assert_eq!(wal.sync(None).unwrap(), 20);
    wal.append(&payload(21)).unwrap();
    faults.write_armed.store(true, Ordering::SeqCst);
    let error = wal.sync(Some(21)).unwrap_err();
    assert_poisoned_by(&error, libc::ENOSPC);
    assert_no_retry_after_failure(&faults.writes.lock().unwrap(), "written");
    assert_eq!(wal.durable_lsn(), 20);
    faults.write_armed.store(false, Ordering::SeqCst);
    assert_close_reports_the_failure(&wal, libc::ENOSPC);
    assert_recovers_prefix(dir.path(), 20, 21);
}

#[test]
fn pending_waiters_fail_when_a_concurrent_sync_fails() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let wal = Arc::new(open_faulty(dir.path(), &faults));
    wal.append(&payload(1)).unwrap();
    wal.sync(None).unwrap();
    faults.sync_armed.store(true, Ordering::SeqCst);
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let wal = wal.clone();
            std::thread::spawn(move || {
                let lsn = wal.append(&payload(0)).ok();
                (lsn, wal.sync(None))
            })
        })
        .collect();
    for waiter in waiters {
        let (_, result) = waiter.join().unwrap();
        assert_eq!(result.unwrap_err().code(), "WAL_POISONED");
    }
    assert_eq!(wal.durable_lsn(), 1);
    assert_close_reports_the_failure(&wal, libc::EIO);
}

#[test]
fn close_reports_a_failed_final_flush() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let wal = open_faulty(dir.path(), &faults);
    wal.append(&payload(1)).unwrap();
    wal.sync(None).unwrap();
    wal.append(&payload(2)).unwrap();
    faults.sync_armed.store(true, Ordering::SeqCst);
    // Nobody asked for LSN 2 to be durable: only close's final flush can
    // fail, and close is the only call left to say so.
    assert_close_reports_the_failure(&wal, libc::EIO);
    faults.sync_armed.store(false, Ordering::SeqCst);
    assert_recovers_prefix(dir.path(), 1, 2);
}

/// A poisoned log's close fails with the poisoning error, every time, and
/// still releases the lock (a new writer can open the directory).
fn assert_close_reports_the_failure(wal: &Wal, errno: i32) {
    assert_poisoned_by(&wal.close().unwrap_err(), errno);
    assert_poisoned_by(&wal.close().unwrap_err(), errno);
}
