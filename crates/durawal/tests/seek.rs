//! Pins replay's seek index: a replay from any LSN returns exactly the
//! records from there on, byte-exact, whether the records were found by
//! recovery at open or appended in this session, batches included; and it
//! starts reading near `from` rather than at the start of the segment that
//! holds it (a replay from near the end of a 4 MiB segment reads about one
//! read window, not the whole segment).

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::faults::{InjectingStorage, Operation};
use common::*;
use durawal::{Options, RecoveryMode, Wal};

const SEGMENT: u64 = 4 << 20;

fn replay_range(wal: &Wal, from: u64, to: u64) -> Vec<(u64, Vec<u8>)> {
    drain(&mut wal.replay(from, to).unwrap())
}

fn check_ranges(wal: &Wal, payloads: &[Vec<u8>], rng: &mut Rng, label: &str) {
    let last = payloads.len() as u64;
    for _ in 0..150 {
        let from = rng.range(1, last);
        let to = rng.range(from, last);
        let records = replay_range(wal, from, to);
        assert_eq!(
            records.len() as u64,
            to - from + 1,
            "{label}: {from}..={to}"
        );
        for (lsn, data) in &records {
            assert!(
                data == &payloads[*lsn as usize - 1],
                "{label}: wrong bytes at LSN {lsn}"
            );
        }
        assert_eq!(
            records.first().map(|record| record.0),
            Some(from),
            "{label}"
        );
    }
}

#[test]
fn replay_from_any_lsn_is_exact_before_and_after_reopen() {
    let mut rng = Rng::from_env(0x5eec_0001);
    let dir = tempfile::tempdir().unwrap();
    let options = || options(SEGMENT, RecoveryMode::TolerateTail);
    let wal = open(dir.path(), options());
    let mut expected = Expected::new(SEGMENT);
    while expected.layout.segments.len() < 3 {
        if rng.range(0, 9) == 0 {
            expected.append_batch(&wal, rng.batch(20, 500));
        } else {
            let len = rng.range(100, 3000) as usize;
            expected.append(&wal, rng.bytes(len));
        }
    }
    wal.sync(None).unwrap();
    check_ranges(
        &wal,
        &expected.payloads,
        &mut rng,
        "appended in this session",
    );
    wal.close().unwrap();
    let wal = open(dir.path(), options());
    check_ranges(&wal, &expected.payloads, &mut rng, "found by recovery");
}

#[test]
fn replay_from_near_the_end_of_a_segment_reads_near_it() {
    let dir = tempfile::tempdir().unwrap();
    // Three 4 MiB segments; the last one is checked to be full-size.
    let payloads: Vec<Vec<u8>> = (0..11_000u32)
        .map(|i| i.to_le_bytes().repeat(256))
        .collect();
    {
        let wal = open(dir.path(), options(SEGMENT, RecoveryMode::TolerateTail));
        for payload in &payloads {
            wal.append(payload).unwrap();
        }
        wal.sync(None).unwrap();
        wal.close().unwrap();
    }
    let last_segment = segment_files(dir.path()).pop().unwrap();
    assert_eq!(std::fs::metadata(&last_segment).unwrap().len(), SEGMENT);
    let read = Arc::new(AtomicU64::new(0));
    let storage = {
        let read = read.clone();
        InjectingStorage::new(move |operation| {
            if let Operation::Read { length, .. } = operation {
                read.fetch_add(*length as u64, Ordering::SeqCst);
            }
            None
        })
    };
    let wal = Wal::open_with(
        dir.path(),
        Options {
            segment_size: SEGMENT,
            ..Options::default()
        },
        Arc::new(storage),
        None,
    )
    .unwrap();
    let last = payloads.len() as u64;
    for (from, label) in [(1, "start"), (last - 5, "end")] {
        read.store(0, Ordering::SeqCst);
        let records = replay_range(&wal, from, last);
        assert_eq!(records.len() as u64, last - from + 1);
        assert!(records
            .iter()
            .all(|(lsn, data)| data == &payloads[*lsn as usize - 1]));
        let bytes = read.load(Ordering::SeqCst);
        eprintln!("replay from the {label} of a ~4 MiB segment read {bytes} bytes");
        if label == "end" {
            assert!(
                bytes <= (1 << 20) + (128 << 10),
                "a replay from near the end read {bytes} bytes"
            );
        }
    }
}
