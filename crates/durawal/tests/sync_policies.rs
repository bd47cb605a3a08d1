//! Pins the sync policies' promise that records become durable without an
//! explicit sync: under `Interval` after the interval, under `Bytes` once the
//! threshold is pending. (A flusher that sleeps until asked would leave these
//! records undurable forever; the tests wait generously rather than time it.)

use std::time::{Duration, Instant};

use durawal::{Options, SyncPolicy, Wal};

fn wait_until_durable(wal: &Wal, lsn: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if wal.durable_lsn() >= lsn {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

fn open(policy: SyncPolicy) -> (tempfile::TempDir, Wal) {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        sync: policy,
        segment_size: 64 * 1024,
        ..Options::default()
    };
    let wal = Wal::open(dir.path(), options).unwrap();
    (dir, wal)
}

#[test]
fn interval_policy_syncs_a_lone_record_by_itself() {
    let (_dir, wal) = open(SyncPolicy::Interval(Duration::from_millis(5)));
    std::thread::sleep(Duration::from_millis(20));
    let lsn = wal.append(b"lonely").unwrap();
    assert!(
        wait_until_durable(&wal, lsn),
        "interval policy never synced LSN {lsn}"
    );
    let second = wal.append(b"again").unwrap();
    assert!(
        wait_until_durable(&wal, second),
        "interval policy never synced LSN {second}"
    );
    wal.close().unwrap();
}

#[test]
fn bytes_policy_syncs_once_the_threshold_is_pending() {
    let (_dir, wal) = open(SyncPolicy::Bytes(200));
    let mut last = 0;
    for _ in 0..4 {
        last = wal.append(&[7u8; 60]).unwrap();
    }
    assert!(
        wait_until_durable(&wal, last),
        "bytes policy never synced LSN {last}"
    );
    wal.close().unwrap();
}

#[test]
fn close_makes_everything_durable_under_every_policy() {
    for policy in [
        SyncPolicy::Never,
        SyncPolicy::Always,
        SyncPolicy::Bytes(1 << 30),
        SyncPolicy::Interval(Duration::from_secs(3600)),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let options = Options {
            sync: policy,
            segment_size: 64 * 1024,
            ..Options::default()
        };
        let wal = Wal::open(dir.path(), options.clone()).unwrap();
        for index in 0..500u32 {
            wal.append(&index.to_le_bytes().repeat(10)).unwrap();
        }
        wal.close().unwrap();
        assert_eq!(wal.durable_lsn(), 500, "{policy:?}");
        let reopened = Wal::open(dir.path(), options).unwrap();
        assert_eq!(reopened.last_lsn(), 500, "{policy:?}");
        reopened.close().unwrap();
    }
}
