//! The largest single allocation a thread makes while a closure runs, so
//! that the matrix can check that no length read from a damaged log (a
//! record header that lies about its length, say) is trusted to size a
//! buffer before it is checked against the record limit and the bytes left
//! in the file (RELIABILITY.md rule 7). Recovery and replay run on the
//! calling thread, which is the one measured.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, noting each allocation's size on the thread that asks.
pub struct Tracking;

thread_local! {
    /// Largest allocation on this thread since the last [`largest_during`] began.
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: the allocator also runs while thread-locals are torn down.
    let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
}

// SAFETY: every call is passed unchanged to the system allocator; noting a
// size touches only a const-initialised thread-local `Cell`, which neither
// allocates nor panics.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

/// Runs `work` and returns its result with the largest single allocation
/// this thread made meanwhile.
pub fn largest_during<T>(work: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|largest| largest.set(0));
    let result = work();
    (result, LARGEST.with(Cell::get))
}
