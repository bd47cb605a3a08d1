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
//! A second workload removes records: `truncate_before`, then
//! `truncate_after` and new records under the LSNs it freed. Its recovery
//! must also find the log's head where `HEAD` put it (or where it was, if
//! the truncation had not finished) and a tail that is wholly the old one or
//! wholly the new one, never a mix.
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
    /// Directory syncs do nothing once the workload has started truncating
    /// (`Disk::truncating`): the syncs that make `HEAD`, `TRUNCATE` and the
    /// unlinks durable.
    NoDirectorySyncWhileTruncating,
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
    /// Set by the truncating workload when it starts removing records.
    truncating: bool,
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
            truncating: false,
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
    let disk = new_disk(power_fails_at, mutation);
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

/// An empty disk whose power fails at operation `power_fails_at`.
fn new_disk(power_fails_at: u64, mutation: Mutation) -> Arc<Mutex<Disk>> {
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

/// Every power-failure point of the appending workload; returns the failures
/// found. With `first_only`, stops at the first failure (for the mutation check).
fn explore(mutation: Mutation, first_only: bool) -> (u64, Vec<String>) {
    explore_points(first_only, RANDOM_DRAWS, |point| {
        let (disk, acknowledged) = run_until_power_fails(point, mutation);
        let operations = disk.lock().unwrap().operations;
        let check = move |fate| check_recovery(&disk, fate, acknowledged);
        PointRun {
            check: Box::new(check),
            progress: format!("acknowledged {acknowledged}"),
            operations,
        }
    })
}

/// A workload run until the power failed at some point.
struct PointRun {
    /// Checks the recovery of the image a fate leaves.
    check: Box<dyn Fn(Fate) -> Result<(), String>>,
    /// What the workload had done, for the failure message.
    progress: String,
    /// Disk operations it made (all of them, when the power never failed).
    operations: u64,
}

/// Runs `at_point` for every power-failure point of a workload (counted by
/// running it once without failure), and its check for each fate.
fn explore_points(
    first_only: bool,
    draws: u64,
    at_point: impl Fn(u64) -> PointRun,
) -> (u64, Vec<String>) {
    let disk_operations = at_point(u64::MAX).operations;
    let mut failures = Vec::new();
    let mut states = 0;
    for point in 1..=disk_operations + 1 {
        let PointRun {
            check, progress, ..
        } = at_point(point);
        let random = (0..draws).map(|draw| Fate::Random(mix(point << 16 | draw)));
        for fate in FATES.into_iter().chain(random) {
            states += 1;
            if let Err(failure) = check(fate) {
                failures.push(format!(
                    "power lost at operation {point}, {fate:?} ({progress}): {failure}"
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

// ---- The truncating workload ----

/// Records written before the truncations; the cut keeps LSNs up to `CUT`.
const FIRST_RECORDS: u64 = 48;
/// `truncate_before` is asked for this LSN.
const HEAD_TARGET: u64 = 30;
/// `truncate_after` keeps the records up to this LSN.
const CUT: u64 = 40;
/// Records written after the cut, under the LSNs it freed and beyond.
const LATER_RECORDS: u64 = 16;

/// The bytes written at `lsn` after the cut: not those of `record(lsn)`, so
/// that a mix of the old and the new tail cannot pass for either.
fn rewritten(lsn: u64) -> Vec<u8> {
    let mut bytes = record(lsn);
    bytes.iter_mut().for_each(|byte| *byte ^= 0xa5);
    bytes
}

/// How far the truncating workload got before the power failed.
#[derive(Clone, Copy, Debug, Default)]
struct TruncationProgress {
    /// Highest LSN a sync acknowledged before the cut, and after it.
    acknowledged_before_cut: u64,
    acknowledged_after_cut: u64,
    head_started: bool,
    /// The first LSN `truncate_before` reported.
    head_done: Option<u64>,
    cut_started: bool,
    cut_done: bool,
}

fn run_truncation_until_power_fails(
    power_fails_at: u64,
    mutation: Mutation,
) -> (Arc<Mutex<Disk>>, TruncationProgress) {
    let disk = new_disk(power_fails_at, mutation);
    let mut progress = TruncationProgress::default();
    let Ok(wal) = Wal::open_with(&dir(), options(), Arc::new(SimStorage(disk.clone())), None)
    else {
        return (disk, progress);
    };
    let mut run = || -> durawal::Result<()> {
        for lsn in 1..=FIRST_RECORDS {
            wal.append(&record(lsn))?;
            if lsn % 3 == 0 {
                progress.acknowledged_before_cut = wal.sync(None)?;
            }
        }
        disk.lock().unwrap().truncating = true;
        progress.head_started = true;
        progress.head_done = Some(wal.truncate_before(HEAD_TARGET)?);
        progress.cut_started = true;
        wal.truncate_after(CUT)?;
        progress.cut_done = true;
        progress.acknowledged_after_cut = CUT;
        for lsn in CUT + 1..=CUT + LATER_RECORDS {
            wal.append(&rewritten(lsn))?;
            if lsn % 3 == 0 {
                progress.acknowledged_after_cut = wal.sync(None)?;
            }
        }
        Ok(())
    };
    let _ = run();
    let _ = wal.close();
    (disk, progress)
}

/// Recovers the image of the truncating workload: the head is where it was
/// or where `HEAD` put it (only the latter once `truncate_before` returned),
/// records up to the cut are the first ones, and the records after it are
/// wholly the old ones (before the cut finished) or wholly the new ones,
/// every acknowledged record of that generation included.
fn check_truncation_recovery(
    disk: &Mutex<Disk>,
    fate: Fate,
    progress: &TruncationProgress,
    new_head: u64,
) -> Result<(), String> {
    let image = disk.lock().unwrap().after_power_loss(fate);
    let storage = Arc::new(SimStorage(Arc::new(Mutex::new(image))));
    let wal = Wal::open_with(&dir(), options(), storage, None)
        .map_err(|error| format!("refused: {error}"))?;
    let first = wal.first_lsn().max(1);
    let allowed_heads: &[u64] = match (progress.head_started, progress.head_done) {
        (false, _) => &[1],
        (true, None) => &[1, new_head],
        (true, Some(_)) => &[new_head],
    };
    let last = wal.last_lsn();
    if last >= first && !allowed_heads.contains(&first) {
        return Err(format!(
            "the log begins at {first}; allowed: {allowed_heads:?}"
        ));
    }
    let mut records = Vec::new();
    let mut cursor = wal.replay(1, last).map_err(|error| error.to_string())?;
    while let Some(batch) = cursor.next_batch(100, 1 << 20).map_err(|e| e.to_string())? {
        let mut start = 0;
        for (end, lsn) in batch.ends.iter().zip(&batch.lsns) {
            records.push((*lsn, batch.data[start..*end as usize].to_vec()));
            start = *end as usize;
        }
    }
    let lsns: Vec<u64> = records.iter().map(|(lsn, _)| *lsn).collect();
    if lsns != (first..=last).collect::<Vec<_>>() {
        return Err(format!("not dense from {first} to {last}: {lsns:?}"));
    }
    let after_cut: Vec<&(u64, Vec<u8>)> = records.iter().filter(|(lsn, _)| *lsn > CUT).collect();
    let new_tail = after_cut
        .first()
        .is_some_and(|(lsn, data)| *data == rewritten(*lsn));
    for (lsn, data) in &records {
        let expected = if *lsn > CUT && new_tail {
            rewritten(*lsn)
        } else {
            record(*lsn)
        };
        if *data != expected {
            return Err(format!("wrong bytes at LSN {lsn} (new tail: {new_tail})"));
        }
    }
    let must_reach = match (progress.cut_started, progress.cut_done) {
        (false, _) => progress.acknowledged_before_cut,
        // The cut may or may not have taken effect; either tail is whole.
        (true, false) if last > CUT => progress.acknowledged_before_cut,
        (true, false) => progress.acknowledged_before_cut.min(CUT),
        (true, true) if !new_tail && last > CUT => {
            return Err(format!(
                "the cut finished but the old records after {CUT} are back"
            ));
        }
        (true, true) => progress.acknowledged_after_cut,
    };
    if last < must_reach {
        return Err(format!(
            "acknowledged LSN {must_reach} lost: log ends at {last}"
        ));
    }
    Ok(())
}

fn explore_truncation(mutation: Mutation, first_only: bool) -> (u64, Vec<String>) {
    let (_, complete) = run_truncation_until_power_fails(u64::MAX, mutation);
    let new_head = complete
        .head_done
        .expect("the workload truncates without a power failure");
    assert!(
        new_head > 1 && new_head <= HEAD_TARGET,
        "truncate_before removed nothing: {new_head}"
    );
    explore_points(first_only, RANDOM_DRAWS, |point| {
        let (disk, progress) = run_truncation_until_power_fails(point, mutation);
        let operations = disk.lock().unwrap().operations;
        let check = move |fate| check_truncation_recovery(&disk, fate, &progress, new_head);
        PointRun {
            check: Box::new(check),
            progress: format!("{progress:?}"),
            operations,
        }
    })
}

#[test]
fn every_power_failure_point_of_a_truncating_workload_recovers_the_old_or_the_new_log() {
    let (states, failures) = explore_truncation(Mutation::None, false);
    eprintln!(
        "{states} crash states of truncate_before, truncate_after and rewrites, {} fates each",
        FATES.len() as u64 + RANDOM_DRAWS
    );
    assert!(
        states > 5_000,
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
fn the_truncating_harness_catches_directory_syncs_dropped_while_truncating() {
    let (states, failures) = explore_truncation(Mutation::NoDirectorySyncWhileTruncating, true);
    assert!(!failures.is_empty(), "the harness found nothing wrong");
    assert!(
        failures[0].contains("head_started: true"),
        "caught before the truncations: {}",
        failures[0]
    );
    eprintln!("caught after {states} crash states: {}", failures[0]);
}
