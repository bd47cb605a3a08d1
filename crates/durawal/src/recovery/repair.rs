//! The writing half of recovery: applies what the inspection decided.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::storage::{OpenMode, Storage};

/// One change recovery makes to the log directory before appending resumes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Repair {
    /// Delete a file: a leftover prepared segment, or a segment point-in-time
    /// recovery drops.
    RemoveFile(PathBuf),
    /// Make the removals so far durable before going on.
    SyncDir,
    /// Overwrite `from..to` of a segment with zeros: a cut tail.
    Zero {
        /// The segment.
        path: PathBuf,
        /// First byte cut.
        from: u64,
        /// End of the last non-zero byte cut.
        to: u64,
    },
}

/// Applies `repairs` in order. Removals are made durable with one directory
/// sync; a zeroed range is synced before anything is appended after it.
pub fn repair(storage: &dyn Storage, dir: &Path, repairs: &[Repair]) -> Result<()> {
    let mut removed_any = false;
    for repair in repairs {
        match repair {
            Repair::RemoveFile(path) => {
                storage
                    .remove_file(path)
                    .map_err(|e| Error::io("unlink", path, e))?;
                removed_any = true;
            }
            Repair::Zero { path, from, to } => zero(storage, path, *from, *to)?,
            Repair::SyncDir => storage
                .sync_dir(dir)
                .map_err(|e| Error::io("fsync", dir, e))?,
        }
    }
    if removed_any {
        storage
            .sync_dir(dir)
            .map_err(|e| Error::io("fsync", dir, e))?;
    }
    Ok(())
}

fn zero(storage: &dyn Storage, path: &Path, from: u64, to: u64) -> Result<()> {
    let file = storage
        .open(path, OpenMode::ReadWrite, false)
        .map_err(|e| Error::open_failed(path, e))?;
    let zeros = vec![0u8; (to - from).min(1 << 20) as usize];
    let mut at = from;
    while at < to {
        let length = ((to - at) as usize).min(zeros.len());
        file.write_all_at(&zeros[..length], at)
            .map_err(|e| Error::io("write", path, e))?;
        at += length as u64;
    }
    file.sync_data()
        .map_err(|e| Error::io("fdatasync", path, e))
}
