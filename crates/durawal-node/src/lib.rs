//! The N-API binding of durawal: types in, types out, errors mapped. Policy
//! (waiting, backpressure, validation) lives in the TypeScript layer.

mod errors;
mod options;
mod replay;

use std::path::PathBuf;
use std::sync::{Arc, Weak};

use durawal::{storage::OsStorage, FlushEvent, IoMode, Options, Wal};
use napi::bindgen_prelude::{AsyncTask, Uint8Array};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Status, Task};
use napi_derive::napi;

use crate::errors::to_js;
use crate::options::NativeOptions;
pub use crate::options::{limits, record_capacity, Limits};
use crate::replay::NativeReplay;

/// Called once per flush with the new durable LSN, or with `failed: true`
/// once the log is poisoned. Weak: it never keeps the event loop alive.
type FlushCallback = ThreadsafeFunction<FlushNotice, (), FlushNotice, Status, false, true>;

/// What the flusher tells JavaScript after a flush.
#[napi(object)]
pub struct FlushNotice {
    /// Highest durable LSN.
    pub durable_lsn: f64,
    /// True when the flush failed and the log is poisoned.
    pub failed: bool,
}

/// LSNs of an appended batch.
#[napi(object)]
pub struct LsnRange {
    /// First LSN of the batch.
    pub first: f64,
    /// Last LSN of the batch.
    pub last: f64,
}

/// What open found, as the TypeScript layer exposes it in `wal.recovery`.
#[napi(object)]
pub struct NativeRecovery {
    /// Segment files after recovery.
    pub segments: u32,
    /// Logical records after recovery.
    pub records: f64,
    /// Bytes cut from the tail.
    pub truncated_bytes: f64,
    /// Why, with file and offset.
    pub truncated_reason: Option<String>,
    /// Damaged regions skipped (skip-corrupted mode).
    pub skipped_regions: f64,
    /// LSNs lost in skipped regions.
    pub skipped_records: f64,
    /// Files deleted by recovery.
    pub removed_files: Vec<String>,
    /// Unrelated files left alone.
    pub stray_files: Vec<String>,
    /// `direct` or `buffered`.
    pub io_mode: String,
}

/// An open log.
#[napi]
pub struct NativeWal {
    wal: Arc<Wal>,
}

/// Opens the log in `dir` on the libuv pool (recovery reads and may write).
#[napi(ts_return_type = "Promise<NativeWal>")]
pub fn open(
    dir: String,
    options: NativeOptions,
    on_flush: ThreadsafeFunction<FlushNotice, (), FlushNotice, Status, false, true>,
) -> AsyncTask<OpenTask> {
    AsyncTask::new(OpenTask {
        dir: dir.into(),
        options: Some(options),
        on_flush: Some(on_flush),
    })
}

pub struct OpenTask {
    dir: PathBuf,
    options: Option<NativeOptions>,
    on_flush: Option<FlushCallback>,
}

impl Task for OpenTask {
    type Output = Wal;
    type JsValue = NativeWal;

    fn compute(&mut self) -> napi::Result<Wal> {
        let options =
            Options::try_from(self.options.take().expect("compute runs once")).map_err(to_js)?;
        let on_flush = self.on_flush.take().expect("compute runs once");
        let listener = Box::new(move |event: FlushEvent| {
            let notice = match event {
                FlushEvent::Durable(lsn) => FlushNotice {
                    durable_lsn: lsn as f64,
                    failed: false,
                },
                FlushEvent::Failed => FlushNotice {
                    durable_lsn: 0.0,
                    failed: true,
                },
            };
            // Non-blocking: the flusher must never wait on the JS thread.
            on_flush.call(notice, ThreadsafeFunctionCallMode::NonBlocking);
        });
        Wal::open_with(&self.dir, options, Arc::new(OsStorage), Some(listener)).map_err(to_js)
    }

    fn resolve(&mut self, env: Env, wal: Wal) -> napi::Result<NativeWal> {
        let wal = Arc::new(wal);
        // When a worker thread's environment is torn down the log is closed
        // (flushed, lock released) even if JavaScript never called close().
        let weak: Weak<Wal> = Arc::downgrade(&wal);
        env.add_env_cleanup_hook(weak, |weak| {
            if let Some(wal) = weak.upgrade() {
                let _ = wal.close();
            }
        })?;
        Ok(NativeWal { wal })
    }
}

#[napi]
impl NativeWal {
    /// Copies `data` into the log; returns its LSN.
    #[napi(catch_unwind)]
    pub fn append(&self, data: Uint8Array) -> napi::Result<f64> {
        self.wal.append(&data).map(|lsn| lsn as f64).map_err(to_js)
    }

    /// Appends `records` as one atomic batch.
    #[napi(catch_unwind)]
    pub fn append_batch(&self, records: Vec<Uint8Array>) -> napi::Result<LsnRange> {
        let slices: Vec<&[u8]> = records.iter().map(|record| &record[..]).collect();
        let (first, last) = self.wal.append_batch(&slices).map_err(to_js)?;
        Ok(LsnRange {
            first: first as f64,
            last: last as f64,
        })
    }

    /// Asks the flusher to make everything up to `lsn` durable; returns the durable LSN now.
    #[napi(catch_unwind)]
    pub fn request_sync(&self, lsn: f64) -> napi::Result<f64> {
        self.wal
            .request_sync(lsn as u64)
            .map(|durable| durable as f64)
            .map_err(to_js)
    }

    /// Throws the poisoning error when the log is poisoned.
    #[napi(catch_unwind)]
    pub fn check_health(&self) -> napi::Result<()> {
        self.wal.check_health().map_err(to_js)
    }

    /// Highest durable LSN.
    #[napi(getter)]
    pub fn durable_lsn(&self) -> f64 {
        self.wal.durable_lsn() as f64
    }

    /// LSN of the last appended record.
    #[napi(getter)]
    pub fn last_lsn(&self) -> f64 {
        self.wal.last_lsn() as f64
    }

    /// LSN of the first record, 0 when empty.
    #[napi(getter)]
    pub fn first_lsn(&self) -> f64 {
        self.wal.first_lsn() as f64
    }

    /// Number of data syncs since open.
    #[napi(getter)]
    pub fn sync_count(&self) -> f64 {
        self.wal.sync_count() as f64
    }

    /// What recovery found at open.
    #[napi]
    pub fn recovery(&self) -> NativeRecovery {
        let report = self.wal.recovery();
        NativeRecovery {
            segments: report.segments as u32,
            records: report.records as f64,
            truncated_bytes: report.truncated_bytes as f64,
            truncated_reason: report.truncated_reason.clone(),
            skipped_regions: report.skipped_regions as f64,
            skipped_records: report.skipped_records as f64,
            removed_files: report.removed_files.clone(),
            stray_files: report.stray_files.clone(),
            io_mode: match self.wal.io_mode() {
                IoMode::Direct => "direct".into(),
                IoMode::Buffered => "buffered".into(),
            },
        }
    }

    /// A cursor over the durable records with LSNs in `from..=to`.
    #[napi(catch_unwind)]
    pub fn replay(&self, from: f64, to: f64) -> napi::Result<NativeReplay> {
        self.wal
            .replay(from as u64, to as u64)
            .map(NativeReplay::new)
            .map_err(to_js)
    }

    /// Flushes, stops the flusher and releases the lock, on the libuv pool.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close(&self) -> AsyncTask<CloseTask> {
        AsyncTask::new(CloseTask {
            wal: self.wal.clone(),
        })
    }
}

pub struct CloseTask {
    wal: Arc<Wal>,
}

impl Task for CloseTask {
    type Output = ();
    type JsValue = ();

    fn compute(&mut self) -> napi::Result<()> {
        self.wal.close().map_err(to_js)
    }

    fn resolve(&mut self, _env: Env, _output: ()) -> napi::Result<()> {
        Ok(())
    }
}
