//! Pins the buffer limit: bytes appended and not yet durable are counted
//! (waiting or being written), an append that would pass the limit fails with
//! `Backpressure` and changes nothing, and once a flush makes bytes durable
//! the count falls (reported with the flush) and appends are accepted again.
//! The disk is held still by a sync that waits until the test lets it go.

mod common;

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use common::faults::{InjectingStorage, Operation};
use common::*;
use durawal::{Error, FlushEvent, Options, SyncPolicy, Wal};

const RECORD: usize = 1000;
/// What one record occupies: a 24-byte header, the payload, padding to 8.
const RECORD_BYTES: u64 = 1024;

/// A gate the disk's syncs wait at while it is closed.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    changed: Condvar,
}

impl Gate {
    fn set(&self, open: bool) {
        *self.open.lock().unwrap() = open;
        self.changed.notify_all();
    }

    fn pass(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.changed.wait(open).unwrap();
        }
    }
}

#[test]
fn appends_past_the_buffer_limit_fail_until_a_flush_makes_room() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Gate::default());
    gate.set(true);
    let storage = {
        let gate = gate.clone();
        InjectingStorage::new(move |operation| {
            if let Operation::Sync { .. } = operation {
                gate.pass();
            }
            None
        })
    };
    let events = Arc::new(Mutex::new(Vec::new()));
    let listener = {
        let events = events.clone();
        Box::new(move |event| events.lock().unwrap().push(event))
    };
    let limit = 10 * RECORD_BYTES;
    let options = Options {
        segment_size: SMALL_SEGMENT,
        sync: SyncPolicy::Never,
        max_record_size: Some(RECORD as u64),
        buffer_limit: Some(limit),
        ..Options::default()
    };
    let wal = Wal::open_with(dir.path(), options, Arc::new(storage), Some(listener)).unwrap();
    assert_eq!(wal.buffered_bytes(), 0);

    // Hold the disk: the first sync waits at the gate with its bytes in flight.
    gate.set(false);
    for lsn in 1..=4 {
        assert_eq!(wal.append(&[lsn as u8; RECORD]).unwrap(), lsn);
    }
    wal.request_sync(4).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    for lsn in 5..=10 {
        assert_eq!(wal.append(&[lsn as u8; RECORD]).unwrap(), lsn);
    }
    assert_eq!(
        wal.buffered_bytes(),
        limit,
        "in flight and waiting both count"
    );
    match wal.append(&[0; RECORD]).unwrap_err() {
        Error::Backpressure {
            buffered,
            size,
            limit: refused_at,
        } => {
            assert_eq!((buffered, size, refused_at), (limit, RECORD_BYTES, limit))
        }
        other => panic!("expected Backpressure, got {other:?}"),
    }
    assert_eq!(
        wal.append_batch(&[b"x"]).unwrap_err().code(),
        "WAL_BACKPRESSURE"
    );
    assert_eq!(wal.last_lsn(), 10, "a refused append changes nothing");

    gate.set(true);
    assert_eq!(wal.sync(None).unwrap(), 10);
    assert_eq!(wal.buffered_bytes(), 0);
    assert_eq!(wal.append(&[11; RECORD]).unwrap(), 11);
    wal.sync(None).unwrap();
    wal.close().unwrap();
    let reported: Vec<u64> = events
        .lock()
        .unwrap()
        .iter()
        .map(|event| match event {
            FlushEvent::Durable { buffered_bytes, .. } => *buffered_bytes,
            FlushEvent::Failed => panic!("a flush failed"),
        })
        .collect();
    assert_eq!(
        reported.last(),
        Some(&0),
        "flushes report what is still buffered: {reported:?}"
    );

    let wal = open(
        dir.path(),
        Options {
            segment_size: SMALL_SEGMENT,
            ..Options::default()
        },
    );
    let payloads: Vec<Vec<u8>> = (1..=11).map(|lsn| vec![lsn as u8; RECORD]).collect();
    assert_log(&wal, &payloads);
}

#[test]
fn a_buffer_limit_smaller_than_one_record_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        segment_size: SMALL_SEGMENT,
        max_record_size: Some(4096),
        buffer_limit: Some(4096),
        ..Options::default()
    };
    let error = Wal::open(dir.path(), options)
        .err()
        .expect("open accepted the options");
    assert_eq!(error.code(), "WAL_INVALID_ARGUMENT", "{error}");
}
