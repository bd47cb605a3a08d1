//! Pins the durability contract under simulated power loss (RELIABILITY.md,
//! G2, per-push tier's first slice). A simulated disk keeps, per file, the
//! bytes written and the bytes made durable by a data sync, and for the
//! directory, the entries as they are and as they were at the last directory
//! sync. A workload of appends and syncs (with segment rotations) runs until
//! the power fails at its k-th disk operation, for every k: from then on
//! every operation fails, and what was written or renamed but not synced is
//! lost, kept or torn (every other 512-byte sector) in five fixed
//! combinations, and in random draws decided file by file and directory
//! change by directory change: over 10,000 crash states.
//! Recovery of that image must open and return a prefix of the appended
//! records that holds every acknowledged one, byte-exact and dense.
//!
//! The harness proves it can fail: with data syncs or directory syncs made
//! to do nothing (as if the code had dropped them), it finds lost
//! acknowledged records.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use durawal::storage::{LockGuard, OpenMode, Storage, StorageFile};
use durawal::{DirectIo, Options, RecoveryMode, SyncPolicy, Wal};

/// What a broken implementation would skip; the harness must notice.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mutation {
    None,
    NoDataSync,
    NoDirectorySync,
}

/// What a power failure does to data and directory entries not yet synced.
#[derive(Clone, Copy, Debug)]
enum Fate {
    /// Everything not synced is lost.
    DropAll,
    /// Every write reached the disk (but unsynced names are lost).
    KeepData,
    /// Unsynced names survived, unsynced data did not.
    KeepEntries,
    /// Everything written reached the disk.
    KeepAll,
    /// Unsynced data is torn: every other 512-byte sector of it reached the
    /// disk, the rest kept its old bytes; unsynced names are lost.
    TornSectors,
    /// Drawn from this seed, file by file and entry by entry: each file's
    /// unsynced data is lost, kept, or torn at random 512-byte sectors, and
    /// each unsynced directory change (a create, rename or removal) happened
    /// or not.
    Random(u64),
}

/// Fates drawn at random for each power-failure point, besides the five fixed ones.
const RANDOM_DRAWS: u64 = 50;

/// SplitMix64, for reproducible draws.
fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const FATES: [Fate; 5] = [
    Fate::DropAll,
    Fate::KeepData,
    Fate::KeepEntries,
    Fate::KeepAll,
    Fate::TornSectors,
];

impl Fate {
    fn keeps_entries(self) -> bool {
        matches!(self, Fate::KeepEntries | Fate::KeepAll)
    }

    /// The directory after the power failure.
    fn entries(self, disk: &Disk) -> BTreeMap<String, usize> {
        let Fate::Random(seed) = self else {
            return if self.keeps_entries() {
                disk.entries.clone()
            } else {
                disk.durable_entries.clone()
            };
        };
        let mut entries = disk.durable_entries.clone();
        let names: std::collections::BTreeSet<&String> = disk
            .entries
            .keys()
            .chain(disk.durable_entries.keys())
            .collect();
        for (index, name) in names.into_iter().enumerate() {
            let now = disk.entries.get(name);
            if now != disk.durable_entries.get(name) && mix(seed ^ (index as u64) << 32) % 2 == 1 {
                match now {
                    Some(&id) => entries.insert(name.clone(), id),
                    None => entries.remove(name),
                };
            }
        }
        entries
    }

    /// The bytes of file `id` after the power failure.
    fn apply(self, id: usize, file: &SimFile) -> Vec<u8> {
        match self {
            Fate::Random(seed) => {
                let seed = mix(seed ^ (id as u64 + 1) << 40);
                match seed % 3 {
                    0 => file.durable.clone(),
                    1 => file.written.clone(),
                    _ => {
                        let mut torn = file.written.clone();
                        for (index, sector) in torn.chunks_mut(512).enumerate() {
                            if mix(seed ^ index as u64).is_multiple_of(2) {
                                let start = index * 512;
                                for (offset, byte) in sector.iter_mut().enumerate() {
                                    *byte = file.durable.get(start + offset).copied().unwrap_or(0);
                                }
                            }
                        }
                        torn
                    }
                }
            }
            Fate::DropAll | Fate::KeepEntries => file.durable.clone(),
            Fate::KeepData | Fate::KeepAll => file.written.clone(),
            Fate::TornSectors => {
                let mut torn = file.written.clone();
                for (index, sector) in torn.chunks_mut(512).enumerate() {
                    let start = index * 512;
                    if index % 2 == 1 {
                        for (offset, byte) in sector.iter_mut().enumerate() {
                            *byte = file.durable.get(start + offset).copied().unwrap_or(0);
                        }
                    }
                }
                torn
            }
        }
    }
}

#[derive(Default)]
struct SimFile {
    written: Vec<u8>,
    durable: Vec<u8>,
}

struct Disk {
    files: Vec<SimFile>,
    /// Directory entries now, and as of the last directory sync.
    entries: BTreeMap<String, usize>,
    durable_entries: BTreeMap<String, usize>,
    operations: u64,
    power_fails_at: u64,
    mutation: Mutation,
}

impl Disk {
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
    fn after_power_loss(&self, fate: Fate) -> Disk {
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
        }
    }
}

#[derive(Clone)]
struct SimStorage(Arc<Mutex<Disk>>);

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
        if disk.mutation != Mutation::NoDirectorySync {
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

const SEGMENT_SIZE: u64 = 64 * 1024;
const RECORDS: u64 = 150;

fn record(lsn: u64) -> Vec<u8> {
    // 2.5–6.5 KiB: a segment holds about a dozen, so the workload rotates.
    let length = 2560 + (lsn * 1543 % 4096) as usize;
    (0..length).map(|i| (lsn as usize * 31 + i) as u8).collect()
}

fn options() -> Options {
    Options {
        segment_size: SEGMENT_SIZE,
        sync: SyncPolicy::Never,
        direct_io: DirectIo::Off,
        recovery: RecoveryMode::TolerateTail,
        ..Options::default()
    }
}

fn dir() -> PathBuf {
    PathBuf::from("/simulated-log")
}

/// Runs the workload on a disk that fails at operation `power_fails_at`;
/// returns the disk and the highest LSN a sync acknowledged.
fn run_until_power_fails(power_fails_at: u64, mutation: Mutation) -> (Arc<Mutex<Disk>>, u64) {
    let disk = Arc::new(Mutex::new(Disk {
        files: Vec::new(),
        entries: BTreeMap::new(),
        durable_entries: BTreeMap::new(),
        operations: 0,
        power_fails_at,
        mutation,
    }));
    let mut acknowledged = 0;
    if let Ok(wal) = Wal::open_with(&dir(), options(), Arc::new(SimStorage(disk.clone())), None) {
        for lsn in 1..=RECORDS {
            if wal.append(&record(lsn)).is_err() {
                break;
            }
            if lsn % 3 == 0 {
                match wal.sync(None) {
                    Ok(durable) => acknowledged = durable,
                    Err(_) => break,
                }
            }
        }
        let _ = wal.close();
    }
    (disk, acknowledged)
}

/// Recovers the image left by the power failure; `Err` says what is wrong.
fn check_recovery(disk: &Mutex<Disk>, fate: Fate, acknowledged: u64) -> Result<(), String> {
    let image = disk.lock().unwrap().after_power_loss(fate);
    let storage = Arc::new(SimStorage(Arc::new(Mutex::new(image))));
    let wal = Wal::open_with(&dir(), options(), storage, None)
        .map_err(|error| format!("refused: {error}"))?;
    let last = wal.last_lsn();
    if last < acknowledged {
        return Err(format!(
            "acknowledged LSN {acknowledged} lost: log ends at {last}"
        ));
    }
    let mut cursor = wal.replay(1, last).map_err(|error| error.to_string())?;
    let mut next = 1;
    while let Some(batch) = cursor
        .next_batch(100, 1 << 20)
        .map_err(|error| error.to_string())?
    {
        let mut start = 0;
        for (end, lsn) in batch.ends.iter().zip(&batch.lsns) {
            if *lsn != next {
                return Err(format!("LSN {lsn} where {next} was expected"));
            }
            if batch.data[start..*end as usize] != record(*lsn) {
                return Err(format!("wrong bytes at LSN {lsn}"));
            }
            start = *end as usize;
            next += 1;
        }
    }
    if next - 1 != last {
        return Err(format!(
            "replay ended at {} but the log ends at {last}",
            next - 1
        ));
    }
    Ok(())
}

/// Every power-failure point of the workload; returns the failures found.
/// With `first_only`, stops at the first failure (for the mutation check).
fn explore(mutation: Mutation, first_only: bool) -> (u64, Vec<String>) {
    let (disk, _) = run_until_power_fails(u64::MAX, mutation);
    let total = disk.lock().unwrap().operations;
    let mut failures = Vec::new();
    let mut states = 0;
    for point in 1..=total + 1 {
        let (disk, acknowledged) = run_until_power_fails(point, mutation);
        let draws = (0..RANDOM_DRAWS).map(|draw| Fate::Random(mix(point << 16 | draw)));
        for fate in FATES.into_iter().chain(draws) {
            states += 1;
            if let Err(failure) = check_recovery(&disk, fate, acknowledged) {
                failures.push(format!(
                    "power lost at operation {point}, {fate:?} (acknowledged {acknowledged}): {failure}"
                ));
                if first_only {
                    return (states, failures);
                }
            }
        }
    }
    (states, failures)
}

#[test]
fn every_power_failure_point_recovers_every_acknowledged_record() {
    let (states, failures) = explore(Mutation::None, false);
    eprintln!(
        "{states} crash states: every disk operation of the workload, {} fates each",
        FATES.len() as u64 + RANDOM_DRAWS
    );
    assert!(
        states > 10_000,
        "the workload is too small to mean much: {states} crash states"
    );
    assert!(
        failures.is_empty(),
        "{} failures, first: {}",
        failures.len(),
        failures[0]
    );
}

#[test]
fn the_harness_catches_a_dropped_data_sync_and_a_dropped_directory_sync() {
    for mutation in [Mutation::NoDataSync, Mutation::NoDirectorySync] {
        let (states, failures) = explore(mutation, true);
        assert!(
            !failures.is_empty(),
            "{mutation:?}: the harness found nothing wrong"
        );
        eprintln!(
            "{mutation:?}: caught after {states} crash states: {}",
            failures[0]
        );
    }
}
