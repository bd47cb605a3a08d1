//! Pins group commit under contention: eight threads append single records
//! and batches and call `sync` concurrently while segments rotate every few
//! dozen records, and a reader replays the durable prefix at the same time.
//! Every LSN is handed out exactly once, the log is dense, every record a
//! thread saw acknowledged by a successful `sync` is on disk with its bytes
//! after close and reopen, and the concurrent reader never sees a hole or a
//! wrong byte. Payloads describe themselves (thread, sequence number, then
//! bytes generated from those two), so any reader can check any record.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::*;
use durawal::{RecoveryMode, Wal};

const THREADS: u64 = 8;
const RECORDS_PER_THREAD: u64 = 1000;

fn payload(thread: u64, sequence: u64) -> Vec<u8> {
    let mut rng = Rng::new(thread << 32 | sequence);
    let length = rng.range(0, 700) as usize;
    let mut bytes = (thread as u32).to_le_bytes().to_vec();
    bytes.extend_from_slice(&(sequence as u32).to_le_bytes());
    bytes.extend_from_slice(&rng.bytes(length));
    bytes
}

/// Checks that `bytes` is exactly what `payload` makes for the ids it carries.
fn self_consistent(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && {
        let thread = u32::from_le_bytes(bytes[0..4].try_into().unwrap()) as u64;
        let sequence = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as u64;
        thread < THREADS && sequence < RECORDS_PER_THREAD && payload(thread, sequence) == bytes
    }
}

struct ThreadResult {
    appended: Vec<(u64, Vec<u8>)>,
    acknowledged: Vec<u64>,
}

fn writer(wal: &Wal, thread: u64) -> ThreadResult {
    let mut rng = Rng::new(0x5eed_0601 ^ thread);
    let mut appended = Vec::new();
    let mut acknowledged = Vec::new();
    let mut unacknowledged = Vec::new();
    let mut sequence = 0;
    while sequence < RECORDS_PER_THREAD {
        if rng.range(0, 5) == 0 {
            let count = rng.range(1, 4).min(RECORDS_PER_THREAD - sequence);
            let records: Vec<Vec<u8>> = (sequence..sequence + count)
                .map(|s| payload(thread, s))
                .collect();
            let slices: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
            let (first, last) = wal.append_batch(&slices).unwrap();
            assert_eq!(last - first + 1, count);
            for (lsn, record) in (first..=last).zip(records) {
                appended.push((lsn, record));
                unacknowledged.push(lsn);
            }
            sequence += count;
        } else {
            let record = payload(thread, sequence);
            let lsn = wal.append(&record).unwrap();
            appended.push((lsn, record));
            unacknowledged.push(lsn);
            sequence += 1;
        }
        if rng.range(0, 2) == 0 {
            let target = if rng.range(0, 3) == 0 {
                Some(*unacknowledged.last().unwrap())
            } else {
                None
            };
            let durable = wal.sync(target).unwrap();
            unacknowledged.retain(|&lsn| {
                if lsn <= durable {
                    acknowledged.push(lsn);
                }
                lsn > durable
            });
            assert!(
                unacknowledged.is_empty(),
                "sync returned {durable} before this thread's records were durable"
            );
        }
    }
    ThreadResult {
        appended,
        acknowledged,
    }
}

/// Replays the durable prefix over and over while the writers run.
fn reader(wal: &Wal, stop: &AtomicBool) -> usize {
    let mut passes = 0;
    let mut longest = 0;
    while !stop.load(Ordering::Acquire) {
        let durable = wal.durable_lsn();
        let mut cursor = wal.replay(1, durable).unwrap();
        let mut next = 1;
        while let Some(batch) = cursor.next_batch(64, 1 << 16).unwrap() {
            let mut start = 0;
            for (end, lsn) in batch.ends.iter().zip(&batch.lsns) {
                assert_eq!(*lsn, next, "concurrent replay skipped or repeated an LSN");
                assert!(
                    self_consistent(&batch.data[start..*end as usize]),
                    "concurrent replay returned wrong bytes at LSN {lsn}"
                );
                start = *end as usize;
                next += 1;
            }
        }
        assert!(
            next > durable,
            "concurrent replay stopped at {} of durable {durable}",
            next - 1
        );
        assert!(durable >= longest, "durable LSN went backwards");
        longest = durable;
        passes += 1;
    }
    passes
}

#[test]
fn every_lsn_acknowledged_to_any_thread_survives_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Arc::new(open(
        dir.path(),
        options(SMALL_SEGMENT, RecoveryMode::TolerateTail),
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let reader_handle = {
        let (wal, stop) = (wal.clone(), stop.clone());
        std::thread::spawn(move || reader(&wal, &stop))
    };
    let writers: Vec<_> = (0..THREADS)
        .map(|thread| {
            let wal = wal.clone();
            std::thread::spawn(move || writer(&wal, thread))
        })
        .collect();
    let results: Vec<ThreadResult> = writers.into_iter().map(|h| h.join().unwrap()).collect();
    stop.store(true, Ordering::Release);
    let passes = reader_handle.join().unwrap();
    assert!(passes > 0);

    let mut by_lsn: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    for result in &results {
        for (lsn, bytes) in &result.appended {
            assert!(
                by_lsn.insert(*lsn, bytes.clone()).is_none(),
                "LSN {lsn} handed out twice"
            );
        }
    }
    let total = THREADS * RECORDS_PER_THREAD;
    assert_eq!(by_lsn.len() as u64, total);
    assert_eq!(
        by_lsn.keys().copied().collect::<Vec<_>>(),
        (1..=total).collect::<Vec<_>>(),
        "LSNs are dense"
    );
    assert_eq!(wal.last_lsn(), total);
    wal.close().unwrap();
    drop(wal);
    assert!(
        segment_files(dir.path()).len() > 5,
        "the workload must rotate segments"
    );

    let wal = open(dir.path(), options(SMALL_SEGMENT, RecoveryMode::Absolute));
    let on_disk: BTreeMap<u64, Vec<u8>> = read_all(&wal).into_iter().collect();
    let acknowledged: usize = results.iter().map(|r| r.acknowledged.len()).sum();
    assert!(acknowledged > 0);
    for result in &results {
        for lsn in &result.acknowledged {
            assert!(
                on_disk.get(lsn) == by_lsn.get(lsn),
                "acknowledged LSN {lsn} missing or wrong after reopen"
            );
        }
    }
    // Close flushes everything, so every appended record is there too.
    assert_eq!(on_disk.len(), by_lsn.len());
    assert!(
        on_disk == by_lsn,
        "the reopened log differs from what was appended"
    );
}
