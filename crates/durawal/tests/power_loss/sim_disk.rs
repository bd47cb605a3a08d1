//! The simulated disk: per file, the bytes written and the bytes made
//! durable by a data sync; for the directory, the entries as they are and as
//! they were at the last directory sync. From the operation at which the
//! power fails, every operation fails, as if the machine had stopped.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use durawal::storage::{LockGuard, OpenMode, Storage, StorageFile};

use crate::fates::Fate;

/// What a broken implementation would skip; the harness must notice.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mutation {
    None,
    NoDataSync,
    NoDirectorySync,
    /// Directory syncs do nothing once the workload has started truncating
    /// (`Disk::truncating`): the syncs that make `HEAD`, `TRUNCATE` and the
    /// unlinks durable.
    NoDirectorySyncWhileTruncating,
}

/// What a power failure does to data and directory entries not yet synced.

#[derive(Clone, Default)]
pub struct SimFile {
    pub written: Vec<u8>,
    pub durable: Vec<u8>,
}

pub struct Disk {
    files: Vec<SimFile>,
    /// Directory entries now, and as of the last directory sync.
    pub entries: BTreeMap<String, usize>,
    pub durable_entries: BTreeMap<String, usize>,
    /// Operations made so far.
    pub operations: u64,
    power_fails_at: u64,
    mutation: Mutation,
    /// Set by the truncating workload when it starts removing records.
    pub truncating: bool,
}

impl Disk {
    /// An empty disk whose power fails at operation `power_fails_at`.
    pub fn new(power_fails_at: u64, mutation: Mutation) -> Arc<Mutex<Disk>> {
        Arc::new(Mutex::new(Disk {
            files: Vec::new(),
            entries: BTreeMap::new(),
            durable_entries: BTreeMap::new(),
            operations: 0,
            power_fails_at,
            mutation,
            truncating: false,
        }))
    }

    /// Counts a disk operation; from the failing one on, everything fails.
    fn operate(&mut self) -> io::Result<()> {
        self.operations += 1;
        if self.operations >= self.power_fails_at {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        Ok(())
    }

    /// What survives the power failure, as `fate` decides for what was
    /// written or renamed but not yet synced.
    pub fn after_power_loss(&self, fate: Fate) -> Disk {
        let mut files = Vec::new();
        let mut entries = BTreeMap::new();
        for (name, id) in fate.entries(self) {
            entries.insert(name, files.len());
            let survived = fate.apply(id, &self.files[id]);
            files.push(SimFile {
                written: survived.clone(),
                durable: survived,
            });
        }
        Disk {
            files,
            durable_entries: entries.clone(),
            entries,
            operations: 0,
            power_fails_at: u64::MAX,
            mutation: Mutation::None,
            truncating: false,
        }
    }

    /// The bytes of the file named `name` (as written).
    pub fn file(&self, name: &str) -> Option<&[u8]> {
        let id = *self.entries.get(name)?;
        Some(&self.files[id].written)
    }

    /// Flips `bit` of the byte at `offset` of the file named `name`, on
    /// disk and in what was written alike: damage no sync or crash explains.
    pub fn flip_bit(&mut self, name: &str, offset: usize, bit: u8) {
        let file = &mut self.files[self.entries[name]];
        for bytes in [&mut file.written, &mut file.durable] {
            bytes[offset] ^= 1 << bit;
        }
    }

    /// The disk as a process that crashed (or a machine that lost power at
    /// operation `power_fails_at`, when one is given) leaves it to the next
    /// process: what was written but not synced is still pending, readable
    /// and losable, as in the page cache of a machine that kept running.
    pub fn after_process_crash(&self, power_fails_at: u64) -> Disk {
        Disk {
            files: self.files.clone(),
            entries: self.entries.clone(),
            durable_entries: self.durable_entries.clone(),
            operations: 0,
            power_fails_at,
            mutation: self.mutation,
            truncating: false,
        }
    }
}

/// The log's view of a simulated disk.
#[derive(Clone)]
pub struct SimStorage(pub Arc<Mutex<Disk>>);

struct SimHandle {
    disk: Arc<Mutex<Disk>>,
    id: usize,
}

fn name_of(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

impl StorageFile for SimHandle {
    fn write_all_at(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
        let mut disk = self.disk.lock().unwrap();
        disk.operate()?;
        let file = &mut disk.files[self.id].written;
        let end = offset as usize + bytes.len();
        if file.len() < end {
            file.resize(end, 0);
        }
        file[offset as usize..end].copy_from_slice(bytes);
        Ok(())
    }
    fn read_at(&self, buffer: &mut [u8], offset: u64) -> io::Result<usize> {
        let disk = self.disk.lock().unwrap();
        let file = &disk.files[self.id].written;
        let start = (offset as usize).min(file.len());
        let length = buffer.len().min(file.len() - start);
        buffer[..length].copy_from_slice(&file[start..start + length]);
        Ok(length)
    }
    fn sync_data(&self) -> io::Result<()> {
        let mut disk = self.disk.lock().unwrap();
        disk.operate()?;
        if disk.mutation != Mutation::NoDataSync {
            let file = &mut disk.files[self.id];
            file.durable = file.written.clone();
        }
        Ok(())
    }
    fn length(&self) -> io::Result<u64> {
        Ok(self.disk.lock().unwrap().files[self.id].written.len() as u64)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut disk = self.disk.lock().unwrap();
        disk.operate()?;
        disk.files[self.id].written.resize(len as usize, 0);
        Ok(())
    }
    fn drop_cache(&self) -> io::Result<()> {
        Ok(())
    }
}

impl Storage for SimStorage {
    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }
    fn list_dir(&self, _dir: &Path) -> io::Result<Vec<String>> {
        Ok(self.0.lock().unwrap().entries.keys().cloned().collect())
    }
    fn open(&self, path: &Path, mode: OpenMode, _direct: bool) -> io::Result<Box<dyn StorageFile>> {
        let mut disk = self.0.lock().unwrap();
        let name = name_of(path);
        let id = match (disk.entries.get(&name).copied(), mode) {
            (Some(_), OpenMode::CreateNew) => return Err(io::ErrorKind::AlreadyExists.into()),
            (Some(id), _) => id,
            (None, OpenMode::CreateNew | OpenMode::CreateOrOpen) => {
                disk.operate()?;
                disk.files.push(SimFile::default());
                let id = disk.files.len() - 1;
                disk.entries.insert(name, id);
                id
            }
            (None, _) => return Err(io::ErrorKind::NotFound.into()),
        };
        Ok(Box::new(SimHandle {
            disk: self.0.clone(),
            id,
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut disk = self.0.lock().unwrap();
        disk.operate()?;
        let id = disk
            .entries
            .remove(&name_of(from))
            .ok_or(io::ErrorKind::NotFound)?;
        disk.entries.insert(name_of(to), id);
        Ok(())
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.0.lock().unwrap();
        disk.operate()?;
        disk.entries
            .remove(&name_of(path))
            .map(drop)
            .ok_or_else(|| io::ErrorKind::NotFound.into())
    }
    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        let mut disk = self.0.lock().unwrap();
        disk.operate()?;
        let dropped = match disk.mutation {
            Mutation::NoDirectorySync => true,
            Mutation::NoDirectorySyncWhileTruncating => disk.truncating,
            _ => false,
        };
        if !dropped {
            disk.durable_entries = disk.entries.clone();
        }
        Ok(())
    }
    fn modified(&self, _path: &Path) -> io::Result<std::time::SystemTime> {
        // The simulated disk keeps no times.
        Ok(std::time::SystemTime::UNIX_EPOCH)
    }
    fn lock(&self, _path: &Path) -> io::Result<LockGuard> {
        Ok(Box::new(()))
    }
}
