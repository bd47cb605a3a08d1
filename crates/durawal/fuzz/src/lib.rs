//! What the fuzz targets share: an in-memory filesystem for the log (so an
//! iteration costs no disk I/O) and the check every target runs: open the
//! log in each recovery mode and replay all of it. A panic, a hang or an
//! allocation past libFuzzer's limit is the bug the fuzzer looks for; the
//! checks below add what must hold of whatever recovery accepts.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use durawal::format::segment_file_name;
use durawal::storage::{LockGuard, OpenMode, Storage, StorageFile};
use durawal::{DirectIo, Options, RecoveryMode, Wal};

/// One file's bytes, shared by its open handles.
type Bytes = Arc<Mutex<Vec<u8>>>;

/// Files by path.
#[derive(Clone, Default)]
pub struct MemoryStorage {
    files: Arc<Mutex<BTreeMap<PathBuf, Bytes>>>,
}

struct MemoryFile(Bytes);

impl StorageFile for MemoryFile {
    fn write_all_at(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
        let mut data = self.0.lock().unwrap();
        let end = offset as usize + bytes.len();
        if data.len() < end {
            data.resize(end, 0);
        }
        data[offset as usize..end].copy_from_slice(bytes);
        Ok(())
    }
    fn read_at(&self, buffer: &mut [u8], offset: u64) -> io::Result<usize> {
        let data = self.0.lock().unwrap();
        let start = (offset as usize).min(data.len());
        let length = buffer.len().min(data.len() - start);
        buffer[..length].copy_from_slice(&data[start..start + length]);
        Ok(length)
    }
    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }
    fn length(&self) -> io::Result<u64> {
        Ok(self.0.lock().unwrap().len() as u64)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.lock().unwrap().resize(len as usize, 0);
        Ok(())
    }
    fn drop_cache(&self) -> io::Result<()> {
        Ok(())
    }
}

impl MemoryStorage {
    /// A directory holding these files.
    pub fn with_files(dir: &Path, files: Vec<(String, Vec<u8>)>) -> Self {
        let storage = Self::default();
        for (name, bytes) in files {
            storage
                .files
                .lock()
                .unwrap()
                .insert(dir.join(name), Arc::new(Mutex::new(bytes)));
        }
        storage
    }
}

impl Storage for MemoryStorage {
    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        Ok(self
            .files
            .lock()
            .unwrap()
            .keys()
            .filter(|path| path.parent() == Some(dir))
            .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
            .collect())
    }
    fn open(&self, path: &Path, mode: OpenMode, _direct: bool) -> io::Result<Box<dyn StorageFile>> {
        let mut files = self.files.lock().unwrap();
        let file = match (files.get(path), mode) {
            (Some(_), OpenMode::CreateNew) => return Err(io::ErrorKind::AlreadyExists.into()),
            (Some(file), _) => file.clone(),
            (None, OpenMode::CreateNew | OpenMode::CreateOrOpen) => {
                let file = Arc::new(Mutex::new(Vec::new()));
                files.insert(path.to_owned(), file.clone());
                file
            }
            (None, _) => return Err(io::ErrorKind::NotFound.into()),
        };
        Ok(Box::new(MemoryFile(file)))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut files = self.files.lock().unwrap();
        let file = files.remove(from).ok_or(io::ErrorKind::NotFound)?;
        files.insert(to.to_owned(), file);
        Ok(())
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.files
            .lock()
            .unwrap()
            .remove(path)
            .map(drop)
            .ok_or_else(|| io::ErrorKind::NotFound.into())
    }
    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }
    fn modified(&self, _path: &Path) -> io::Result<std::time::SystemTime> {
        // The fuzzed disk keeps no times.
        Ok(std::time::SystemTime::UNIX_EPOCH)
    }
    fn lock(&self, _path: &Path) -> io::Result<LockGuard> {
        Ok(Box::new(()))
    }
}

/// Segment size of the fuzzed logs: the smallest, so inputs stay small.
pub const SEGMENT_SIZE: u64 = 64 * 1024;

/// Opens the log made of `files` in every recovery mode (each on its own
/// copy) and replays whatever opens. What recovery accepts must replay
/// without error, with increasing LSNs (dense unless records were skipped),
/// and exactly as many records as recovery reported.
pub fn open_and_replay(files: &[(String, Vec<u8>)]) {
    let dir = Path::new("/fuzz-log");
    for mode in [
        RecoveryMode::TolerateTail,
        RecoveryMode::Absolute,
        RecoveryMode::PointInTime,
        RecoveryMode::SkipCorrupted,
    ] {
        let storage = Arc::new(MemoryStorage::with_files(dir, files.to_vec()));
        let options = Options {
            segment_size: SEGMENT_SIZE,
            recovery: mode,
            direct_io: DirectIo::Off,
            ..Options::default()
        };
        let wal = match Wal::open_with(dir, options, storage, None) {
            Ok(wal) => wal,
            // Refusing damage is a correct answer; any other failure is not.
            Err(error) if error.code() == "WAL_CORRUPT" => continue,
            Err(error) => panic!("{mode:?}: open failed with {error}"),
        };
        let report = wal.recovery().clone();
        let mut cursor = wal
            .replay(1, u64::MAX)
            .unwrap_or_else(|error| panic!("{mode:?}: replay refused after open: {error}"));
        let mut previous = 0;
        let mut replayed = 0u64;
        while let Some(batch) = cursor.next_batch(1000, 1 << 20).unwrap_or_else(|error| {
            panic!("{mode:?}: replay failed after open ({report:?}): {error}")
        }) {
            for &lsn in &batch.lsns {
                assert!(lsn > previous, "{mode:?}: LSN {lsn} after {previous}");
                if mode != RecoveryMode::SkipCorrupted && previous > 0 {
                    assert_eq!(lsn, previous + 1, "{mode:?}: LSNs must be dense");
                }
                previous = lsn;
                replayed += 1;
            }
        }
        assert_eq!(
            replayed, report.records,
            "{mode:?}: replay and recovery disagree ({report:?})"
        );
        drop(wal);
    }
}

/// The file name of the segment starting at `first_lsn`.
pub fn segment_name(first_lsn: u64) -> String {
    segment_file_name(first_lsn)
}
