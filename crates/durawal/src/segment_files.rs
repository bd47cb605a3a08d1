//! Creating segment files: zero-filled ahead of time, made visible by an
//! atomic rename, the directory synced after.
//!
//! Zero-filling (rather than fallocate alone) matters for latency: a sync
//! into already-written blocks only flushes data, while a sync into
//! unwritten extents also has to commit the extent conversion to the
//! filesystem journal.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use crate::aligned_buffer::AlignedBuffer;
use crate::error::{panic_message, Error, Result};
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
        .map_err(|e| Error::open_failed(&path, e))?;
    match zero_fill(&*file, &path, 0, size) {
        Ok(()) => Ok(PreparedSegment { file, size }),
        Err(error) => {
            // On a full disk the partial file would hold the last free
            // blocks; give them back.
            drop(file);
            let _ = storage.remove_file(&path);
            Err(error)
        }
    }
}

/// Writes zeros over `from..size` of `file` and syncs it.
fn zero_fill(file: &dyn StorageFile, path: &Path, from: u64, size: u64) -> Result<()> {
    let mut zeros = AlignedBuffer::new();
    zeros.extend_zeroed(ZERO_FILL_CHUNK);
    let mut offset = from;
    while offset < size {
        let length = ((size - offset) as usize).min(ZERO_FILL_CHUNK);
        file.write_all_at(&zeros.as_slice()[..length], offset)
            .map_err(|e| Error::io("write", path, e))?;
        offset += length as u64;
    }
    file.sync_data()
        .map_err(|e| Error::io("fdatasync", path, e))
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
    /// Starts preparing a segment of `size` bytes. When the OS refuses a
    /// thread, nothing is started and [`Self::take`] prepares it itself.
    pub fn start(&mut self, storage: Arc<dyn Storage>, dir: PathBuf, size: u64, direct: bool) {
        self.start_on(
            thread::Builder::new().name("durawal-preparer".into()),
            storage,
            dir,
            size,
            direct,
        );
    }

    fn start_on(
        &mut self,
        builder: thread::Builder,
        storage: Arc<dyn Storage>,
        dir: PathBuf,
        size: u64,
        direct: bool,
    ) {
        debug_assert!(self.in_progress.is_none());
        self.in_progress = builder
            .spawn(move || prepare_segment(&*storage, &dir, size, direct))
            .ok();
    }

    /// Waits for the prepared segment, of at least `size` bytes (one
    /// prepared smaller, for a record larger than expected, is zero-filled
    /// further here). If none was started, or the one in the background
    /// failed (a full disk that may have room now), it is prepared here,
    /// once: the prepared file holds nothing of the log, so redoing it from
    /// scratch is safe, unlike retrying a sync of log data. A panic in the
    /// preparer is a bug and is reported as one.
    pub fn take(
        &mut self,
        storage: &dyn Storage,
        dir: &Path,
        size: u64,
        direct: bool,
    ) -> Result<PreparedSegment> {
        match self.in_progress.take().map(JoinHandle::join) {
            Some(Ok(Ok(prepared))) if prepared.size >= size => Ok(prepared),
            Some(Ok(Ok(mut prepared))) => {
                let path = dir.join(PREPARED_SEGMENT_NAME);
                zero_fill(&*prepared.file, &path, prepared.size, size)?;
                prepared.size = size;
                Ok(prepared)
            }
            Some(Err(panic)) => Err(Error::Internal(format!(
                "the segment preparer panicked: {}",
                panic_message(&*panic)
            ))),
            Some(Ok(Err(_))) | None => prepare_segment(storage, dir, size, direct),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::OsStorage;

    #[test]
    fn a_refused_thread_means_preparing_on_take() {
        let dir = tempfile::tempdir().unwrap();
        let mut preparer = SegmentPreparer::default();
        // No address space holds a 2^47-byte stack: the OS refuses the thread.
        let unspawnable = thread::Builder::new().stack_size(1 << 47);
        preparer.start_on(
            unspawnable,
            Arc::new(OsStorage),
            dir.path().to_owned(),
            64 * 1024,
            false,
        );
        assert!(preparer.in_progress.is_none(), "the thread was spawned");
        let prepared = preparer
            .take(&OsStorage, dir.path(), 64 * 1024, false)
            .unwrap();
        assert_eq!(prepared.size, 64 * 1024);
        assert_eq!(prepared.file.length().unwrap(), 64 * 1024);
    }
}
