//! A `LogReader` reads a log another writer holds, sees only what that
//! writer published as durable, never writes a byte, and follows the writer
//! through `DURABLE`.

mod common;

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::faults::{InjectingStorage, Operation};
use common::{open, options, SMALL_SEGMENT};
use durawal::storage::OpenMode;
use durawal::{LogReader, RecoveryMode, SyncPolicy};

const MODE: RecoveryMode = RecoveryMode::TolerateTail;

fn read_range(reader: &LogReader, from: u64) -> Vec<(u64, Vec<u8>)> {
    common::drain(&mut reader.replay(from, u64::MAX).unwrap())
}

/// Writes `DURABLE` as a writer publishing `lsn` would (for the log's id).
fn publish_durable(dir: &Path, lsn: u64) {
    let first = &common::segment_files(dir)[0];
    let log_id: [u8; 16] = common::read_file(first)[16..32].try_into().unwrap();
    let published = durawal::format::ControlRecord {
        kind: durawal::format::ControlKind::Durable,
        log_id,
        lsn,
    };
    std::fs::write(dir.join("DURABLE"), published.encode()).unwrap();
}

/// A storage that fails every operation that could change the disk.
fn refusing_writes() -> InjectingStorage {
    InjectingStorage::new(|operation| match operation {
        Operation::Read { .. }
        | Operation::Open {
            mode: OpenMode::Read,
            ..
        } => None,
        other => Some(io::Error::other(format!("the reader must not {other:?}"))),
    })
}

#[test]
fn a_reader_sees_only_what_the_writer_published_as_durable() {
    let dir = tempfile::tempdir().unwrap();
    let writer = open(
        dir.path(),
        durawal::Options {
            sync: SyncPolicy::Never,
            ..options(SMALL_SEGMENT, MODE)
        },
    );
    for index in 0..100u8 {
        writer.append(&[index; 900]).unwrap();
    }
    writer.sync(None).unwrap();
    // Appended, not durable (under 'none' nothing is written before a sync).
    for index in 100..150u8 {
        writer.append(&[index; 900]).unwrap();
    }
    let reader = LogReader::open(dir.path(), MODE).unwrap();
    assert_eq!(reader.durable_lsn(), 100);
    assert_eq!(read_range(&reader, 1).len(), 100);
    writer.sync(None).unwrap();
    assert_eq!(reader.durable_lsn(), 150);
    let records = read_range(&reader, 90);
    assert_eq!(records.first().unwrap(), &(90, vec![89; 900]));
    assert_eq!(records.len(), 61);
    assert_eq!(reader.first_lsn().unwrap(), 1);
}

#[test]
fn records_on_disk_past_the_published_lsn_stay_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let writer = open(dir.path(), options(SMALL_SEGMENT, MODE));
    for index in 0..150u8 {
        writer.append(&[index; 300]).unwrap();
    }
    writer.sync(None).unwrap();
    writer.close().unwrap();
    // As if the writer died after writing 150 records and publishing 100:
    // the last 50 were never acknowledged.
    publish_durable(dir.path(), 100);
    let reader = LogReader::open(dir.path(), MODE).unwrap();
    assert_eq!(reader.durable_lsn(), 100);
    assert_eq!(read_range(&reader, 1).len(), 100);
}

#[test]
fn a_reader_does_not_take_a_flush_in_progress_past_the_published_lsn_for_damage() {
    // The writer has published LSN 30; a flush of LSNs 31.. is half on
    // disk (here: a flipped bit in LSN 32) and a later flush, whose first
    // record carries the synced-before flag, is already there too, as a
    // reader racing a busy writer can see it. Past the published LSN that
    // is not damage to synced records: the reader opens and sees 30.
    let dir = tempfile::tempdir().unwrap();
    let mut expected = common::Expected::new(SMALL_SEGMENT);
    let writer = open(dir.path(), options(SMALL_SEGMENT, MODE));
    for index in 0..60u8 {
        expected.append(&writer, vec![index; 300]);
        if index % 3 == 2 {
            writer.sync(None).unwrap();
        }
    }
    let segment = &common::segment_files(dir.path())[0];
    publish_durable(dir.path(), 30);
    let torn = &expected.layout.records[31];
    common::flip_bit(segment, torn.offset + 24 + 100, 2);
    let reader = LogReader::open(dir.path(), MODE).unwrap();
    assert_eq!(reader.durable_lsn(), 30);
    common::assert_records(&read_range(&reader, 1), &expected.payloads[..30]);
    drop(reader);
    // The writer's own recovery looks at everything, and refuses it.
    writer.close().unwrap();
    let error = common::open_err(dir.path(), options(SMALL_SEGMENT, MODE));
    assert_eq!(common::corrupt_location(&error).1, torn.offset);
}

#[test]
fn a_reader_never_writes_a_byte_and_leaves_a_damaged_tail_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let writer = open(dir.path(), options(SMALL_SEGMENT, MODE));
    for index in 0..200u8 {
        writer.append(&[index; 700]).unwrap();
    }
    writer.sync(None).unwrap();
    writer.close().unwrap();
    // A torn tail: garbage after the last record of the last segment.
    let last = common::segment_files(dir.path()).pop().unwrap();
    let mut bytes = common::read_file(&last);
    let end = common::end_of_nonzero(&bytes, 4096) as usize;
    bytes[end..end + 100].fill(0xee);
    common::write_file(&last, &bytes);

    let reader = LogReader::open_with(dir.path(), MODE, Arc::new(refusing_writes())).unwrap();
    assert_eq!(reader.durable_lsn(), 200);
    assert_eq!(read_range(&reader, 1).len(), 200);
    assert!(reader.recovery().truncated_bytes > 0);
    assert_eq!(
        common::read_file(&last),
        bytes,
        "the reader changed the segment"
    );
}

#[test]
fn a_published_lsn_past_the_end_is_not_believed_without_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    let writer = open(dir.path(), options(SMALL_SEGMENT, MODE));
    for index in 0..50u8 {
        writer.append(&[index; 100]).unwrap();
    }
    writer.sync(None).unwrap();
    writer.truncate_after(20).unwrap();
    writer.close().unwrap();
    // As if a power loss kept the value from before the cut.
    publish_durable(dir.path(), 50);
    let reader = LogReader::open(dir.path(), MODE).unwrap();
    assert_eq!(reader.durable_lsn(), 20);
    assert_eq!(read_range(&reader, 1).len(), 20);
    // Another log's DURABLE counts for nothing.
    let foreign = durawal::format::ControlRecord {
        kind: durawal::format::ControlKind::Durable,
        log_id: [1; 16],
        lsn: 50,
    };
    std::fs::write(dir.path().join("DURABLE"), foreign.encode()).unwrap();
    assert_eq!(LogReader::open(dir.path(), MODE).unwrap().durable_lsn(), 20);
}

fn wait_for(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_watching_reader_is_told_of_each_flush_and_follows_across_rotations() {
    let dir = tempfile::tempdir().unwrap();
    let writer = open(dir.path(), options(SMALL_SEGMENT, MODE));
    let reader = LogReader::open(dir.path(), MODE).unwrap();
    let notices = Arc::new(AtomicUsize::new(0));
    let counter = notices.clone();
    reader
        .watch(Box::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        }))
        .unwrap();
    let mut cursor = reader.replay(1, u64::MAX).unwrap();
    let mut seen = Vec::new();
    for round in 0..30u64 {
        let before = notices.load(Ordering::SeqCst);
        for index in 0..10u64 {
            writer
                .append(&(round * 10 + index).to_le_bytes().repeat(100))
                .unwrap();
        }
        writer.sync(None).unwrap();
        wait_for("a change notice", || {
            notices.load(Ordering::SeqCst) > before
        });
        cursor.follow_to(reader.durable_lsn()).unwrap();
        while let Some(batch) = cursor.next_batch(64, 1 << 20).unwrap() {
            seen.extend(batch.lsns);
        }
    }
    assert_eq!(seen, (1..=300).collect::<Vec<_>>());
    assert!(common::segment_files(dir.path()).len() > 3);
    reader.close();
}

#[test]
fn a_reader_of_a_directory_without_a_log_sees_an_empty_log() {
    let dir = tempfile::tempdir().unwrap();
    let reader = LogReader::open(dir.path(), MODE).unwrap();
    assert_eq!((reader.durable_lsn(), reader.first_lsn().unwrap()), (0, 0));
    assert!(read_range(&reader, 1).is_empty());
    assert!(!Path::new(&dir.path().join("LOCK")).exists());
}
