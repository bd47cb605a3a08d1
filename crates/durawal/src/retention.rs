//! Retention: removing the oldest sealed segments without being asked, once
//! the log holds more than a number of bytes or they are older than an age.
//!
//! A worker thread of its own checks the policy about once a second (more
//! often for an age under two seconds) and removes what it allows through
//! the same path as `truncate_before`, so pins, `HEAD` and crash safety are
//! the same. It never runs on the flush thread: the removals and the
//! directory sync they need must not delay a group commit.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crate::catalogue::{self, SegmentCatalogue};
use crate::error::{panic_message, Error, Result};
use crate::truncation::remove_head;
use crate::wal::Shared;

/// How often the worker checks the policy at most.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// When sealed segments are removed without being asked. A segment goes
/// when either limit says so; the segment appends go to never does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep the segment files at or below this many bytes in total.
    pub bytes: Option<u64>,
    /// Remove a segment this long after it was sealed (for a segment found
    /// sealed at open: after its file was last modified).
    pub age: Option<Duration>,
    /// Never remove the latest durable checkpoint or anything after it (and
    /// nothing at all while there is no checkpoint).
    pub keep_from_checkpoint: bool,
    /// A reader (replay or tail) further behind the end of the log than this
    /// many bytes of segments no longer holds retention back: what it still
    /// needed is removed and it gets `Error::Truncated`. `None`: readers
    /// always hold it back.
    pub reader_lag_bytes: Option<u64>,
}

impl Retention {
    /// True when some limit is set.
    pub fn is_enabled(&self) -> bool {
        self.bytes.is_some() || self.age.is_some()
    }

    /// The LSN below which whole segments may go now; `None` for nothing.
    fn bound(&self, catalogue: &SegmentCatalogue, now: SystemTime) -> Option<u64> {
        let segments: Vec<_> = catalogue.segments().collect();
        let mut total = catalogue.total_bytes();
        let mut removable = 0;
        for (_, entry) in segments.iter().take(segments.len().saturating_sub(1)) {
            let over_size = self.bytes.is_some_and(|limit| total > limit);
            let too_old = match (self.age, entry.sealed_at) {
                (Some(age), Some(sealed)) => {
                    now.duration_since(sealed).is_ok_and(|held| held > age)
                }
                _ => false,
            };
            if !(over_size || too_old) {
                break;
            }
            total -= entry.bytes;
            removable += 1;
        }
        if removable == 0 {
            return None;
        }
        let mut bound = segments[removable].0;
        if self.keep_from_checkpoint {
            bound = bound.min(catalogue.last_checkpoint()?);
        }
        Some(bound)
    }

    fn check_interval(&self) -> Duration {
        match self.age {
            Some(age) => CHECK_INTERVAL.min(age / 2).max(Duration::from_millis(1)),
            None => CHECK_INTERVAL,
        }
    }
}

/// Applies `policy` to the log once; returns its first LSN afterwards.
pub(crate) fn apply(shared: &Shared, policy: &Retention) -> Result<u64> {
    let bound = policy.bound(&catalogue::lock(&shared.catalogue), SystemTime::now());
    match bound {
        Some(bound) => remove_head(shared, bound, policy.reader_lag_bytes),
        None => Ok(shared.first_lsn()),
    }
}

/// The thread that applies a retention policy until it is stopped.
pub(crate) struct RetentionWorker {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: Option<JoinHandle<()>>,
}

impl RetentionWorker {
    /// Starts applying `policy` to the log of `shared`. A failure poisons the
    /// log (as a failed write does) and ends the worker; so does a panic.
    pub fn start(shared: Arc<Shared>, policy: Retention) -> Result<Self> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let stopped = stop.clone();
        let dir = shared.dir.clone();
        let handle = std::thread::Builder::new()
            .name("durawal-retention".into())
            .spawn(move || {
                let work = std::panic::AssertUnwindSafe(|| run(&shared, &policy, &stopped));
                if let Err(panic) = std::panic::catch_unwind(work) {
                    let _ = shared.fail_and_announce(Error::Internal(format!(
                        "the retention thread panicked: {}",
                        panic_message(&*panic)
                    )));
                }
            })
            .map_err(|e| Error::io("spawn", dir, e))?;
        Ok(Self {
            stop,
            handle: Some(handle),
        })
    }

    /// Stops the worker and waits for it (a removal in progress finishes).
    pub fn stop(&mut self) {
        *self.stop.0.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.stop.1.notify_all();
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

fn run(shared: &Shared, policy: &Retention, stop: &(Mutex<bool>, Condvar)) {
    let interval = policy.check_interval();
    let mut stopped = stop.0.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        stopped = stop
            .1
            .wait_timeout(stopped, interval)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
        if *stopped {
            return;
        }
        // Poisoned or closing: nothing more to do (the error is the log's).
        if apply(shared, policy).is_err() {
            return;
        }
    }
}
