//! Pins that close releases the directory lock at once, even while a child
//! process forked by the host still holds a copy of the lock's descriptor (a
//! Node service spawning children does this all the time: the child holds
//! every descriptor from fork until exec). Before, the lock lived on in the
//! child's copy and a reopen right after close failed with `Locked`.
#![cfg(unix)]

use durawal::{Options, Wal};

#[test]
fn close_releases_the_lock_even_while_a_forked_child_holds_its_descriptor() {
    let dir = tempfile::tempdir().unwrap();
    let options = || Options {
        segment_size: 64 * 1024,
        ..Options::default()
    };
    let wal = Wal::open(dir.path(), options()).unwrap();
    wal.append(b"before the fork").unwrap();
    wal.sync(None).unwrap();
    // SAFETY: the child only sleeps and exits, both async-signal-safe, so
    // forking a multi-threaded process is sound here.
    let child = unsafe { libc::fork() };
    assert!(child >= 0, "fork failed");
    if child == 0 {
        unsafe {
            libc::sleep(3);
            libc::_exit(0);
        }
    }
    wal.close().unwrap();
    let reopened = Wal::open(dir.path(), options());
    let mut status = 0;
    // SAFETY: waiting for the child forked above.
    unsafe { libc::waitpid(child, &mut status, 0) };
    let reopened = reopened.expect("reopen right after close, while the child still lives");
    assert_eq!(reopened.last_lsn(), 1);
    // The lock is held again by the reopened log.
    assert!(Wal::open(dir.path(), options()).is_err());
    drop(reopened);
}
