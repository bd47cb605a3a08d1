//! What the fuzz targets share: an in-memory filesystem for the log, a
//! reference decoder written from FORMAT.md, and the checks every target
//! runs: open the log in each recovery mode and replay all of it. A panic, a
//! hang or an allocation past libFuzzer's limit is the bug the fuzzer looks
//! for; the checks below add what must hold of whatever recovery accepts,
//! and, for a one-segment log, that it is what the reference decoder reads.

mod log_builder;
mod memory_storage;
pub mod reference;

use std::path::Path;
use std::sync::Arc;

use durawal::format::segment_file_name;
use durawal::{DirectIo, Error, Options, RecoveryMode, Wal};

pub use log_builder::SegmentBuilder;
pub use memory_storage::MemoryStorage;
use reference::Decoded;

/// Segment size of the fuzzed logs: the smallest, so inputs stay small.
pub const SEGMENT_SIZE: u64 = 64 * 1024;

const MODES: [RecoveryMode; 4] = [
    RecoveryMode::TolerateTail,
    RecoveryMode::Absolute,
    RecoveryMode::PointInTime,
    RecoveryMode::SkipCorrupted,
];

/// Opens the log made of `files` (on its own copy) in `mode`.
fn open(files: &[(String, Vec<u8>)], mode: RecoveryMode) -> Result<Wal, Error> {
    let dir = Path::new("/fuzz-log");
    let storage = Arc::new(MemoryStorage::with_files(dir, files.to_vec()));
    let options = Options {
        segment_size: SEGMENT_SIZE,
        recovery: mode,
        direct_io: DirectIo::Off,
        ..Options::default()
    };
    Wal::open_with(dir, options, storage, None)
}

/// Replays all of `wal`, checking that LSNs increase (densely unless
/// records were skipped) and that replay returns as many records as
/// recovery reported.
fn replay_all(wal: &Wal, mode: RecoveryMode) -> Vec<(u64, Vec<u8>)> {
    let report = wal.recovery().clone();
    let mut cursor = wal
        .replay(1, u64::MAX)
        .unwrap_or_else(|error| panic!("{mode:?}: replay refused after open: {error}"));
    let mut records: Vec<(u64, Vec<u8>)> = Vec::new();
    while let Some(batch) = cursor
        .next_batch(1000, 1 << 20)
        .unwrap_or_else(|error| panic!("{mode:?}: replay failed after open ({report:?}): {error}"))
    {
        let mut start = 0;
        for (&lsn, &end) in batch.lsns.iter().zip(&batch.ends) {
            let previous = records.last().map_or(0, |(lsn, _)| *lsn);
            assert!(lsn > previous, "{mode:?}: LSN {lsn} after {previous}");
            if mode != RecoveryMode::SkipCorrupted && previous > 0 {
                assert_eq!(lsn, previous + 1, "{mode:?}: LSNs must be dense");
            }
            records.push((lsn, batch.data[start..end as usize].to_vec()));
            start = end as usize;
        }
    }
    assert_eq!(
        records.len() as u64,
        report.records,
        "{mode:?}: replay and recovery disagree ({report:?})"
    );
    records
}

/// Opens the log made of `files` in every recovery mode (each on its own
/// copy) and replays whatever opens; refusing damage (`WAL_CORRUPT`) is a
/// correct answer, any other failure is not.
pub fn open_and_replay(files: &[(String, Vec<u8>)]) {
    for mode in MODES {
        match open(files, mode) {
            Ok(wal) => drop(replay_all(&wal, mode)),
            Err(error) if error.code() == "WAL_CORRUPT" => {}
            Err(error) => panic!("{mode:?}: open failed with {error}"),
        }
    }
}

/// Opens the one-segment log `segment` in every recovery mode and compares
/// with the reference decoder: a clean segment replays exactly its records
/// in every mode; a damaged one is refused at the reference's offset in
/// absolute mode, is cut to the reference's records or refused at that
/// offset in tolerate-tail mode, and is cut there in point-in-time mode.
pub fn check_against_reference(segment: &[u8]) {
    let files = [(segment_file_name(1), segment.to_vec())];
    let decoded = reference::decode(segment);
    for mode in MODES {
        let opened = open(&files, mode).map(|wal| replay_all(&wal, mode));
        let refused_at = |error: &Error| match error {
            Error::Corrupt { offset, .. } => Some(*offset),
            _ => None,
        };
        let agrees = match (&decoded, mode, &opened) {
            (Decoded::BadHeader, RecoveryMode::PointInTime, Ok(read)) => read.is_empty(),
            (Decoded::BadHeader, _, Err(error)) => refused_at(error).is_some(),
            (Decoded::Clean(records), _, Ok(read)) => read == records,
            (Decoded::Damaged { .. }, RecoveryMode::SkipCorrupted, _) => true,
            (Decoded::Damaged { offset, .. }, RecoveryMode::Absolute, Err(error)) => {
                refused_at(error) == Some(*offset)
            }
            (Decoded::Damaged { offset, .. }, RecoveryMode::TolerateTail, Err(error)) => {
                refused_at(error) == Some(*offset)
            }
            (
                Decoded::Damaged { records, .. },
                RecoveryMode::TolerateTail | RecoveryMode::PointInTime,
                Ok(read),
            ) => read == records,
            _ => false,
        };
        assert!(
            agrees,
            "{mode:?}: the reference decoder reads {}, recovery gave {:?}",
            decoded.summary(),
            opened.map(|read| format!("{} records", read.len()))
        );
    }
}
