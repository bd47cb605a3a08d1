//! The workload every case runs: three threads appending records of 1.5 to
//! 4.5 KiB and syncing after every third (through two segment rotations and
//! more), a checkpoint, `truncate_before` at the durable LSN (which removes
//! the first segments), a few more records, and a close. Every call is noted
//! with when it started and ended (one counter for all threads), so that
//! the checks can tell which calls began after the log reported a failure.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::common::Rng;
use durawal::storage::Storage;
use durawal::{Error, Options, SyncPolicy, Wal};

const THREADS: u64 = 3;
const RECORDS_PER_THREAD: u64 = 16;
const SYNC_EVERY: u64 = 3;
const RECORDS_AFTER_TRUNCATION: u64 = 6;
/// Segments small enough that the workload rotates through several.
const SEGMENT_SIZE: u64 = 64 * 1024;

/// The options of every open of the matrix's logs.
pub fn options() -> Options {
    Options {
        segment_size: SEGMENT_SIZE,
        first_segment_size: Some(SEGMENT_SIZE),
        sync: SyncPolicy::Never,
        ..Options::default()
    }
}

/// The bytes of record `index` of `thread`: its own length and content.
fn payload(thread: u64, index: u64) -> Vec<u8> {
    let mut rng = Rng::new(thread << 32 | index);
    let length = rng.range(1500, 4500) as usize;
    rng.bytes(length)
}

/// One call into the log.
pub struct Call {
    pub what: &'static str,
    /// The shared counter when the call began and when it returned.
    pub started: u64,
    pub ended: u64,
    pub error: Option<Error>,
}

/// What the workload did.
#[derive(Default)]
pub struct Run {
    /// Why the log did not open, when it did not.
    pub open_error: Option<Error>,
    pub calls: Vec<Call>,
    /// Every record the log took, by LSN.
    pub appended: BTreeMap<u64, Vec<u8>>,
    /// The highest LSN a sync (or the close) acknowledged.
    pub acknowledged: u64,
    /// The LSN `truncate_before` was asked to cut below.
    pub truncated_below: Option<u64>,
}

/// Notes calls as they return.
struct Recorder {
    clock: AtomicU64,
    run: Mutex<Run>,
}

impl Recorder {
    fn call<T>(&self, what: &'static str, call: impl FnOnce() -> Result<T, Error>) -> Option<T> {
        let started = self.clock.fetch_add(1, Ordering::SeqCst);
        let result = call();
        let ended = self.clock.fetch_add(1, Ordering::SeqCst);
        let (value, error) = match result {
            Ok(value) => (Some(value), None),
            Err(error) => (None, Some(error)),
        };
        self.run.lock().unwrap().calls.push(Call {
            what,
            started,
            ended,
            error,
        });
        value
    }

    fn append(&self, wal: &Wal, payload: Vec<u8>) {
        if let Some(lsn) = self.call("append", || wal.append(&payload)) {
            self.run.lock().unwrap().appended.insert(lsn, payload);
        }
    }

    fn sync(&self, wal: &Wal) {
        if let Some(durable) = self.call("sync", || wal.sync(None)) {
            let mut run = self.run.lock().unwrap();
            run.acknowledged = run.acknowledged.max(durable);
        }
    }
}

/// Runs the workload on a new log in `dir` through `storage`.
pub fn run(dir: &Path, storage: Arc<dyn Storage>) -> Run {
    let wal = match Wal::open_with(dir, options(), storage, None) {
        Ok(wal) => wal,
        Err(error) => {
            return Run {
                open_error: Some(error),
                ..Run::default()
            }
        }
    };
    let recorder = Recorder {
        clock: AtomicU64::new(0),
        run: Mutex::new(Run::default()),
    };
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let (wal, recorder) = (&wal, &recorder);
            scope.spawn(move || {
                for index in 0..RECORDS_PER_THREAD {
                    recorder.append(wal, payload(thread, index));
                    if index % SYNC_EVERY == SYNC_EVERY - 1 {
                        recorder.sync(wal);
                    }
                }
            });
        }
    });
    let checkpoint = b"checkpoint".to_vec();
    if let Some(lsn) = recorder.call("checkpoint", || wal.checkpoint(&checkpoint)) {
        recorder
            .run
            .lock()
            .unwrap()
            .appended
            .insert(lsn, checkpoint);
    }
    recorder.sync(&wal);
    let below = wal.durable_lsn();
    recorder.run.lock().unwrap().truncated_below = Some(below);
    recorder.call("truncate_before", || wal.truncate_before(below));
    for index in 0..RECORDS_AFTER_TRUNCATION {
        recorder.append(&wal, payload(THREADS, index));
    }
    recorder.sync(&wal);
    if recorder.call("close", || wal.close()).is_some() {
        let mut run = recorder.run.lock().unwrap();
        run.acknowledged = run.appended.keys().last().copied().unwrap_or(0);
    }
    recorder.run.into_inner().unwrap()
}
