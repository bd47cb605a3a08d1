//! The log as callers see it: open (lock, probe, recover), append, sync,
//! replay, close.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, LockResult, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use crate::aligned_buffer::{AlignedBuffer, BLOCK_SIZE};
use crate::append::{ActiveSegment, AppendLimits, AppendState};
use crate::catalogue::{self, Pin, SegmentCatalogue, SegmentEntry, SharedCatalogue};
use crate::durable_file::DurablePublisher;
use crate::error::{panic_message, Error, Result};
use crate::flusher::{Flusher, FLUSH_THRESHOLD};
use crate::format::{SegmentHeader, FORMAT_VERSION, SEGMENT_HEADER_SIZE};
use crate::options::{DirectIo, Options, RecoveryMode, SyncPolicy};
use crate::random::Randomness;
use crate::recovery::{recover, RecoveredTail, RecoveryReport};
use crate::replay::ReplayCursor;
use crate::retention::{Retention, RetentionWorker};
use crate::segment_files::{install_segment, prepare_segment};
use crate::segment_sizing::first_segment_size;
use crate::storage::{LockGuard, NotARegularFile, OpenMode, OsStorage, Storage, StorageFile};
use crate::LOCK_FILE_NAME;

/// What the flusher reports after each flush.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushEvent {
    /// Every record up to `lsn` is on stable storage; `buffered_bytes` are
    /// appended and not yet durable (backpressure is released as it falls).
    Durable {
        /// The new durable LSN.
        lsn: u64,
        /// Record bytes appended and not yet durable, after this flush.
        buffered_bytes: u64,
    },
    /// A write or sync failed; the log is poisoned (see [`Wal::check_health`]).
    Failed,
}

/// Called on the flush thread after every flush; must not block.
pub type FlushListener = Box<dyn Fn(FlushEvent) + Send + Sync>;

/// How writes reach the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoMode {
    /// O_DIRECT (F_NOCACHE on macOS) plus a data sync.
    Direct,
    /// Through the page cache plus a data sync.
    Buffered,
}

/// State shared by the caller-facing [`Wal`] and the flush thread.
pub struct Shared {
    pub(crate) state: Mutex<AppendState>,
    /// Wakes the flusher: a sync request, a full buffer, close.
    pub(crate) work: Condvar,
    /// Wakes blocking [`Wal::sync`] callers after each flush.
    pub(crate) durable_changed: Condvar,
    /// Highest LSN known durable; only the flusher stores it.
    pub(crate) durable_lsn: AtomicU64,
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) dir: PathBuf,
    /// The segment files and the readers' pins.
    pub(crate) catalogue: SharedCatalogue,
    /// Serializes the operations that remove records (truncation,
    /// retention) with each other and with close.
    maintenance: Mutex<()>,
    /// Tells readers in other processes the durable LSN.
    pub(crate) durable_file: DurablePublisher,
    pub(crate) policy: SyncPolicy,
    pub(crate) direct: bool,
    syncs: AtomicU64,
    listener: Option<FlushListener>,
}

impl Shared {
    /// Locks the append state. A thread that panicked while holding the lock
    /// may have left a record half-copied into a buffer, so a poisoned lock
    /// poisons the log: the state is taken back only to refuse further work
    /// and to let close finish, never to flush it.
    pub(crate) fn lock_state(&self) -> MutexGuard<'_, AppendState> {
        self.poison_if_panicked(self.state.lock())
    }

    /// The guard of a lock or condition-variable wait, marking the log failed
    /// (and waking the flusher to announce it) when the lock was poisoned.
    pub(crate) fn poison_if_panicked<'a>(
        &self,
        result: LockResult<MutexGuard<'a, AppendState>>,
    ) -> MutexGuard<'a, AppendState> {
        result.unwrap_or_else(|poisoned| {
            let mut state = poisoned.into_inner();
            if state.failure.is_none() {
                state.failure = Some(Arc::new(Error::Internal(
                    "a thread panicked while holding the log's state lock".into(),
                )));
                self.work.notify_one();
            }
            state
        })
    }

    /// Marks the log failed (unless it already is) and tells every waiter.
    /// Used when the flush thread dies, so nobody waits for it forever, and
    /// when truncation fails halfway. Returns the error that poisons the log
    /// (the first one), as callers see it from then on.
    pub(crate) fn fail_and_announce(&self, error: Error) -> Error {
        let failure = self
            .lock_state()
            .failure
            .get_or_insert_with(|| Arc::new(error))
            .clone();
        self.announce(FlushEvent::Failed);
        Error::Poisoned(failure)
    }

    /// Wakes blocked [`Wal::sync`] callers and calls the listener. Called
    /// without the state lock held; the change it announces was made under it,
    /// so a waiter either saw the change or was already waiting for this call.
    pub(crate) fn announce(&self, event: FlushEvent) {
        self.durable_changed.notify_all();
        if let Some(listener) = &self.listener {
            listener(event);
        }
    }

    /// Taken by whatever removes records, and by close.
    pub(crate) fn lock_maintenance(&self) -> MutexGuard<'_, ()> {
        self.maintenance
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// LSN of the first record in the log (0 when the log is empty).
    pub(crate) fn first_lsn(&self) -> u64 {
        let first = catalogue::lock(&self.catalogue).first_lsn().unwrap_or(1);
        if self.lock_state().last_lsn() >= first {
            first
        } else {
            0
        }
    }

    /// Pending bytes at which the flusher writes and syncs without being asked.
    pub(crate) fn flush_threshold(&self) -> u64 {
        match self.policy {
            SyncPolicy::Bytes(bytes) => bytes.min(FLUSH_THRESHOLD),
            _ => FLUSH_THRESHOLD,
        }
    }

    pub(crate) fn count_sync(&self) {
        self.syncs.fetch_add(1, Ordering::Relaxed);
    }
}

/// An open write-ahead log. All methods take `&self`; it can be shared across threads.
pub struct Wal {
    pub(crate) shared: Arc<Shared>,
    /// Applies the retention policy, when there is one.
    retention: Mutex<Option<RetentionWorker>>,
    flusher: Mutex<Option<JoinHandle<()>>>,
    lock: Mutex<Option<LockGuard>>,
    report: RecoveryReport,
    io_mode: IoMode,
    pub(crate) recovery_mode: RecoveryMode,
}

impl Wal {
    /// Opens (creating when needed) the log in `dir` on the real filesystem.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Self> {
        Self::open_with(dir.as_ref(), options, Arc::new(OsStorage), None)
    }

    /// Opens the log through `storage`, calling `listener` after each flush.
    pub fn open_with(
        dir: &Path,
        options: Options,
        storage: Arc<dyn Storage>,
        listener: Option<FlushListener>,
    ) -> Result<Self> {
        options.validate()?;
        storage
            .create_dir_all(dir)
            .map_err(|e| Error::io("mkdir", dir, e))?;
        let lock_path = dir.join(LOCK_FILE_NAME);
        let lock = storage.lock(&lock_path).map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock => Error::Locked {
                dir: dir.to_owned(),
            },
            _ if NotARegularFile::find(&e).is_some() => Error::open_failed(&lock_path, e),
            _ => Error::io("lock", &lock_path, e),
        })?;
        let direct = probe_direct_io(&*storage, &lock_path, options.direct_io)?;
        let recovered = recover(&*storage, dir, options.recovery)?;
        let mut randomness = Randomness::new(options.random_seed);
        let mut catalogue = SegmentCatalogue::new(recovered.segments);

        // A sealed last segment stays as it is: the next segment is created
        // by the first append that needs it, so a log on a full disk still
        // opens and replays (only that append's sync fails, with ENOSPC).
        let tail = match recovered.tail {
            Some(tail) => tail,
            None => {
                let size = options
                    .first_segment_size
                    .unwrap_or_else(|| first_segment_size(options.segment_size));
                let tail = start_first_segment(&*storage, dir, size, direct, &mut randomness)?;
                catalogue.installed(
                    tail.header.first_lsn,
                    SegmentEntry {
                        path: tail.path.clone(),
                        bytes: tail.capacity,
                        sealed_at: None,
                        last_checkpoint: None,
                    },
                );
                tail
            }
        };
        let file = storage
            .open(&tail.path, OpenMode::ReadWrite, direct)
            .map_err(|e| Error::open_failed(&tail.path, e))?;
        let tail_block = match tail.seal {
            Some(_) => Vec::new(),
            None => read_tail_block(&*file, &tail.path, tail.position)?,
        };
        let state = AppendState::new(
            tail.next_lsn,
            active_segment(&tail),
            &tail_block,
            AppendLimits {
                segment_size: options.segment_size,
                max_record_size: options.max_record_size(),
                max_batch_payload: options.max_batch_payload(),
                buffer_limit: options.buffer_limit(),
            },
            recovered.seek_index,
            randomness,
        );
        let durable_file = DurablePublisher::open(&*storage, dir, tail.header.log_id);
        durable_file.publish(tail.next_lsn - 1);
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            work: Condvar::new(),
            durable_changed: Condvar::new(),
            durable_lsn: AtomicU64::new(tail.next_lsn - 1),
            storage,
            dir: dir.to_owned(),
            catalogue: Arc::new(Mutex::new(catalogue)),
            maintenance: Mutex::new(()),
            durable_file,
            policy: options.sync,
            direct,
            syncs: AtomicU64::new(0),
            listener,
        });
        let flusher = Flusher::new(shared.clone(), file, tail.path);
        let flusher_shared = shared.clone();
        let handle = std::thread::Builder::new()
            .name("durawal-flusher".into())
            .spawn(move || {
                // A panic here is a bug; it must fail every waiter rather
                // than leave them waiting for a thread that is gone.
                if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(|| flusher.run())) {
                    flusher_shared.fail_and_announce(Error::Internal(format!(
                        "the flush thread panicked: {}",
                        panic_message(&*panic)
                    )));
                }
            })
            .map_err(|e| Error::io("spawn", dir, e))?;
        let wal = Self {
            shared,
            retention: Mutex::new(None),
            flusher: Mutex::new(Some(handle)),
            lock: Mutex::new(Some(lock)),
            report: recovered.report,
            io_mode: if direct {
                IoMode::Direct
            } else {
                IoMode::Buffered
            },
            recovery_mode: options.recovery,
        };
        if options.retention.is_enabled() {
            // On failure `wal` is dropped, which closes it.
            let worker = RetentionWorker::start(wal.shared.clone(), options.retention.clone())?;
            *wal.retention.lock().unwrap_or_else(PoisonError::into_inner) = Some(worker);
        }
        Ok(wal)
    }

    /// Copies `data` into the log and returns its LSN. Durable later; see [`Wal::sync`].
    pub fn append(&self, data: &[u8]) -> Result<u64> {
        let _poison_on_panic = PoisonOnPanic(&self.shared);
        let mut state = self.shared.lock_state();
        let first_pending = state.pending_bytes == 0;
        let lsn = state.append(data)?;
        self.wake_flusher_if_due(&state, first_pending);
        Ok(lsn)
    }

    /// Appends a checkpoint record (application state, or an empty marker)
    /// and returns its LSN. Once durable it is [`Self::last_checkpoint`],
    /// where a replay from the latest checkpoint starts.
    pub fn checkpoint(&self, data: &[u8]) -> Result<u64> {
        let _poison_on_panic = PoisonOnPanic(&self.shared);
        let mut state = self.shared.lock_state();
        let first_pending = state.pending_bytes == 0;
        let lsn = state.checkpoint(data)?;
        self.wake_flusher_if_due(&state, first_pending);
        Ok(lsn)
    }

    /// LSN of the latest durable checkpoint record still in the log.
    pub fn last_checkpoint(&self) -> Option<u64> {
        catalogue::lock(&self.shared.catalogue).last_checkpoint()
    }

    /// Appends `records` as one atomic batch: after a crash all of them or none.
    pub fn append_batch(&self, records: &[&[u8]]) -> Result<(u64, u64)> {
        let _poison_on_panic = PoisonOnPanic(&self.shared);
        let mut state = self.shared.lock_state();
        let first_pending = state.pending_bytes == 0;
        let range = state.append_batch(records)?;
        self.wake_flusher_if_due(&state, first_pending);
        Ok(range)
    }

    /// Wakes the flusher when enough bytes are pending, or when the first
    /// record since the last flush arrives under an interval policy (so the
    /// flusher starts its timer instead of sleeping until asked).
    fn wake_flusher_if_due(&self, state: &AppendState, first_pending: bool) {
        let interval = matches!(self.shared.policy, SyncPolicy::Interval(_));
        if state.pending_bytes >= self.shared.flush_threshold() || (interval && first_pending) {
            self.shared.work.notify_one();
        }
    }

    /// Asks the flusher to make everything up to `lsn` (capped at the last
    /// appended LSN) durable, without waiting. Returns the durable LSN now.
    pub fn request_sync(&self, lsn: u64) -> Result<u64> {
        let mut state = self.shared.lock_state();
        state.check_open()?;
        let lsn = lsn.min(state.last_lsn());
        if lsn > state.requested_lsn {
            state.requested_lsn = lsn;
            self.shared.work.notify_one();
        }
        Ok(self.durable_lsn())
    }

    /// Blocks until everything up to `lsn` (default: everything appended) is
    /// durable; returns the durable LSN.
    pub fn sync(&self, lsn: Option<u64>) -> Result<u64> {
        let target = {
            let state = self.shared.lock_state();
            lsn.unwrap_or(state.last_lsn()).min(state.last_lsn())
        };
        self.request_sync(target)?;
        let mut state = self.shared.lock_state();
        loop {
            if let Some(failure) = &state.failure {
                return Err(Error::Poisoned(failure.clone()));
            }
            let durable = self.durable_lsn();
            if durable >= target {
                return Ok(durable);
            }
            state = self
                .shared
                .poison_if_panicked(self.shared.durable_changed.wait(state));
        }
    }

    /// Fails with the poisoning error when a write or sync has failed.
    pub fn check_health(&self) -> Result<()> {
        match &self.shared.lock_state().failure {
            Some(failure) => Err(Error::Poisoned(failure.clone())),
            None => Ok(()),
        }
    }

    /// Highest LSN on stable storage (0 when none).
    pub fn durable_lsn(&self) -> u64 {
        self.shared.durable_lsn.load(Ordering::Acquire)
    }

    /// LSN of the last appended record (0 when none).
    pub fn last_lsn(&self) -> u64 {
        self.shared.lock_state().last_lsn()
    }

    /// LSN of the first record in the log (0 when the log is empty).
    pub fn first_lsn(&self) -> u64 {
        self.shared.first_lsn()
    }

    /// Applies the retention policy now, as its worker does about once a
    /// second; returns the first LSN afterwards.
    pub fn apply_retention(&self, policy: &Retention) -> Result<u64> {
        crate::retention::apply(&self.shared, policy)
    }

    /// Number of segment files and their total size in bytes.
    pub fn segment_usage(&self) -> (usize, u64) {
        let catalogue = catalogue::lock(&self.shared.catalogue);
        (catalogue.len(), catalogue.total_bytes())
    }

    /// What recovery found at open.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.report
    }

    /// Whether writes bypass the page cache.
    pub fn io_mode(&self) -> IoMode {
        self.io_mode
    }

    /// Record bytes appended and not yet durable (waiting or being written).
    pub fn buffered_bytes(&self) -> u64 {
        self.shared.lock_state().buffered_bytes()
    }

    /// Number of data syncs issued since open.
    pub fn sync_count(&self) -> u64 {
        self.shared.syncs.load(Ordering::Relaxed)
    }

    /// Reads the durable records with LSNs in `from..=to`.
    pub fn replay(&self, from: u64, to: u64) -> Result<ReplayCursor> {
        let from = from.max(1);
        let start = {
            let state = self.shared.lock_state();
            state.check_open()?;
            state.seek_index.seek(from)
        };
        let to = to.min(self.durable_lsn());
        // Pinned before the segments are listed, so that truncation cannot
        // remove one between the listing and the first read.
        let pin = Pin::new(self.shared.catalogue.clone(), from);
        let segment_starts = catalogue::lock(&self.shared.catalogue)
            .segments()
            .map(|(first, _)| first)
            .collect();
        ReplayCursor::new(
            self.shared.storage.clone(),
            &self.shared.dir,
            (from, to),
            segment_starts,
            self.recovery_mode == RecoveryMode::SkipCorrupted,
            start,
            Some(pin),
        )
    }

    /// Flushes what was appended, stops the flusher and releases the lock.
    /// Idempotent. A poisoned log closes without writing anything more and
    /// returns the poisoning error (every time it is called), because records
    /// appended before the failure never became durable; the lock is
    /// released all the same.
    pub fn close(&self) -> Result<()> {
        if let Some(mut worker) = self
            .retention
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            worker.stop();
        }
        // A truncation in progress finishes first: its disk work must not
        // outlive the lock.
        let _maintenance = self.shared.lock_maintenance();
        {
            let mut state = self.shared.lock_state();
            state.closing = true;
            self.shared.work.notify_one();
        }
        if let Some(handle) = self
            .flusher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = handle.join();
        }
        self.shared.durable_file.close();
        self.lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.check_health()
    }
}

/// Poisons the log when dropped during a panic: declared before the state
/// guard, it is dropped after it, when the panic has poisoned the lock, and its
/// [`Shared::lock_state`] marks the log failed and wakes the flusher so that
/// pending waiters are told now rather than at the next call.
struct PoisonOnPanic<'a>(&'a Shared);

impl Drop for PoisonOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            drop(self.0.lock_state());
        }
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// Decides between direct and buffered writes by trying an aligned direct
/// write of the lock file's one block: some filesystems accept O_DIRECT at
/// open but refuse the write.
fn probe_direct_io(storage: &dyn Storage, lock_path: &Path, setting: DirectIo) -> Result<bool> {
    if setting == DirectIo::Off
        || !cfg!(any(
            target_os = "linux",
            target_os = "android",
            target_vendor = "apple"
        ))
    {
        return match setting {
            DirectIo::Required => Err(Error::InvalidArgument(
                "directIo: true is not supported on this platform".into(),
            )),
            _ => Ok(false),
        };
    }
    let mut block = AlignedBuffer::new();
    block.extend_zeroed(BLOCK_SIZE);
    let attempt = storage
        .open(lock_path, OpenMode::ReadWrite, true)
        .and_then(|file| file.write_all_at(block.as_slice(), 0));
    match attempt {
        Ok(()) => Ok(true),
        Err(error) if error.raw_os_error() == Some(libc::EINVAL) => match setting {
            DirectIo::Required => Err(Error::InvalidArgument(format!(
                "directIo: true, but the filesystem of {} refuses O_DIRECT",
                lock_path.display()
            ))),
            _ => Ok(false),
        },
        Err(error) => Err(Error::io("probe O_DIRECT", lock_path, error)),
    }
}

/// Creates the first segment of a new log and returns where appending starts.
fn start_first_segment(
    storage: &dyn Storage,
    dir: &Path,
    segment_size: u64,
    direct: bool,
    randomness: &mut Randomness,
) -> Result<RecoveredTail> {
    let header = SegmentHeader {
        version: FORMAT_VERSION,
        salt: randomness.salt()?,
        log_id: randomness.log_id()?,
        first_lsn: 1,
        prev_seal_offset: 0,
        prev_digest: 0,
    };
    let prepared = prepare_segment(storage, dir, segment_size, direct)?;
    let mut block = AlignedBuffer::new();
    block.extend_from_slice(&header.encode());
    let prepared_path = dir.join(crate::format::PREPARED_SEGMENT_NAME);
    prepared
        .file
        .write_all_at(block.as_slice(), 0)
        .map_err(|e| Error::io("write", &prepared_path, e))?;
    prepared
        .file
        .sync_data()
        .map_err(|e| Error::io("fdatasync", &prepared_path, e))?;
    Ok(RecoveredTail {
        header,
        path: install_segment(storage, dir, header.first_lsn)?,
        capacity: prepared.size,
        position: SEGMENT_HEADER_SIZE as u64,
        next_lsn: header.first_lsn,
        digest: 0,
        record_count: 0,
        seal: None,
        last_checkpoint: None,
    })
}

/// The segment appends continue in, as recovery (or a cut) left it.
pub(crate) fn active_segment(tail: &RecoveredTail) -> ActiveSegment {
    ActiveSegment {
        header: tail.header,
        capacity: tail.capacity,
        position: tail.position,
        digest: tail.digest,
        record_count: tail.record_count,
        sealed_at: tail.seal.map(|found| found.offset),
    }
}

/// The bytes of the partial block that ends at `position`, which the next
/// flush rewrites unchanged. The whole block is read into aligned memory
/// because `file` may be open for direct I/O.
pub(crate) fn read_tail_block(
    file: &dyn StorageFile,
    path: &Path,
    position: u64,
) -> Result<Vec<u8>> {
    let start = position - position % BLOCK_SIZE as u64;
    let wanted = (position - start) as usize;
    if wanted == 0 {
        return Ok(Vec::new());
    }
    let mut block = AlignedBuffer::new();
    block.extend_zeroed(BLOCK_SIZE);
    let read = file
        .read_at(block.as_mut_slice(), start)
        .map_err(|e| Error::io("read", path, e))?;
    if read < wanted {
        return Err(Error::corrupt(
            path,
            start + read as u64,
            "segment ended inside its last block",
        ));
    }
    Ok(block.as_slice()[..wanted].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_internal_poison(result: Result<impl std::fmt::Debug>) {
        match result {
            Err(Error::Poisoned(cause)) => assert!(matches!(*cause, Error::Internal(_))),
            other => panic!("expected Poisoned(Internal), got {other:?}"),
        }
    }

    #[test]
    fn a_panic_under_the_state_lock_poisons_the_log_instead_of_panicking_callers() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Arc::new(Wal::open(dir.path(), Options::default()).unwrap());
        wal.append(b"kept").unwrap();
        wal.sync(None).unwrap();
        let holder = wal.clone();
        let panicked = std::thread::spawn(move || {
            let _state = holder.shared.lock_state();
            panic!("a bug while holding the lock");
        })
        .join();
        assert!(panicked.is_err());
        assert_internal_poison(wal.append(b"refused"));
        assert_internal_poison(wal.append_batch(&[b"refused"]));
        assert_internal_poison(wal.sync(None));
        assert_internal_poison(wal.close());
        assert_eq!(wal.last_lsn(), 1);
        assert_eq!(wal.durable_lsn(), 1);
    }
}
