//! Pins what a full disk may take away and what it may not. When the next
//! segment cannot be created (ENOSPC while preparing it), the append that
//! needed it fails with a typed error and poisons the log; but the records
//! already on disk stay reachable: reopening on the still-full disk succeeds
//! (a sealed last segment does not make open create a new one), replays
//! every acknowledged record, and only appends that need space fail. Once
//! space is back, appending continues with a correctly linked segment.

mod common;

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::faults::{InjectingStorage, Operation};
use common::*;
use durawal::format::PREPARED_SEGMENT_NAME;
use durawal::storage::OpenMode;
use durawal::{Error, Options, RecoveryMode, Wal};

/// A filesystem with room for `room` more segment files: creating the
/// prepared segment fails with ENOSPC once they are used up. (Files that
/// exist, the prepared one included, can still be written: their blocks are
/// allocated, as on a real disk.)
fn disk(room: &Arc<AtomicUsize>) -> Arc<InjectingStorage> {
    let room = room.clone();
    Arc::new(InjectingStorage::new(move |operation| match operation {
        Operation::Open {
            path,
            mode: OpenMode::CreateNew,
            ..
        } if path
            .file_name()
            .is_some_and(|name| name == PREPARED_SEGMENT_NAME) =>
        {
            let left = room.load(Ordering::SeqCst);
            if left == 0 {
                return Some(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            room.store(left - 1, Ordering::SeqCst);
            None
        }
        _ => None,
    }))
}

fn open_on(dir: &std::path::Path, room: &Arc<AtomicUsize>) -> Result<Wal, Error> {
    Wal::open_with(
        dir,
        options(SMALL_SEGMENT, RecoveryMode::TolerateTail),
        disk(room),
        None,
    )
}

fn assert_enospc(error: &Error) {
    let cause = match error {
        Error::Poisoned(cause) => &**cause,
        other => other,
    };
    match cause {
        Error::Io { source, .. } => {
            assert_eq!(source.raw_os_error(), Some(libc::ENOSPC), "{error}")
        }
        other => panic!("expected ENOSPC, got {other:?}"),
    }
}

#[test]
fn a_full_disk_fails_only_the_appends_that_need_space() {
    let dir = tempfile::tempdir().unwrap();
    // Room for the first segment and the one prepared after it, no more.
    let room = Arc::new(AtomicUsize::new(2));
    let wal = open_on(dir.path(), &room).unwrap();
    let mut rng = Rng::from_env(0xf011_d15c);
    let mut expected = Expected::new(SMALL_SEGMENT);
    while expected.layout.segments.len() < 2 {
        expected.append(&wal, rng.nonzero_bytes(700));
        wal.sync(None).unwrap();
    }
    // Fill the second segment up to its last record, durably.
    while expected.layout.fits(700) {
        expected.append(&wal, rng.nonzero_bytes(700));
    }
    wal.sync(None).unwrap();
    // This one seals the segment and needs a new one, which the disk refuses.
    let lsn = wal.append(&rng.nonzero_bytes(700)).unwrap();
    assert_enospc(&wal.sync(Some(lsn)).unwrap_err());
    assert_enospc(&wal.close().unwrap_err());
    let acknowledged = &expected.payloads;
    for attempt in 0..2 {
        let wal = open_on(dir.path(), &room)
            .unwrap_or_else(|error| panic!("reopen {attempt} on a full disk failed: {error}"));
        assert_eq!(wal.recovery().truncated_bytes, 0);
        assert_log(&wal, acknowledged);
        let lsn = wal.append(b"needs a new segment").unwrap();
        assert_eq!(lsn, acknowledged.len() as u64 + 1);
        assert_enospc(&wal.sync(None).unwrap_err());
        assert_enospc(&wal.close().unwrap_err());
    }

    room.store(usize::MAX, Ordering::SeqCst);
    let wal = open_on(dir.path(), &room).unwrap();
    let mut after = acknowledged.clone();
    for record in [b"space is back".to_vec(), rng.nonzero_bytes(900)] {
        assert_eq!(wal.append(&record).unwrap(), after.len() as u64 + 1);
        after.push(record);
    }
    wal.sync(None).unwrap();
    wal.close().unwrap();
    let wal = Wal::open(
        dir.path(),
        Options {
            segment_size: SMALL_SEGMENT,
            recovery: RecoveryMode::Absolute,
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(wal.recovery().segments, 3);
    assert_log(&wal, &after);
}
