//! Pins what a panic inside durawal's own threads does: it is a bug, but it
//! must never leave a caller waiting forever nor let anything be acknowledged
//! that was not synced. A panic of the flush thread poisons the log with an
//! `Internal` error: pending and later syncs fail with it, the listener hears
//! of it, close reports it, and a reopen recovers every acknowledged record.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use common::faults::{InjectingStorage, Operation};
use durawal::{Error, FlushEvent, Options, Wal};

fn payload(lsn: u64) -> Vec<u8> {
    format!("record {lsn}").into_bytes()
}

fn assert_poisoned_by_internal(error: &Error) {
    match error {
        Error::Poisoned(cause) => {
            assert!(matches!(&**cause, Error::Internal(_)), "cause {cause:?}")
        }
        other => panic!("expected Poisoned(Internal), got {other:?}"),
    }
}

#[test]
fn a_panicking_flush_thread_fails_every_waiter_instead_of_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let armed = Arc::new(AtomicBool::new(false));
    let storage = {
        let armed = armed.clone();
        InjectingStorage::new(move |operation| match operation {
            Operation::Sync { .. } if armed.load(Ordering::SeqCst) => {
                panic!("injected panic in fdatasync")
            }
            _ => None,
        })
    };
    let events = Arc::new(Mutex::new(Vec::new()));
    let listener = {
        let events = events.clone();
        Box::new(move |event| events.lock().unwrap().push(event))
    };
    let options = Options {
        segment_size: 64 * 1024,
        ..Options::default()
    };
    let wal =
        Arc::new(Wal::open_with(dir.path(), options, Arc::new(storage), Some(listener)).unwrap());
    for lsn in 1..=10 {
        wal.append(&payload(lsn)).unwrap();
    }
    assert_eq!(wal.sync(None).unwrap(), 10);

    wal.append(&payload(11)).unwrap();
    armed.store(true, Ordering::SeqCst);
    // Before the fix the flusher died silently and this sync never returned:
    // wait on another thread so a hang fails the test instead of stalling it.
    let (sender, receiver) = mpsc::channel();
    let waiter = {
        let wal = wal.clone();
        std::thread::spawn(move || sender.send(wal.sync(None)).unwrap())
    };
    let result = receiver
        .recv_timeout(Duration::from_secs(20))
        .expect("sync hung after the flush thread panicked");
    waiter.join().unwrap();
    assert_poisoned_by_internal(&result.unwrap_err());
    assert_eq!(wal.durable_lsn(), 10, "nothing past the panic is durable");
    assert_poisoned_by_internal(&wal.append(&payload(12)).unwrap_err());
    assert_poisoned_by_internal(&wal.sync(None).unwrap_err());
    assert_poisoned_by_internal(&wal.close().unwrap_err());
    // After close the flush thread is joined, so its last word has been said.
    assert_eq!(events.lock().unwrap().last(), Some(&FlushEvent::Failed));

    let reopened = Wal::open(
        dir.path(),
        Options {
            segment_size: 64 * 1024,
            ..Options::default()
        },
    )
    .unwrap();
    let records = common::read_all(&reopened);
    assert!(
        records.len() >= 10,
        "acknowledged records lost: {}",
        records.len()
    );
    for (index, (lsn, data)) in records.iter().enumerate() {
        assert_eq!(*lsn, index as u64 + 1);
        assert_eq!(data, &payload(*lsn));
    }
}
