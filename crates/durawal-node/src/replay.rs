//! Replay cursors: one native call returns a whole batch of records.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use durawal::{Error, ReplayBatch, ReplayCursor};
use napi::bindgen_prelude::{AsyncTask, Buffer, Float64Array, Uint32Array};
use napi::{Env, Task};
use napi_derive::napi;

use crate::errors::to_js;
use crate::guard::guarded;

/// Records read in one step: payloads back to back, their end offsets and LSNs.
#[napi(object)]
pub struct NativeBatch {
    /// Payloads, back to back.
    pub data: Buffer,
    /// End offset of each record in `data`.
    pub ends: Uint32Array,
    /// LSN of each record.
    pub lsns: Float64Array,
    /// Indexes (into `lsns`) of the checkpoint records.
    pub checkpoints: Uint32Array,
}

/// Where the durable LSN of the log being read comes from.
pub type DurableLsn = Box<dyn Fn() -> u64 + Send + Sync>;

/// A cursor shared by its handle and the batch reads in flight; `None`
/// once closed, which releases its pin and its open segment.
type SharedCursor = Arc<Mutex<Option<ReplayCursor>>>;

/// A replay position.
#[napi]
pub struct NativeReplay {
    cursor: SharedCursor,
    durable_lsn: DurableLsn,
}

impl NativeReplay {
    pub fn new(cursor: ReplayCursor, durable_lsn: DurableLsn) -> Self {
        Self {
            cursor: Arc::new(Mutex::new(Some(cursor))),
            durable_lsn,
        }
    }
}

#[napi]
impl NativeReplay {
    /// Extends the cursor to the durable LSN now, for a reader that follows
    /// the log; returns that LSN. Never past it, whatever the caller knows.
    #[napi]
    pub fn follow(&self) -> napi::Result<f64> {
        guarded("replayFollow", || {
            let durable = (self.durable_lsn)();
            if let Some(cursor) = lock_cursor(&self.cursor)?.as_mut() {
                cursor.follow_to(durable).map_err(to_js)?;
            }
            Ok(durable as f64)
        })
    }

    /// Closes the cursor: truncation may remove what it had still to read,
    /// and later reads return the end. Idempotent.
    #[napi]
    pub fn close(&self) -> napi::Result<()> {
        guarded("replayClose", || {
            // A cursor a panic left mid-batch is dropped all the same.
            self.cursor
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            Ok(())
        })
    }

    /// Reads the next batch on the libuv pool; resolves with `null` at the end.
    #[napi(ts_return_type = "Promise<NativeBatch | null>")]
    pub fn next(&self, max_records: u32, max_bytes: u32) -> napi::Result<AsyncTask<NextBatch>> {
        guarded("replayNext", || {
            Ok(AsyncTask::new(NextBatch {
                cursor: self.cursor.clone(),
                max_records,
                max_bytes,
            }))
        })
    }
}

pub struct NextBatch {
    cursor: SharedCursor,
    max_records: u32,
    max_bytes: u32,
}

impl Task for NextBatch {
    type Output = Option<ReplayBatch>;
    type JsValue = Option<NativeBatch>;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        guarded("replayNext.compute", || {
            match lock_cursor(&self.cursor)?.as_mut() {
                Some(cursor) => cursor
                    .next_batch(self.max_records as usize, self.max_bytes as usize)
                    .map_err(to_js),
                None => Ok(None),
            }
        })
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        guarded("replayNext.resolve", || {
            Ok(output.map(|batch| NativeBatch {
                data: batch.data.into(),
                ends: batch.ends.into(),
                lsns: batch
                    .lsns
                    .into_iter()
                    .map(|lsn| lsn as f64)
                    .collect::<Vec<_>>()
                    .into(),
                checkpoints: batch.checkpoints.into(),
            }))
        })
    }
}

/// Locks a cursor; a step that panicked may have left it mid-batch, so it
/// is refused from then on.
fn lock_cursor(
    cursor: &Mutex<Option<ReplayCursor>>,
) -> napi::Result<MutexGuard<'_, Option<ReplayCursor>>> {
    cursor.lock().map_err(|_| {
        to_js(Error::Internal(
            "an earlier step of this replay panicked".into(),
        ))
    })
}
