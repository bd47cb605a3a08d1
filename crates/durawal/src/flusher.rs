//! The flush thread: takes the filled buffers, writes them, syncs, and
//! publishes the new durable LSN.
//!
//! It is a dedicated OS thread rather than a libuv pool task because fs and
//! DNS work share that pool, and a slow fsync must not starve them (nor be
//! starved by them). One flush serves every record appended before it began,
//! which is what makes concurrent writers share one write+sync.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard, PoisonError};
use std::time::{Instant, SystemTime};

use crate::aligned_buffer::AlignedBuffer;
use crate::append::{AppendState, Chunk, NewSegment};
use crate::catalogue::{self, SegmentEntry};
use crate::error::{Error, Result};
use crate::format::PREPARED_SEGMENT_NAME;
use crate::options::SyncPolicy;
use crate::recovery::TEAR_WINDOW;
use crate::segment_files::{install_segment, SegmentPreparer};
use crate::segment_sizing::next_segment_size;
use crate::storage::StorageFile;
use crate::wal::{FlushEvent, Shared};

/// Pending bytes that make the flusher write and sync even when no caller
/// asked for durability, so memory stays bounded under every policy.
pub const FLUSH_THRESHOLD: u64 = 4 << 20;
/// Spare buffers kept for reuse; more are freed.
const SPARE_BUFFERS: usize = 4;
/// A buffer grown larger than this (by a big record or a backlog) is freed
/// rather than kept, so one burst does not pin its memory for the log's life.
const MAX_SPARE_CAPACITY: usize = FLUSH_THRESHOLD as usize;

/// The flusher's own state: the file it writes and the next one being prepared.
pub struct Flusher {
    shared: Arc<Shared>,
    file: Box<dyn StorageFile>,
    path: PathBuf,
    preparer: SegmentPreparer,
    /// Size segments grow to (fixed for the life of the log).
    largest_segment: u64,
    /// First LSN of the segment it writes.
    first_lsn: u64,
    last_flush: Instant,
}

enum Due {
    Now,
    At(Instant),
    Idle,
    Exit,
}

impl Flusher {
    /// A flusher writing to the active segment `file` at `path`.
    pub fn new(shared: Arc<Shared>, file: Box<dyn StorageFile>, path: PathBuf) -> Self {
        let mut preparer = SegmentPreparer::default();
        let (largest_segment, first_lsn, capacity) = {
            let state = shared.lock_state();
            (
                state.limits.segment_size,
                state.segment.header.first_lsn,
                state.segment.capacity,
            )
        };
        preparer.start(
            shared.storage.clone(),
            shared.dir.clone(),
            next_segment_size(capacity, 0, largest_segment),
            shared.direct,
        );
        Self {
            shared,
            file,
            path,
            preparer,
            largest_segment,
            first_lsn,
            last_flush: Instant::now(),
        }
    }

    /// Runs until close; every record appended before close is flushed
    /// (unless the log is poisoned). A failure, whatever poisoned the log, is
    /// announced once, and nothing is written after it.
    pub fn run(mut self) {
        let shared = self.shared.clone();
        let mut failure_announced = false;
        let mut state = shared.lock_state();
        loop {
            if state.failure.is_some() && !failure_announced {
                failure_announced = true;
                drop(state);
                shared.announce(FlushEvent::Failed);
                state = shared.lock_state();
                continue;
            }
            match self.due(&state) {
                Due::Exit => break,
                Due::Idle => {
                    state = shared.poison_if_panicked(shared.work.wait(state));
                    continue;
                }
                Due::At(deadline) => {
                    let timeout = deadline.saturating_duration_since(Instant::now());
                    state = shared.poison_if_panicked(
                        shared
                            .work
                            .wait_timeout(state, timeout)
                            .map(|(state, _)| state)
                            .map_err(|poisoned| PoisonError::new(poisoned.into_inner().0)),
                    );
                    continue;
                }
                Due::Now => {}
            }
            let (chunks, target) = state.take_pending();
            let handoff = state.tail_handoff.take();
            drop(state);
            if let Some(tail) = handoff {
                self.file = tail.file;
                self.path = tail.path;
                self.first_lsn = tail.first_lsn;
            }
            let result = self.write_and_sync(chunks);
            self.last_flush = Instant::now();
            state = shared.lock_state();
            match result {
                Ok(buffers) => {
                    let room = SPARE_BUFFERS.saturating_sub(state.spare_buffers.len());
                    state.spare_buffers.extend(
                        buffers
                            .into_iter()
                            .filter(|buffer| buffer.capacity() <= MAX_SPARE_CAPACITY)
                            .take(room),
                    );
                    // Release pairs with the Acquire loads of readers: whoever
                    // sees the new durable LSN also sees that the sync returned.
                    shared.durable_lsn.store(target, Ordering::Release);
                    // Under the lock, like a cut's, so that a cut's lower
                    // value is never overwritten by an older flush's; and
                    // before the announcement, so that a record acknowledged
                    // here is never past what readers elsewhere see.
                    shared.durable_file.publish(target);
                    state.in_flight_bytes = 0;
                    record_durable_checkpoints(&shared, &mut state, target);
                    let buffered_bytes = state.buffered_bytes();
                    drop(state);
                    shared.announce(FlushEvent::Durable {
                        lsn: target,
                        buffered_bytes,
                    });
                    state = shared.lock_state();
                }
                Err(error) => {
                    // Announced at the top of the loop, like any other failure.
                    state.failure.get_or_insert_with(|| Arc::new(error));
                }
            }
        }
        drop(state);
        self.preparer.finish();
        // The prepared file holds nothing of the log; removing it leaves a
        // closed log's directory with only segments and the lock file.
        let _ = shared
            .storage
            .remove_file(&shared.dir.join(PREPARED_SEGMENT_NAME));
    }

    fn due(&self, state: &MutexGuard<'_, AppendState>) -> Due {
        if state.failure.is_some() {
            return if state.closing { Due::Exit } else { Due::Idle };
        }
        let durable = self.shared.durable_lsn.load(Ordering::Acquire);
        if state.last_lsn() <= durable {
            return if state.closing { Due::Exit } else { Due::Idle };
        }
        if state.closing
            || state.requested_lsn > durable
            || state.pending_bytes >= self.shared.flush_threshold()
        {
            return Due::Now;
        }
        match self.shared.policy {
            SyncPolicy::Interval(interval) if Instant::now() >= self.last_flush + interval => {
                Due::Now
            }
            SyncPolicy::Interval(interval) => Due::At(self.last_flush + interval),
            _ => Due::Idle,
        }
    }

    /// Writes the chunks in order and syncs. Never more than the tear window
    /// is written between two syncs, which bounds what a crash can tear.
    /// Returns the buffers for reuse.
    fn write_and_sync(&mut self, chunks: VecDeque<Chunk>) -> Result<Vec<AlignedBuffer>> {
        let mut unsynced = 0u64;
        let mut buffers = Vec::with_capacity(chunks.len());
        for mut chunk in chunks {
            if let Some(segment) = chunk.opens_segment {
                let shared = &self.shared;
                let prepared = self.preparer.take(
                    &*shared.storage,
                    &shared.dir,
                    segment.size,
                    shared.direct,
                )?;
                self.file = prepared.file;
                self.path = shared.dir.join(PREPARED_SEGMENT_NAME);
            }
            let bytes = chunk.buffer.padded_to_block();
            let mut offset = chunk.file_offset;
            for piece in bytes.chunks(TEAR_WINDOW as usize) {
                if unsynced > 0 && unsynced + piece.len() as u64 > TEAR_WINDOW {
                    self.sync()?;
                    unsynced = 0;
                }
                self.file
                    .write_all_at(piece, offset)
                    .map_err(|e| Error::io("write", &self.path, e))?;
                offset += piece.len() as u64;
                unsynced += piece.len() as u64;
            }
            if let Some(NewSegment { header, size }) = chunk.opens_segment {
                // The header and first records are synced before the rename,
                // and the directory is synced after it, so an acknowledged
                // record never lives in a file whose name could be lost.
                self.sync()?;
                unsynced = 0;
                let shared = &self.shared;
                self.path = install_segment(&*shared.storage, &shared.dir, header.first_lsn)?;
                self.first_lsn = header.first_lsn;
                catalogue::lock(&shared.catalogue).installed(
                    header.first_lsn,
                    SegmentEntry {
                        path: self.path.clone(),
                        bytes: self.file.length().unwrap_or(size),
                        sealed_at: None,
                        last_checkpoint: None,
                    },
                );
                self.preparer.start(
                    shared.storage.clone(),
                    shared.dir.clone(),
                    next_segment_size(size, 0, self.largest_segment),
                    shared.direct,
                );
            }
            if chunk.seals_segment {
                // The sealed segment must be complete on disk before the next
                // one can appear under its name.
                self.sync()?;
                unsynced = 0;
                catalogue::lock(&self.shared.catalogue).sealed(self.first_lsn, SystemTime::now());
            }
            buffers.push(chunk.buffer);
        }
        if unsynced > 0 {
            self.sync()?;
        }
        Ok(buffers)
    }

    fn sync(&self) -> Result<()> {
        self.shared.count_sync();
        self.file
            .sync_data()
            .map_err(|e| Error::io("fdatasync", &self.path, e))
    }
}

/// Moves the checkpoints that are durable now (up to `durable`) into the
/// catalogue, where `last_checkpoint` finds them.
fn record_durable_checkpoints(shared: &Shared, state: &mut AppendState, durable: u64) {
    if state.pending_checkpoints.is_empty() {
        return;
    }
    let mut catalogue = catalogue::lock(&shared.catalogue);
    state.pending_checkpoints.retain(|&(segment, lsn)| {
        if lsn > durable {
            return true;
        }
        catalogue.checkpointed(segment, lsn);
        false
    });
}
