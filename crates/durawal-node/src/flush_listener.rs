//! The flush listener: how the core's flusher thread tells JavaScript about
//! each flush, through one threadsafe function call per flush.

use std::sync::{Arc, OnceLock};

use durawal::{FlushEvent, FlushListener};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use napi_derive::napi;

use crate::guard::catch_panic;

/// Called once per flush with the new durable LSN, or with `failed: true`
/// once the log is poisoned. Weak: it never keeps the event loop alive.
pub type FlushCallback = ThreadsafeFunction<FlushNotice, (), FlushNotice, Status, false, true>;

/// What the flusher tells JavaScript after a flush.
#[napi(object)]
pub struct FlushNotice {
    /// Highest durable LSN.
    pub durable_lsn: f64,
    /// True when the flush failed and the log is poisoned.
    pub failed: bool,
}

impl FlushNotice {
    /// The notice that the log failed.
    fn failed() -> Self {
        Self {
            durable_lsn: 0.0,
            failed: true,
        }
    }
}

/// Set when the listener panicked: a notice was lost, so JavaScript can no
/// longer count on one arriving for every durable LSN. `check_health` then
/// reports the log failed, with this message.
pub type ListenerFailure = Arc<OnceLock<String>>;

/// The listener handed to the core. It runs on the flusher thread, so a panic
/// in it is caught here rather than unwinding into the core's thread.
pub fn flush_listener(on_flush: FlushCallback, failure: ListenerFailure) -> FlushListener {
    let send = move |notice: FlushNotice| {
        catch_panic("flushListener", || {
            // Non-blocking: the flusher must never wait on the JS thread.
            on_flush.call(notice, ThreadsafeFunctionCallMode::NonBlocking);
        })
    };
    Box::new(move |event: FlushEvent| {
        let notice = match event {
            FlushEvent::Durable { lsn, .. } => FlushNotice {
                durable_lsn: lsn as f64,
                failed: false,
            },
            FlushEvent::Failed => FlushNotice::failed(),
        };
        if let Err(message) = send(notice) {
            // Waiters for the lost notice would wait forever: report the log
            // failed instead, so that they are rejected with the panic.
            let _ = failure.set(message);
            let _ = send(FlushNotice::failed());
        }
    })
}
