//! The env cleanup hook that closes a log JavaScript never closed.
//!
//! When a worker thread's environment is torn down, its open logs must still
//! be flushed and their locks released, so opening a log registers a hook
//! with Node. Closing the log removes it again; without that, every open left
//! one behind for the life of the environment (issue 5, item 9).
//!
//! The raw N-API calls are used because napi-rs's `remove_env_cleanup_hook`
//! unregisters the hook but never frees the data registered with it. Here the
//! data is an `Rc` shared by Node's registration and the [`CleanupHook`]
//! handle: whichever of "the hook runs" and "the handle is dropped" comes
//! first unregisters, and the last reference frees it. All of it happens on
//! the thread of the environment (hooks run there, and the handle lives in a
//! JavaScript object), hence `Rc` and `Cell`.

use std::cell::Cell;
use std::ffi::c_void;
use std::rc::Rc;
use std::sync::Weak;

use durawal::Wal;
use napi::{sys, Env, Status};

use crate::guard::catch_panic;

/// A registered cleanup hook; dropping it removes the hook if it has not run.
pub struct CleanupHook {
    env: sys::napi_env,
    state: Rc<HookState>,
}

struct HookState {
    wal: Weak<Wal>,
    /// True while Node holds the registration (and its `Rc` reference).
    registered: Cell<bool>,
}

impl CleanupHook {
    /// Registers a hook that closes `wal` (if it still exists) when `env` is torn down.
    pub fn register(env: &Env, wal: Weak<Wal>) -> napi::Result<Self> {
        let state = Rc::new(HookState {
            wal,
            registered: Cell::new(true),
        });
        #[cfg(feature = "test-support")]
        live::LIVE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let registration = Rc::into_raw(state.clone()).cast_mut().cast::<c_void>();
        // SAFETY: `run_hook` takes `registration` back exactly once, when Node
        // runs it; otherwise `Drop` does, after unregistering it.
        let status =
            unsafe { sys::napi_add_env_cleanup_hook(env.raw(), Some(run_hook), registration) };
        if status != sys::Status::napi_ok {
            // SAFETY: Node refused it, so nothing else will take it back.
            drop(unsafe { Rc::from_raw(registration.cast::<HookState>()) });
            state.registered.set(false);
            return Err(napi::Error::new(
                Status::from(status),
                "adding the env cleanup hook failed",
            ));
        }
        Ok(Self {
            env: env.raw(),
            state,
        })
    }
}

impl Drop for CleanupHook {
    fn drop(&mut self) {
        if self.state.registered.replace(false) {
            let registration = Rc::as_ptr(&self.state).cast_mut().cast::<c_void>();
            // SAFETY: still registered, so Node holds `registration` and the
            // environment is alive (this runs on its thread, before teardown
            // ran the hook). Removal only forgets the pair, so the reference
            // Node held is taken back here.
            unsafe {
                sys::napi_remove_env_cleanup_hook(self.env, Some(run_hook), registration);
                drop(Rc::from_raw(registration.cast::<HookState>()));
            }
        }
    }
}

unsafe extern "C" fn run_hook(registration: *mut c_void) {
    // SAFETY: Node runs a registered hook once and then forgets it, so the
    // reference registered with it is taken back here.
    let state = unsafe { Rc::from_raw(registration.cast::<HookState>()) };
    state.registered.set(false);
    // Nobody is left to report a failure to: the environment is going away.
    let _ = catch_panic("cleanupHook", || {
        if let Some(wal) = state.wal.upgrade() {
            let _ = wal.close();
        }
    });
}

#[cfg(feature = "test-support")]
mod live {
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Hook states allocated and not yet freed. Relaxed is enough for a
    /// count: a test reads it after whatever changed it has synchronised
    /// with it (an awaited close, a worker's exit).
    pub static LIVE: AtomicUsize = AtomicUsize::new(0);

    impl Drop for super::HookState {
        fn drop(&mut self) {
            LIVE.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Hook states allocated and not yet freed (registered hooks, or handles
/// whose hook ran and that are not dropped yet).
#[cfg(feature = "test-support")]
pub fn live_count() -> usize {
    live::LIVE.load(std::sync::atomic::Ordering::Relaxed)
}
