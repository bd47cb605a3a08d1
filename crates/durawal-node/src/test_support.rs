//! Test-only exports, compiled in with the `test-support` feature (never in a
//! release build): forcing a panic at a named entry point, so that the tests
//! can show every entry point is guarded, and counting live env cleanup hooks,
//! so that they can show closing a log removes its hook.

use std::sync::{Mutex, PoisonError};

use napi_derive::napi;

use crate::guard::guarded;

/// Sites armed by [`inject_panic`], each good for one panic.
static ARMED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Makes the next entry into `site` (an entry point's JavaScript name, as
/// passed to `guarded`) panic once.
#[napi]
pub fn inject_panic(site: String) -> napi::Result<()> {
    guarded("injectPanic", || {
        ARMED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(site);
        Ok(())
    })
}

/// Panics when `site` was armed, disarming it. Called inside the guard.
pub fn panic_if_armed(site: &str) {
    let mut armed = ARMED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(index) = armed.iter().position(|armed_site| armed_site == site) {
        armed.swap_remove(index);
        drop(armed);
        panic!("injected panic");
    }
}

/// Env cleanup hooks registered and not yet run or removed, in this process.
#[napi]
pub fn live_cleanup_hooks() -> napi::Result<u32> {
    guarded("liveCleanupHooks", || {
        Ok(crate::cleanup_hook::live_count() as u32)
    })
}
