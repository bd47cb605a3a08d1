//! The N-API binding of durawal: types in, types out, errors mapped. Policy
//! (waiting, backpressure, validation) lives in the TypeScript layer. Every
//! entry point runs under [`guarded`], so no panic reaches Node.

mod cleanup_hook;
mod errors;
mod flush_listener;
mod guard;
mod options;
mod reader;
mod recovery;
mod replay;
#[cfg(feature = "test-support")]
mod test_support;

use std::cell::Cell;
use std::path::PathBuf;
use std::sync::Arc;

use durawal::{storage::OsStorage, Error, Options, Wal};
use napi::bindgen_prelude::{AsyncTask, ObjectFinalize, Uint8Array};
use napi::threadsafe_function::ThreadsafeFunction;
use napi::{Env, Status, Task};
use napi_derive::napi;

use crate::cleanup_hook::CleanupHook;
use crate::errors::to_js;
pub use crate::flush_listener::FlushNotice;
use crate::flush_listener::{flush_listener, FlushCallback, ListenerFailure};
use crate::guard::guarded;
use crate::options::NativeOptions;
pub use crate::options::{limits, record_capacity, Limits};
pub use crate::reader::{open_read_only, NativeReader};
use crate::recovery::{recovery_to_js, NativeRecovery};
use crate::replay::NativeReplay;
#[cfg(feature = "test-support")]
pub use crate::test_support::{inject_panic, live_cleanup_hooks};

/// LSNs of an appended batch.
#[napi(object)]
pub struct LsnRange {
    /// First LSN of the batch.
    pub first: f64,
    /// Last LSN of the batch.
    pub last: f64,
}

/// An open log.
#[napi(custom_finalize)]
pub struct NativeWal {
    wal: Arc<Wal>,
    /// Closes the log if the environment is torn down first; taken by `close`.
    cleanup_hook: Cell<Option<CleanupHook>>,
    /// The panic that lost a flush notice, reported by `check_health`.
    listener_failure: ListenerFailure,
}

/// Opens the log in `dir` on the libuv pool (recovery reads and may write).
#[napi(ts_return_type = "Promise<NativeWal>")]
pub fn open(
    dir: String,
    options: NativeOptions,
    // Spelled out, not `FlushCallback`: napi derives the callback's
    // TypeScript signature from this type.
    on_flush: ThreadsafeFunction<FlushNotice, (), FlushNotice, Status, false, true>,
) -> napi::Result<AsyncTask<OpenTask>> {
    guarded("open", || {
        Ok(AsyncTask::new(OpenTask {
            dir: dir.into(),
            options: Some(options),
            on_flush: Some(on_flush),
            listener_failure: ListenerFailure::default(),
        }))
    })
}

pub struct OpenTask {
    dir: PathBuf,
    options: Option<NativeOptions>,
    on_flush: Option<FlushCallback>,
    listener_failure: ListenerFailure,
}

impl Task for OpenTask {
    type Output = Wal;
    type JsValue = NativeWal;

    fn compute(&mut self) -> napi::Result<Wal> {
        guarded("open.compute", || {
            let (Some(options), Some(on_flush)) = (self.options.take(), self.on_flush.take())
            else {
                return Err(to_js(Error::Internal("open ran twice".into())));
            };
            let options = Options::try_from(options).map_err(to_js)?;
            let listener = flush_listener(on_flush, self.listener_failure.clone());
            Wal::open_with(&self.dir, options, Arc::new(OsStorage), Some(listener)).map_err(to_js)
        })
    }

    fn resolve(&mut self, env: Env, wal: Wal) -> napi::Result<NativeWal> {
        // A panic here drops `wal`, which closes it.
        guarded("open.resolve", || {
            let wal = Arc::new(wal);
            // When a worker thread's environment is torn down the log is
            // closed (flushed, lock released) even if JavaScript never called
            // close().
            let cleanup_hook = CleanupHook::register(&env, Arc::downgrade(&wal))?;
            Ok(NativeWal {
                wal,
                cleanup_hook: Cell::new(Some(cleanup_hook)),
                listener_failure: self.listener_failure.clone(),
            })
        })
    }
}

#[napi]
impl NativeWal {
    /// Copies `data` into the log; returns its LSN.
    #[napi]
    pub fn append(&self, data: Uint8Array) -> napi::Result<f64> {
        guarded("append", || {
            self.wal.append(&data).map(|lsn| lsn as f64).map_err(to_js)
        })
    }

    /// Appends a checkpoint record; returns its LSN.
    #[napi]
    pub fn checkpoint(&self, data: Uint8Array) -> napi::Result<f64> {
        guarded("checkpoint", || {
            self.wal
                .checkpoint(&data)
                .map(|lsn| lsn as f64)
                .map_err(to_js)
        })
    }

    /// LSN of the latest durable checkpoint, `null` when there is none.
    #[napi(getter)]
    pub fn last_checkpoint(&self) -> napi::Result<Option<f64>> {
        guarded("lastCheckpoint", || {
            Ok(self.wal.last_checkpoint().map(|lsn| lsn as f64))
        })
    }

    /// Number of segment files.
    #[napi(getter)]
    pub fn segment_count(&self) -> napi::Result<u32> {
        guarded("segmentCount", || Ok(self.wal.segment_usage().0 as u32))
    }

    /// Bytes of all segment files.
    #[napi(getter)]
    pub fn segment_bytes(&self) -> napi::Result<f64> {
        guarded("segmentBytes", || Ok(self.wal.segment_usage().1 as f64))
    }

    /// Removes whole segments below `lsn` on the libuv pool; resolves with the new first LSN.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn truncate_before(&self, lsn: f64) -> napi::Result<AsyncTask<Truncation>> {
        guarded("truncateBefore", || {
            Ok(AsyncTask::new(Truncation {
                wal: self.wal.clone(),
                end: TruncatedEnd::Head,
                lsn: lsn as u64,
            }))
        })
    }

    /// Cuts the log back to `lsn` on the libuv pool; resolves with the new last LSN.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn truncate_after(&self, lsn: f64) -> napi::Result<AsyncTask<Truncation>> {
        guarded("truncateAfter", || {
            Ok(AsyncTask::new(Truncation {
                wal: self.wal.clone(),
                end: TruncatedEnd::Tail,
                lsn: lsn as u64,
            }))
        })
    }

    /// Appends `records` as one atomic batch.
    #[napi]
    pub fn append_batch(&self, records: Vec<Uint8Array>) -> napi::Result<LsnRange> {
        guarded("appendBatch", || {
            let slices: Vec<&[u8]> = records.iter().map(|record| &record[..]).collect();
            let (first, last) = self.wal.append_batch(&slices).map_err(to_js)?;
            Ok(LsnRange {
                first: first as f64,
                last: last as f64,
            })
        })
    }

    /// Asks the flusher to make everything up to `lsn` durable; returns the durable LSN now.
    #[napi]
    pub fn request_sync(&self, lsn: f64) -> napi::Result<f64> {
        guarded("requestSync", || {
            self.wal
                .request_sync(lsn as u64)
                .map(|durable| durable as f64)
                .map_err(to_js)
        })
    }

    /// Throws the poisoning error when the log is poisoned, or the panic that
    /// lost a flush notice.
    #[napi]
    pub fn check_health(&self) -> napi::Result<()> {
        guarded("checkHealth", || {
            self.wal.check_health().map_err(to_js)?;
            match self.listener_failure.get() {
                Some(message) => Err(to_js(Error::Internal(message.clone()))),
                None => Ok(()),
            }
        })
    }

    /// Highest durable LSN.
    #[napi(getter)]
    pub fn durable_lsn(&self) -> napi::Result<f64> {
        guarded("durableLsn", || Ok(self.wal.durable_lsn() as f64))
    }

    /// LSN of the last appended record.
    #[napi(getter)]
    pub fn last_lsn(&self) -> napi::Result<f64> {
        guarded("lastLsn", || Ok(self.wal.last_lsn() as f64))
    }

    /// LSN of the first record, 0 when empty.
    #[napi(getter)]
    pub fn first_lsn(&self) -> napi::Result<f64> {
        guarded("firstLsn", || Ok(self.wal.first_lsn() as f64))
    }

    /// Number of data syncs since open.
    #[napi(getter)]
    pub fn sync_count(&self) -> napi::Result<f64> {
        guarded("syncCount", || Ok(self.wal.sync_count() as f64))
    }

    /// Record bytes appended and not yet durable.
    #[napi(getter)]
    pub fn buffered_bytes(&self) -> napi::Result<f64> {
        guarded("bufferedBytes", || Ok(self.wal.buffered_bytes() as f64))
    }

    /// What recovery found at open.
    #[napi]
    pub fn recovery(&self) -> napi::Result<NativeRecovery> {
        guarded("recovery", || {
            Ok(recovery_to_js(
                self.wal.recovery(),
                Some(self.wal.io_mode()),
            ))
        })
    }

    /// A cursor over the durable records with LSNs in `from..=to`; its
    /// `follow()` extends it to the durable LSN of the moment.
    #[napi]
    pub fn replay(&self, from: f64, to: f64) -> napi::Result<NativeReplay> {
        guarded("replay", || {
            let wal = self.wal.clone();
            self.wal
                .replay(from as u64, to as u64)
                .map(|cursor| NativeReplay::new(cursor, Box::new(move || wal.durable_lsn())))
                .map_err(to_js)
        })
    }

    /// Flushes, stops the flusher and releases the lock, on the libuv pool.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close(&self) -> napi::Result<AsyncTask<CloseTask>> {
        guarded("close", || {
            // The hook is no longer needed: Node waits for queued async work
            // before it tears an environment down, so this close finishes.
            drop(self.cleanup_hook.take());
            Ok(AsyncTask::new(CloseTask {
                wal: self.wal.clone(),
            }))
        })
    }
}

impl ObjectFinalize for NativeWal {
    /// Dropping the last reference closes the log (flush, join, unlock):
    /// real work, so it is guarded like an entry point. An error thrown from
    /// a finalizer would surface as an uncaught exception, and nobody is
    /// waiting for this one, so a panic is only printed (by the panic hook).
    fn finalize(self, _env: Env) -> napi::Result<()> {
        let _ = guarded("finalize", move || {
            drop(self);
            Ok(())
        });
        Ok(())
    }
}

pub struct CloseTask {
    wal: Arc<Wal>,
}

impl Task for CloseTask {
    type Output = ();
    type JsValue = ();

    fn compute(&mut self) -> napi::Result<()> {
        guarded("close.compute", || self.wal.close().map_err(to_js))
    }

    fn resolve(&mut self, _env: Env, _output: ()) -> napi::Result<()> {
        guarded("close.resolve", || Ok(()))
    }
}

/// Which end of the log a truncation removes records from.
enum TruncatedEnd {
    Head,
    Tail,
}

pub struct Truncation {
    wal: Arc<Wal>,
    end: TruncatedEnd,
    lsn: u64,
}

impl Task for Truncation {
    type Output = u64;
    type JsValue = f64;

    fn compute(&mut self) -> napi::Result<u64> {
        guarded("truncate.compute", || {
            match self.end {
                TruncatedEnd::Head => self.wal.truncate_before(self.lsn),
                TruncatedEnd::Tail => self.wal.truncate_after(self.lsn),
            }
            .map_err(to_js)
        })
    }

    fn resolve(&mut self, _env: Env, lsn: u64) -> napi::Result<f64> {
        guarded("truncate.resolve", || Ok(lsn as f64))
    }
}
