//! Read-only logs (`Wal.openReadOnly`): a `LogReader` of the core, whose
//! change notices reach JavaScript through a weak threadsafe function.

use std::path::PathBuf;
use std::sync::Arc;

use durawal::{storage::OsStorage, Error, LogReader, RecoveryMode};
use napi::bindgen_prelude::AsyncTask;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Status, Task};
use napi_derive::napi;

use crate::errors::to_js;
use crate::flush_listener::ListenerFailure;
use crate::guard::{catch_panic, guarded};
use crate::recovery::{recovery_to_js, NativeRecovery};
use crate::replay::NativeReplay;

/// Called when the writer may have published more. Weak: it never keeps the
/// event loop alive.
pub type ChangeCallback = ThreadsafeFunction<(), (), (), Status, false, true>;

/// Opens the log in `dir` for reading, on the libuv pool (the inspection reads every segment).
#[napi(ts_return_type = "Promise<NativeReader>")]
pub fn open_read_only(
    dir: String,
    recovery: String,
    on_change: ThreadsafeFunction<(), (), (), Status, false, true>,
) -> napi::Result<AsyncTask<OpenReaderTask>> {
    guarded("openReadOnly", || {
        let mode = match recovery.as_str() {
            "tolerate-tail" => RecoveryMode::TolerateTail,
            "absolute" => RecoveryMode::Absolute,
            "point-in-time" => RecoveryMode::PointInTime,
            "skip-corrupted" => RecoveryMode::SkipCorrupted,
            _ => return Err(to_js(Error::InvalidArgument("invalid recovery".into()))),
        };
        Ok(AsyncTask::new(OpenReaderTask {
            dir: dir.into(),
            mode,
            on_change: Some(on_change),
            listener_failure: ListenerFailure::default(),
        }))
    })
}

pub struct OpenReaderTask {
    dir: PathBuf,
    mode: RecoveryMode,
    on_change: Option<ChangeCallback>,
    listener_failure: ListenerFailure,
}

impl Task for OpenReaderTask {
    type Output = LogReader;
    type JsValue = NativeReader;

    fn compute(&mut self) -> napi::Result<LogReader> {
        guarded("openReadOnly.compute", || {
            let Some(on_change) = self.on_change.take() else {
                return Err(to_js(Error::Internal("openReadOnly ran twice".into())));
            };
            let reader =
                LogReader::open_with(&self.dir, self.mode, Arc::new(OsStorage)).map_err(to_js)?;
            let failure = self.listener_failure.clone();
            reader
                .watch(Box::new(move || {
                    // On the watcher's thread: a panic must not unwind into it,
                    // and the call must not wait for the JS thread.
                    let notify = || on_change.call((), ThreadsafeFunctionCallMode::NonBlocking);
                    if let Err(message) = catch_panic("changeListener", notify) {
                        // A lost notice could leave a tail waiting forever:
                        // report the reader failed, and wake its tails to see it.
                        let _ = failure.set(message);
                        let _ = catch_panic("changeListener", notify);
                    }
                }))
                .map_err(to_js)?;
            Ok(reader)
        })
    }

    fn resolve(&mut self, _env: Env, reader: LogReader) -> napi::Result<NativeReader> {
        guarded("openReadOnly.resolve", || {
            Ok(NativeReader {
                reader: Arc::new(reader),
                listener_failure: self.listener_failure.clone(),
            })
        })
    }
}

/// A log opened for reading only.
#[napi]
pub struct NativeReader {
    reader: Arc<LogReader>,
    /// The panic that lost a change notice, reported by `check_health`.
    listener_failure: ListenerFailure,
}

#[napi]
impl NativeReader {
    /// Throws the panic that lost a change notice, if one did.
    #[napi]
    pub fn check_health(&self) -> napi::Result<()> {
        guarded("reader.checkHealth", || match self.listener_failure.get() {
            Some(message) => Err(to_js(Error::Internal(message.clone()))),
            None => Ok(()),
        })
    }

    /// The durable LSN the writer last published.
    #[napi(getter)]
    pub fn durable_lsn(&self) -> napi::Result<f64> {
        guarded("reader.durableLsn", || Ok(self.reader.durable_lsn() as f64))
    }

    /// LSN of the first durable record, 0 when none.
    #[napi(getter)]
    pub fn first_lsn(&self) -> napi::Result<f64> {
        guarded("reader.firstLsn", || {
            self.reader.first_lsn().map(|lsn| lsn as f64).map_err(to_js)
        })
    }

    /// What recovery would find and do if a writer opened the log now.
    #[napi]
    pub fn recovery(&self) -> napi::Result<NativeRecovery> {
        guarded("reader.recovery", || {
            Ok(recovery_to_js(self.reader.recovery(), None))
        })
    }

    /// A cursor over the durable records with LSNs in `from..=to`.
    #[napi]
    pub fn replay(&self, from: f64, to: f64) -> napi::Result<NativeReplay> {
        guarded("reader.replay", || {
            let reader = self.reader.clone();
            self.reader
                .replay(from as u64, to as u64)
                .map(|cursor| NativeReplay::new(cursor, Box::new(move || reader.durable_lsn())))
                .map_err(to_js)
        })
    }

    /// Stops watching the log. Idempotent.
    #[napi]
    pub fn close(&self) -> napi::Result<()> {
        guarded("reader.close", || {
            self.reader.close();
            Ok(())
        })
    }
}
