//! Checkpoint records: appended like any record, known as the latest
//! checkpoint once durable, found again at open, moved by truncation, and
//! never written into a segment of format 1.

mod common;

use std::path::Path;

use common::{checkpoint_lsns, copy_log, open, open_err, options, read_all, SMALL_SEGMENT};
use durawal::format::{RecordHeader, RecordKind, SegmentHeader, FORMAT_VERSION};
use durawal::{Error, RecoveryMode};

const MODE: RecoveryMode = RecoveryMode::TolerateTail;

#[test]
fn the_latest_checkpoint_counts_once_durable_and_is_found_again_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path(), options(SMALL_SEGMENT, MODE));
    assert_eq!(wal.last_checkpoint(), None);
    let mut checkpoints = Vec::new();
    for round in 0..6u64 {
        for _ in 0..30 {
            wal.append(&[round as u8; 700]).unwrap();
        }
        let lsn = wal.checkpoint(format!("state {round}").as_bytes()).unwrap();
        checkpoints.push(lsn);
        // Appended, not yet durable: the previous one is still the latest.
        assert_eq!(
            wal.last_checkpoint(),
            checkpoints.iter().rev().nth(1).copied()
        );
        wal.sync(None).unwrap();
        assert_eq!(wal.last_checkpoint(), Some(lsn));
    }
    assert!(common::segment_files(dir.path()).len() >= 3);
    assert_eq!(checkpoint_lsns(&wal, 1), checkpoints);
    let records = read_all(&wal);
    let last = *checkpoints.last().unwrap();
    assert_eq!(records[last as usize - 1], (last, b"state 5".to_vec()));
    wal.append(b"after").unwrap();
    wal.sync(None).unwrap();
    wal.close().unwrap();

    for mode in [RecoveryMode::Absolute, RecoveryMode::SkipCorrupted] {
        let copy = copy_log(dir.path());
        let reopened = open(copy.path(), options(SMALL_SEGMENT, mode));
        assert_eq!(reopened.last_checkpoint(), Some(last), "{mode:?}");
        assert_eq!(checkpoint_lsns(&reopened, 1), checkpoints);
        assert_eq!(
            read_all(&reopened),
            records
                .iter()
                .cloned()
                .chain([(last + 1, b"after".to_vec())])
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn truncation_moves_the_latest_checkpoint_back_or_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path(), options(SMALL_SEGMENT, MODE));
    let mut checkpoints = Vec::new();
    for _ in 0..5 {
        for _ in 0..40 {
            wal.append(&[1; 700]).unwrap();
        }
        checkpoints.push(wal.checkpoint(b"").unwrap());
        wal.append(&[2; 100]).unwrap();
    }
    wal.sync(None).unwrap();
    // A cut just before the last checkpoint makes the one before it the latest.
    let last = checkpoints[4];
    wal.truncate_after(last - 1).unwrap();
    assert_eq!(wal.last_checkpoint(), Some(checkpoints[3]));
    // A cut right after a checkpoint keeps it.
    wal.truncate_after(checkpoints[2]).unwrap();
    assert_eq!(wal.last_checkpoint(), Some(checkpoints[2]));
    wal.close().unwrap();
    let reopened = open(dir.path(), options(SMALL_SEGMENT, RecoveryMode::Absolute));
    assert_eq!(reopened.last_checkpoint(), Some(checkpoints[2]));
    // Removing the segments that hold every checkpoint leaves none.
    for _ in 0..300 {
        reopened.append(&[3; 700]).unwrap();
    }
    reopened.sync(None).unwrap();
    reopened.truncate_before(reopened.last_lsn()).unwrap();
    assert_eq!(reopened.last_checkpoint(), None);
}

#[test]
fn a_log_of_format_1_moves_to_a_new_segment_for_its_first_checkpoint() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat/v1/log");
    let copy = copy_log(&fixture);
    let before = common::segment_files(copy.path()).len();
    let wal = open(copy.path(), options(SMALL_SEGMENT, RecoveryMode::Absolute));
    let records = read_all(&wal);
    let lsn = wal.checkpoint(b"first checkpoint").unwrap();
    wal.sync(None).unwrap();
    assert_eq!(common::segment_files(copy.path()).len(), before + 1);
    let newest = common::segment_files(copy.path()).pop().unwrap();
    let header = SegmentHeader::decode(&common::read_file(&newest)[..4096]).unwrap();
    assert_eq!((header.version, header.first_lsn), (FORMAT_VERSION, lsn));
    wal.close().unwrap();
    let reopened = open(copy.path(), options(SMALL_SEGMENT, RecoveryMode::Absolute));
    assert_eq!(reopened.last_checkpoint(), Some(lsn));
    assert_eq!(read_all(&reopened).len(), records.len() + 1);
}

#[test]
fn a_checkpoint_record_inside_a_format_1_segment_is_damage() {
    let dir = tempfile::tempdir().unwrap();
    let header = SegmentHeader {
        version: 1,
        salt: 0xabcd,
        log_id: [5; 16],
        first_lsn: 1,
        prev_seal_offset: 0,
        prev_digest: 0,
    };
    let mut bytes = header.encode();
    let mut record =
        RecordHeader::encode(header.salt, RecordKind::Checkpoint, 1, b"state").to_vec();
    record.extend_from_slice(b"state");
    record.resize(32, 0);
    // A valid data record after it, so that it is not a torn tail.
    let mut data = RecordHeader::encode(header.salt, RecordKind::Data, 2, b"data").to_vec();
    data.extend_from_slice(b"data");
    bytes.extend_from_slice(&record);
    bytes.resize(bytes.len() + (5 << 20), 0);
    bytes.extend_from_slice(&data);
    bytes.resize(bytes.len().next_multiple_of(65536), 0);
    std::fs::write(dir.path().join(common::segment_file_name(1)), &bytes).unwrap();
    let error = open_err(dir.path(), options(SMALL_SEGMENT, MODE));
    assert!(
        matches!(&error, Error::Corrupt { reason, offset: 4096, .. } if reason.contains("format version 1")),
        "{error}"
    );
}
