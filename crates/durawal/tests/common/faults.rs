//! A storage backend that passes every operation to the real filesystem
//! unless an injector, shown each operation first, returns a fault for it
//! (or panics in its place). Tests describe the fault as a closure over the
//! operation, so one backend serves every fault plan.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use durawal::storage::{LockGuard, OpenMode, OsStorage, Storage, StorageFile};

/// One operation of the log on its files, as the injector sees it. Files
/// are told apart by `file`, a number given to each successful open in
/// order: a path can name different files over time (each prepared segment
/// is `next-segment.tmp` until it is renamed), and a file keeps the path it
/// was opened under after a rename.
#[derive(Debug)]
pub enum Operation<'a> {
    Open {
        path: &'a Path,
        mode: OpenMode,
        /// The number the file gets if the open goes through.
        file: u64,
    },
    Write {
        path: &'a Path,
        file: u64,
        offset: u64,
        bytes: &'a [u8],
    },
    Read {
        path: &'a Path,
        file: u64,
        offset: u64,
        length: usize,
    },
    Sync {
        path: &'a Path,
        file: u64,
    },
    Rename {
        from: &'a Path,
        to: &'a Path,
    },
    Remove {
        path: &'a Path,
    },
    SyncDir {
        dir: &'a Path,
    },
}

/// What an injector does to an operation.
#[derive(Debug)]
pub enum Fault {
    /// The operation fails with this error and does nothing.
    Fail(io::Error),
    /// A write puts its first `written` bytes in place, then fails with
    /// `error` (any other operation just fails).
    ShortWrite { written: usize, error: io::Error },
}

/// Decides the fate of an operation: `Some(fault)` injects it, `None` lets
/// the operation through.
pub type Injector = dyn Fn(&Operation) -> Option<Fault> + Send + Sync;

/// [`OsStorage`] with faults injected by a closure.
#[derive(Clone)]
pub struct InjectingStorage {
    inject: Arc<Injector>,
    next_file: Arc<AtomicU64>,
}

impl InjectingStorage {
    /// Operations for which `inject` returns an error fail with it.
    pub fn new(inject: impl Fn(&Operation) -> Option<io::Error> + Send + Sync + 'static) -> Self {
        Self::with_faults(move |operation| inject(operation).map(Fault::Fail))
    }

    /// Operations for which `inject` returns a fault get it.
    pub fn with_faults(
        inject: impl Fn(&Operation) -> Option<Fault> + Send + Sync + 'static,
    ) -> Self {
        Self {
            inject: Arc::new(inject),
            next_file: Arc::new(AtomicU64::new(0)),
        }
    }

    fn check(&self, operation: Operation) -> io::Result<()> {
        match (self.inject)(&operation) {
            None => Ok(()),
            Some(Fault::Fail(error) | Fault::ShortWrite { error, .. }) => Err(error),
        }
    }
}

struct InjectingFile {
    inner: Box<dyn StorageFile>,
    /// The path it was opened under (a prepared segment keeps its temporary name).
    path: PathBuf,
    id: u64,
    storage: InjectingStorage,
}

impl StorageFile for InjectingFile {
    fn write_all_at(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
        let operation = Operation::Write {
            path: &self.path,
            file: self.id,
            offset,
            bytes,
        };
        match (self.storage.inject)(&operation) {
            None => self.inner.write_all_at(bytes, offset),
            Some(Fault::Fail(error)) => Err(error),
            Some(Fault::ShortWrite { written, error }) => {
                self.inner.write_all_at(&bytes[..written], offset)?;
                Err(error)
            }
        }
    }
    fn read_at(&self, buffer: &mut [u8], offset: u64) -> io::Result<usize> {
        self.storage.check(Operation::Read {
            path: &self.path,
            file: self.id,
            offset,
            length: buffer.len(),
        })?;
        self.inner.read_at(buffer, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.storage.check(Operation::Sync {
            path: &self.path,
            file: self.id,
        })?;
        self.inner.sync_data()
    }
    fn length(&self) -> io::Result<u64> {
        self.inner.length()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn drop_cache(&self) -> io::Result<()> {
        self.inner.drop_cache()
    }
}

impl Storage for InjectingStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        OsStorage.create_dir_all(dir)
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        OsStorage.list_dir(dir)
    }
    fn open(&self, path: &Path, mode: OpenMode, direct: bool) -> io::Result<Box<dyn StorageFile>> {
        let id = self.next_file.fetch_add(1, Ordering::SeqCst);
        self.check(Operation::Open {
            path,
            mode,
            file: id,
        })?;
        Ok(Box::new(InjectingFile {
            inner: OsStorage.open(path, mode, direct)?,
            path: path.to_owned(),
            id,
            storage: self.clone(),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.check(Operation::Rename { from, to })?;
        OsStorage.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.check(Operation::Remove { path })?;
        OsStorage.remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.check(Operation::SyncDir { dir })?;
        OsStorage.sync_dir(dir)
    }
    fn modified(&self, path: &Path) -> io::Result<std::time::SystemTime> {
        OsStorage.modified(path)
    }
    fn lock(&self, path: &Path) -> io::Result<LockGuard> {
        OsStorage.lock(path)
    }
}

/// True when `path` is a segment file (not the prepared file or the lock).
pub fn is_segment(path: &Path) -> bool {
    path.extension().is_some_and(|extension| extension == "wal")
}
