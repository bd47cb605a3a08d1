//! Pins the basic promise: what was appended comes back, byte for byte, with
//! dense LSNs that continue across close and reopen, over many segment
//! rotations and every sync policy; empty payloads and records of exactly the
//! size limit round-trip, one byte more is refused with `TooLarge`; replay
//! returns only durable records and honours its LSN range and batch limits.
//! Everything is compared with a plain `Vec` of the appended payloads.

mod common;

use std::time::Duration;

use common::*;
use durawal::{record_capacity, Error, Options, RecoveryMode, SyncPolicy, Wal};

fn session_options(sync: SyncPolicy) -> Options {
    Options {
        sync,
        ..options(SMALL_SEGMENT, RecoveryMode::TolerateTail)
    }
}

#[test]
fn appends_batches_and_syncs_survive_reopens_across_many_segments() {
    let mut rng = Rng::from_env(0x5eed_0101);
    let dir = tempfile::tempdir().unwrap();
    let limit = record_capacity(SMALL_SEGMENT);
    let mut expected = Expected::new(SMALL_SEGMENT);
    let policies = [
        SyncPolicy::Always,
        SyncPolicy::Never,
        SyncPolicy::Bytes(10_000),
        SyncPolicy::Interval(Duration::from_millis(3)),
        SyncPolicy::Always,
    ];
    for (session, policy) in policies.into_iter().enumerate() {
        let wal = open(dir.path(), session_options(policy));
        let count = expected.payloads.len() as u64;
        let report = wal.recovery();
        assert_eq!(report.records, count, "session {session}: records at open");
        assert_eq!(report.truncated_bytes, 0, "session {session}: {report:?}");
        assert_eq!(report.truncated_reason, None);
        let segments_before = if session == 0 {
            0
        } else {
            expected.layout.segments.len()
        };
        assert_eq!(
            report.segments, segments_before,
            "session {session}: segments at open"
        );
        assert_eq!((wal.last_lsn(), wal.durable_lsn()), (count, count));
        assert_eq!(wal.first_lsn(), if count == 0 { 0 } else { 1 });

        for round in 0..250 {
            match rng.range(0, 19) {
                0..=2 => {
                    let records = rng.batch(6, 300);
                    expected.append_batch(&wal, records);
                }
                3 => {
                    expected.append(&wal, Vec::new());
                }
                4 if round % 50 == 4 => {
                    expected.append(&wal, rng.bytes(limit as usize));
                }
                _ => {
                    let len = rng.range(1, 2500) as usize;
                    expected.append(&wal, rng.bytes(len));
                }
            }
            assert_eq!(wal.last_lsn(), expected.payloads.len() as u64);
            match rng.range(0, 14) {
                0 => {
                    let last = expected.payloads.len() as u64;
                    let durable = wal.sync(None).unwrap();
                    assert_eq!(durable, last, "sync(None) makes everything durable");
                    assert_eq!(wal.durable_lsn(), last);
                }
                1 => {
                    let target = rng.range(1, expected.payloads.len() as u64);
                    let durable = wal.sync(Some(target)).unwrap();
                    assert!(durable >= target, "sync({target}) returned {durable}");
                }
                _ => {}
            }
        }
        let last = expected.payloads.len() as u64;
        assert_eq!(wal.sync(None).unwrap(), last);
        let records = read_all(&wal);
        assert_records(&records, &expected.payloads);
        wal.close().unwrap();
        wal.close().unwrap();
        assert!(matches!(wal.append(b"after close"), Err(Error::Closed)));
    }
    assert!(
        expected.layout.segments.len() >= 20,
        "only {} segments",
        expected.layout.segments.len()
    );
    let names: Vec<String> = segment_files(dir.path())
        .iter()
        .map(|p| file_name(p))
        .collect();
    let model: Vec<String> = (0..expected.layout.segments.len())
        .map(|s| expected.layout.file_name(s))
        .collect();
    assert_eq!(names, model, "segment files");

    let wal = open(dir.path(), options(SMALL_SEGMENT, RecoveryMode::Absolute));
    assert_eq!(wal.recovery().segments, expected.layout.segments.len());
    assert_eq!(wal.recovery().records, expected.payloads.len() as u64);
    assert_log(&wal, &expected.payloads);
    assert_eq!(wal.first_lsn(), 1);

    // Sub-ranges and tiny batch limits return exactly the matching slice.
    let last = expected.payloads.len() as u64;
    for _ in 0..40 {
        let from = rng.range(1, last);
        let to = rng.range(from, last + 5);
        let (max_records, max_bytes) = (rng.range(1, 50) as usize, rng.range(1, 100_000) as usize);
        let mut cursor = wal.replay(from, to).unwrap();
        let mut next = from;
        while let Some(batch) = cursor.next_batch(max_records, max_bytes).unwrap() {
            assert!(!batch.is_empty());
            // An atomic batch (at most 6 records here) is never split across
            // replay batches, so it may take a batch past max_records.
            assert!(
                batch.len() < max_records + 6,
                "{} > {max_records}",
                batch.len()
            );
            let mut start = 0;
            for (end, lsn) in batch.ends.iter().zip(&batch.lsns) {
                assert_eq!(*lsn, next, "replay({from}, {to})");
                assert!(
                    batch.data[start..*end as usize] == expected.payloads[(lsn - 1) as usize],
                    "replay({from}, {to}): wrong bytes at LSN {lsn}"
                );
                start = *end as usize;
                next += 1;
            }
        }
        assert_eq!(next, to.min(last) + 1, "replay({from}, {to}) stopped early");
    }
    let mut cursor = wal.replay(last + 1, u64::MAX).unwrap();
    assert!(
        cursor.next_batch(10, 10).unwrap().is_none(),
        "nothing after the last LSN"
    );
}

#[test]
fn records_of_exactly_the_limit_fit_and_one_byte_more_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let default_limit = record_capacity(SMALL_SEGMENT);
    let mut expected = Expected::new(SMALL_SEGMENT);
    let mut rng = Rng::from_env(0x5eed_0102);
    {
        let wal = open(
            dir.path(),
            options(SMALL_SEGMENT, RecoveryMode::TolerateTail),
        );
        for _ in 0..3 {
            expected.append(&wal, rng.bytes(default_limit as usize));
        }
        match wal.append(&vec![7u8; default_limit as usize + 1]) {
            Err(Error::TooLarge { what, size, limit }) => {
                assert_eq!(
                    (what, size, limit),
                    ("record", default_limit + 1, default_limit)
                )
            }
            other => panic!("expected TooLarge, got {:?}", other.map(|_| ())),
        }
        let too_big = vec![1u8; default_limit as usize + 1];
        assert!(matches!(
            wal.append_batch(&[b"a", &too_big]),
            Err(Error::TooLarge { what: "record", .. })
        ));
        // A batch is one physical record: its encoded payload (count, lengths,
        // bytes) must fit the same limit.
        let half = vec![2u8; (default_limit / 2) as usize];
        assert!(matches!(
            wal.append_batch(&[&half, &half]),
            Err(Error::TooLarge { what: "batch", .. })
        ));
        let first = (default_limit - 12) as usize / 2;
        let second = (default_limit - 12) as usize - first;
        expected.append_batch(&wal, vec![rng.bytes(first), rng.bytes(second)]);
        assert!(matches!(
            wal.append_batch(&[]),
            Err(Error::InvalidArgument(_))
        ));
        expected.append(&wal, Vec::new());
        expected.append_batch(&wal, vec![Vec::new(), Vec::new(), vec![9]]);
        assert_eq!(wal.sync(None).unwrap(), expected.payloads.len() as u64);
        wal.close().unwrap();
    }
    {
        // A log opened with a smaller limit refuses larger appends but still
        // reads every record written under the larger one.
        let small = Options {
            max_record_size: Some(1000),
            ..options(SMALL_SEGMENT, RecoveryMode::Absolute)
        };
        let wal = open(dir.path(), small);
        assert_log(&wal, &expected.payloads);
        expected.append(&wal, rng.bytes(1000));
        assert!(matches!(
            wal.append(&[0u8; 1001]),
            Err(Error::TooLarge {
                size: 1001,
                limit: 1000,
                ..
            })
        ));
        wal.close().unwrap();
    }
    let wal = open(dir.path(), options(SMALL_SEGMENT, RecoveryMode::Absolute));
    assert_log(&wal, &expected.payloads);
}

#[test]
fn options_out_of_range_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        Options {
            segment_size: SMALL_SEGMENT - 4096,
            ..Options::default()
        },
        Options {
            segment_size: SMALL_SEGMENT + 1,
            ..Options::default()
        },
        Options {
            max_record_size: Some(0),
            ..options(SMALL_SEGMENT, RecoveryMode::TolerateTail)
        },
        Options {
            max_record_size: Some(record_capacity(SMALL_SEGMENT) + 1),
            ..options(SMALL_SEGMENT, RecoveryMode::TolerateTail)
        },
        Options {
            sync: SyncPolicy::Bytes(0),
            ..Options::default()
        },
        Options {
            sync: SyncPolicy::Interval(Duration::ZERO),
            ..Options::default()
        },
    ];
    for (index, case) in cases.into_iter().enumerate() {
        match Wal::open(dir.path(), case) {
            Err(Error::InvalidArgument(_)) => {}
            Err(other) => panic!("case {index}: expected InvalidArgument, got {other}"),
            Ok(_) => panic!("case {index}: accepted"),
        }
    }
}

#[test]
fn empty_log_reopens_empty_and_starts_at_lsn_one() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let wal = open(dir.path(), options(SMALL_SEGMENT, RecoveryMode::Absolute));
        assert_eq!(
            (wal.first_lsn(), wal.last_lsn(), wal.durable_lsn()),
            (0, 0, 0)
        );
        assert_eq!(wal.recovery().records, 0);
        assert!(read_all(&wal).is_empty());
        wal.close().unwrap();
    }
    let wal = open(dir.path(), options(SMALL_SEGMENT, RecoveryMode::Absolute));
    assert_eq!(wal.append(b"first").unwrap(), 1);
    assert_eq!(wal.first_lsn(), 1);
    wal.close().unwrap();
    let wal = open(dir.path(), options(SMALL_SEGMENT, RecoveryMode::Absolute));
    assert_log(&wal, &[b"first".to_vec()]);
}

#[test]
fn replay_returns_only_durable_records_and_a_second_writer_is_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(
        dir.path(),
        Options {
            sync: SyncPolicy::Never,
            ..options(SMALL_SEGMENT, RecoveryMode::TolerateTail)
        },
    );
    let payloads: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 100 + i as usize]).collect();
    for payload in &payloads[..6] {
        wal.append(payload).unwrap();
    }
    let durable = wal.sync(Some(4)).unwrap();
    assert!(
        (4..=6).contains(&durable),
        "sync(Some(4)) returned {durable}"
    );
    for payload in &payloads[6..] {
        wal.append(payload).unwrap();
    }
    assert_eq!(wal.last_lsn(), 10);
    // With SyncPolicy::Never nothing else makes records durable until the next sync.
    assert_eq!(wal.durable_lsn(), durable);
    assert_records(&read_all(&wal), &payloads[..durable as usize]);
    match Wal::open(dir.path(), Options::default()) {
        Err(Error::Locked { .. }) => {}
        Err(other) => panic!("expected Locked, got {other}"),
        Ok(_) => panic!("a second writer opened a locked log"),
    }
    wal.sync(None).unwrap();
    assert_log(&wal, &payloads);
}
