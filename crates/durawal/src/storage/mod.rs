//! The one door between the log and the operating system.
//!
//! Every file and directory operation of the core goes through [`Storage`] and
//! [`StorageFile`], so that a test backend can stand in for the real one and
//! simulate power loss or a failing disk at any single operation. The
//! production backend is [`OsStorage`].

mod os;

use std::any::Any;
use std::io;
use std::path::Path;
use std::time::SystemTime;

pub use os::OsStorage;

/// How a file is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Read-only, must exist.
    Read,
    /// Read-write, must exist.
    ReadWrite,
    /// Read-write, must not exist yet.
    CreateNew,
    /// Read-write, created when missing.
    CreateOrOpen,
}

/// A file opened through a [`Storage`].
pub trait StorageFile: Send + Sync {
    /// Writes all of `bytes` at `offset`.
    fn write_all_at(&self, bytes: &[u8], offset: u64) -> io::Result<()>;
    /// Reads up to `buffer.len()` bytes at `offset`; returns how many were read (0 at end of file).
    fn read_at(&self, buffer: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Makes the written data durable (fdatasync, F_FULLFSYNC, FlushFileBuffers).
    fn sync_data(&self) -> io::Result<()>;
    /// Current length in bytes.
    fn length(&self) -> io::Result<u64>;
    /// Truncates or extends the file.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Asks the OS to forget cached pages so later reads see what is on disk.
    fn drop_cache(&self) -> io::Result<()>;
}

/// Why [`Storage::open`] or [`Storage::lock`] refused a path: it names a
/// symbolic link, FIFO, socket, device or directory. The log only ever opens
/// regular files, and never waits on or follows anything else.
#[derive(Debug, thiserror::Error)]
#[error("a {kind} is where a regular file must be")]
pub struct NotARegularFile {
    /// What was found instead (`symbolic link`, `FIFO`, `directory`, ...).
    pub kind: &'static str,
}

impl NotARegularFile {
    /// The refusal inside an `io::Error`, as storage operations return it.
    pub fn io_error(kind: &'static str) -> io::Error {
        io::Error::other(Self { kind })
    }

    /// The refusal carried by `error`, if that is what it is.
    pub fn find(error: &io::Error) -> Option<&Self> {
        error.get_ref()?.downcast_ref::<Self>()
    }
}

/// A held directory lock; dropping it releases the lock.
pub type LockGuard = Box<dyn Any + Send + Sync>;

/// Files and directories as the log needs them.
pub trait Storage: Send + Sync {
    /// Creates `dir` and its parents when missing.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Names of the entries of `dir` (not following symlinks of entries).
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Opens a regular file without following a symlink in the last
    /// component and without blocking on a FIFO; anything but a regular file
    /// is refused with [`NotARegularFile`]. `direct` asks for O_DIRECT (or
    /// the platform's equivalent).
    fn open(&self, path: &Path, mode: OpenMode, direct: bool) -> io::Result<Box<dyn StorageFile>>;
    /// Atomically renames a file.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries durable (a no-op where the OS cannot, i.e. Windows).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// When the file at `path` was last written (for retention by age).
    fn modified(&self, path: &Path) -> io::Result<SystemTime>;
    /// Takes an exclusive lock on the file at `path` (created when missing),
    /// failing with `WouldBlock` when another open file description holds it.
    /// Like [`Storage::open`], it refuses anything but a regular file.
    fn lock(&self, path: &Path) -> io::Result<LockGuard>;
}
