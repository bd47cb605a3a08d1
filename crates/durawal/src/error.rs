//! Errors of the core, one variant per thing a caller can act on.
//!
//! Every variant maps to a stable string code (see [`Error::code`]) that the
//! binding and the TypeScript layer expose unchanged, so callers can branch on
//! `WAL_CORRUPT` rather than on message text.

use std::io;
use std::path::{Path, PathBuf};

use crate::storage::NotARegularFile;
use std::sync::Arc;

/// Result alias used throughout the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the log.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Another writer (this process, a worker thread or another process) holds the lock.
    #[error("log directory {dir} is locked by another writer")]
    Locked {
        /// The log directory.
        dir: PathBuf,
    },

    /// The log was closed; open it again to continue.
    #[error("log is closed")]
    Closed,

    /// Bytes on disk that recovery or replay refuses to interpret.
    #[error("corrupt log: {file}: offset {offset}: {reason}")]
    Corrupt {
        /// The file that holds the damage.
        file: PathBuf,
        /// Byte offset of the damage inside `file`.
        offset: u64,
        /// What was wrong, in words.
        reason: String,
    },

    /// An operating-system call failed.
    #[error("I/O error: {operation} {path}: {source}")]
    Io {
        /// The operation that failed (`write`, `fdatasync`, `open`, ...).
        operation: &'static str,
        /// The file or directory it was applied to.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// A write or sync failed earlier; nothing more is accepted until reopen.
    #[error("log is poisoned by an earlier failure and accepts nothing until it is reopened: {0}")]
    Poisoned(Arc<Error>),

    /// A record or batch does not fit the configured limits.
    #[error("{what} of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// `record` or `batch`.
        what: &'static str,
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },

    /// An argument or option is out of range.
    #[error("{0}")]
    InvalidArgument(String),

    /// Appending would take the LSN past the largest value a JavaScript number holds exactly.
    #[error("LSN space exhausted: the next LSN would exceed {max}")]
    LsnExhausted {
        /// The largest LSN the log will assign.
        max: u64,
    },

    /// Appending would buffer more than the buffer limit of bytes not yet
    /// durable: the disk is not keeping up. Wait for durability and retry.
    #[error("{buffered} bytes are appended and not yet durable; appending {size} more would pass the limit of {limit}")]
    Backpressure {
        /// Bytes appended and not yet durable.
        buffered: u64,
        /// Bytes the refused append needed.
        size: u64,
        /// The limit.
        limit: u64,
    },

    /// The log is busy with an operation that must finish first (appends
    /// wait for `truncateAfter` to finish).
    #[error("{0}")]
    Busy(&'static str),

    /// Records a reader still needed were removed by truncation (a reader
    /// that fell behind retention, or one in another process).
    #[error("records from LSN {lsn} on were removed by truncation before this reader read them ({path})")]
    Truncated {
        /// The first LSN the reader could not read.
        lsn: u64,
        /// The segment that is gone.
        path: PathBuf,
    },

    /// A bug in durawal: a thread panicked or could not be started. The log
    /// that saw it is poisoned, so nothing it holds can be acknowledged wrongly.
    #[error("internal error in durawal: {0}")]
    Internal(String),
}

impl Error {
    /// The stable code of this error, as exposed to JavaScript.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Locked { .. } => "WAL_LOCKED",
            Error::Closed => "WAL_CLOSED",
            Error::Corrupt { .. } => "WAL_CORRUPT",
            Error::Io { .. } => "WAL_IO",
            Error::Poisoned(_) => "WAL_POISONED",
            Error::TooLarge { .. } => "WAL_TOO_LARGE",
            Error::InvalidArgument(_) => "WAL_INVALID_ARGUMENT",
            Error::LsnExhausted { .. } => "WAL_LSN_EXHAUSTED",
            Error::Backpressure { .. } => "WAL_BACKPRESSURE",
            Error::Truncated { .. } => "WAL_TRUNCATED",
            Error::Busy(_) => "WAL_BUSY",
            Error::Internal(_) => "WAL_INTERNAL",
        }
    }

    /// Shorthand for building an [`Error::Io`].
    pub fn io(operation: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            operation,
            path: path.into(),
            source,
        }
    }

    /// The error for a file of the log that could not be opened. A path that
    /// is not a regular file (a symlink, FIFO, directory, ...) is a misplaced
    /// entry in the log directory, reported like other misplaced files as
    /// [`Error::Corrupt`] naming it; anything else is an I/O error.
    pub fn open_failed(path: &Path, source: io::Error) -> Self {
        match NotARegularFile::find(&source) {
            Some(refusal) => Error::corrupt(
                path,
                0,
                format!("{refusal}: durawal does not open or follow it; remove or rename it"),
            ),
            None => Error::io("open", path, source),
        }
    }

    /// Shorthand for building an [`Error::Corrupt`].
    pub fn corrupt(file: impl Into<PathBuf>, offset: u64, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            file: file.into(),
            offset,
            reason: reason.into(),
        }
    }
}

/// The message a panic carried (`panic!` with a string or a format), for
/// reporting it as [`Error::Internal`].
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "a panic without a message".to_owned()
    }
}
