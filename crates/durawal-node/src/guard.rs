//! The binding's panic policy, in one place: no panic ever reaches Node.
//!
//! Every way into the binding runs its body through [`guarded`]: each
//! `#[napi]` function, method and getter, the compute and resolve steps of
//! each async task, the env cleanup hook and the flush listener the core calls
//! on its flusher thread. A panic that unwinds out of one of napi's
//! `extern "C"` callbacks aborts the process; caught here, it becomes a
//! `WAL_INTERNAL` error naming the entry point, thrown into JavaScript like any
//! other error.

use std::panic::{catch_unwind, AssertUnwindSafe};

use durawal::{panic_message, Error};

use crate::errors::to_js;

/// Runs `body`, turning a panic in it into a `WAL_INTERNAL` error.
/// `site` names the entry point (its JavaScript name) in the message.
pub fn guarded<T>(site: &'static str, body: impl FnOnce() -> napi::Result<T>) -> napi::Result<T> {
    catch_panic(site, body).unwrap_or_else(|message| Err(to_js(Error::Internal(message))))
}

/// Runs `body`; on a panic, returns what it said, prefixed with `site`.
pub fn catch_panic<T>(site: &'static str, body: impl FnOnce() -> T) -> Result<T, String> {
    // Asserting unwind safety is sound because nothing a caught panic may have
    // left half-done is used as if it were whole: the core turns a panic under
    // its state lock into a poisoned log, and the binding's own state (a
    // replay cursor's mutex) is poisoned by the panic and refused thereafter.
    catch_unwind(AssertUnwindSafe(|| {
        #[cfg(feature = "test-support")]
        crate::test_support::panic_if_armed(site);
        body()
    }))
    .map_err(|payload| {
        let message = format!("panic in {site}: {}", panic_message(&*payload));
        // A payload whose own Drop panics would unwind out of here; leaking
        // one allocation per panic is the lesser harm.
        std::mem::forget(payload);
        message
    })
}
