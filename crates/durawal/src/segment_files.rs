//! Creating segment files: zero-filled ahead of time, made visible by an
//! atomic rename, the directory synced after.
//!
//! Zero-filling (rather than fallocate alone) matters for latency: a sync
//! into already-written blocks only flushes data, while a sync into
//! unwritten extents also has to commit the extent conversion to the
//! filesystem journal.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::aligned_buffer::AlignedBuffer;
use crate::error::{Error, Result};
use crate::format::{segment_file_name, PREPARED_SEGMENT_NAME};
use crate::storage::{OpenMode, Storage, StorageFile};

const ZERO_FILL_CHUNK: usize = 1 << 20;

/// A zero-filled, synced file waiting to become the next segment.
pub struct PreparedSegment {
    /// The open file (direct when the log writes directly).
    pub file: Box<dyn StorageFile>,
    /// Its size in bytes.
    pub size: u64,
}

/// Creates the prepared file and fills it with zeros.
pub fn prepare_segment(
    storage: &dyn Storage,
    dir: &Path,
    size: u64,
    direct: bool,
) -> Result<PreparedSegment> {
    let path = dir.join(PREPARED_SEGMENT_NAME);
    match storage.remove_file(&path) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(Error::io("unlink", &path, error)),
    }
    let file = storage
        .open(&path, OpenMode::CreateNew, direct)
        .map_err(|e| Error::io("open", &path, e))?;
    let mut zeros = AlignedBuffer::new();
    zeros.extend_zeroed(ZERO_FILL_CHUNK);
    let mut offset = 0;
    while offset < size {
        let length = ((size - offset) as usize).min(ZERO_FILL_CHUNK);
        file.write_all_at(&zeros.as_slice()[..length], offset)
            .map_err(|e| Error::io("write", &path, e))?;
        offset += length as u64;
    }
    file.sync_data()
        .map_err(|e| Error::io("fdatasync", &path, e))?;
    Ok(PreparedSegment { file, size })
}

/// Makes the prepared file (already holding a synced header) the segment
/// starting at `first_lsn`: rename, then sync the directory so the new name
/// survives a power loss before any record in it is acknowledged.
pub fn install_segment(storage: &dyn Storage, dir: &Path, first_lsn: u64) -> Result<PathBuf> {
    let from = dir.join(PREPARED_SEGMENT_NAME);
    let to = dir.join(segment_file_name(first_lsn));
    storage
        .rename(&from, &to)
        .map_err(|e| Error::io("rename", &from, e))?;
    storage
        .sync_dir(dir)
        .map_err(|e| Error::io("fsync", dir, e))?;
    Ok(to)
}

/// Prepares the next segment on a thread of its own so that a rotation finds
/// it ready instead of stalling appends for the zero-fill.
#[derive(Default)]
pub struct SegmentPreparer {
    in_progress: Option<JoinHandle<Result<PreparedSegment>>>,
}

impl SegmentPreparer {
    /// Starts preparing a segment of `size` bytes.
    pub fn start(&mut self, storage: Arc<dyn Storage>, dir: PathBuf, size: u64, direct: bool) {
        debug_assert!(self.in_progress.is_none());
        self.in_progress = Some(std::thread::spawn(move || {
            prepare_segment(&*storage, &dir, size, direct)
        }));
    }

    /// Waits for the prepared segment (preparing one now if none was started).
    pub fn take(
        &mut self,
        storage: &dyn Storage,
        dir: &Path,
        size: u64,
        direct: bool,
    ) -> Result<PreparedSegment> {
        match self.in_progress.take() {
            Some(handle) => handle.join().unwrap_or_else(|_| {
                Err(Error::io(
                    "prepare",
                    dir,
                    std::io::Error::other("segment preparation thread panicked"),
                ))
            }),
            None => prepare_segment(storage, dir, size, direct),
        }
    }

    /// Waits for a preparation in progress and discards its result; the file
    /// it made stays behind and is removed by the next recovery.
    pub fn finish(&mut self) {
        if let Some(handle) = self.in_progress.take() {
            let _ = handle.join();
        }
    }
}
