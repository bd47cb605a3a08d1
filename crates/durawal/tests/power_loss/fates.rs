//! What a power failure does to what was written or renamed but not synced.

use std::collections::{BTreeMap, BTreeSet};

use crate::sim_disk::{Disk, SimFile};

/// What a power failure does to data and directory entries not yet synced.
#[derive(Clone, Copy, Debug)]
pub enum Fate {
    /// Everything not synced is lost.
    DropAll,
    /// Every write reached the disk (but unsynced names are lost).
    KeepData,
    /// Unsynced names survived, unsynced data did not.
    KeepEntries,
    /// Everything written reached the disk.
    KeepAll,
    /// Unsynced data is torn: every other sector (of `sector` bytes: 512 for
    /// a disk with small sectors, 4096 for an "advanced format" one) reached
    /// the disk, the rest kept its old bytes; unsynced names are lost.
    TornSectors { sector: usize },
    /// Drawn from this seed, file by file and entry by entry: each file's
    /// unsynced data is lost, kept, or torn at random 512-byte or 4 KiB
    /// sectors, and each unsynced directory change (a create, rename or
    /// removal) happened or not.
    Random(u64),
}

/// The fates every power-failure point meets, besides the random draws.
pub const FIXED_FATES: [Fate; 6] = [
    Fate::DropAll,
    Fate::KeepData,
    Fate::KeepEntries,
    Fate::KeepAll,
    Fate::TornSectors { sector: 512 },
    Fate::TornSectors { sector: 4096 },
];

/// SplitMix64, for reproducible draws.
pub fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Fate {
    fn keeps_entries(self) -> bool {
        matches!(self, Fate::KeepEntries | Fate::KeepAll)
    }

    /// The directory after the power failure.
    pub fn entries(self, disk: &Disk) -> BTreeMap<String, usize> {
        let Fate::Random(seed) = self else {
            return if self.keeps_entries() {
                disk.entries.clone()
            } else {
                disk.durable_entries.clone()
            };
        };
        let mut entries = disk.durable_entries.clone();
        let names: BTreeSet<&String> = disk
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
    pub fn apply(self, id: usize, file: &SimFile) -> Vec<u8> {
        match self {
            Fate::Random(seed) => {
                let seed = mix(seed ^ (id as u64 + 1) << 40);
                match seed % 4 {
                    0 => file.durable.clone(),
                    1 => file.written.clone(),
                    draw => torn(file, if draw == 2 { 512 } else { 4096 }, |index| {
                        mix(seed ^ index as u64).is_multiple_of(2)
                    }),
                }
            }
            Fate::DropAll | Fate::KeepEntries => file.durable.clone(),
            Fate::KeepData | Fate::KeepAll => file.written.clone(),
            Fate::TornSectors { sector } => torn(file, sector, |index| index % 2 == 1),
        }
    }
}

/// The written bytes of `file`, except that the sectors `lost` picks (by
/// index) hold what was durable there (zeros past its end).
fn torn(file: &SimFile, sector: usize, lost: impl Fn(usize) -> bool) -> Vec<u8> {
    let mut bytes = file.written.clone();
    for (index, chunk) in bytes.chunks_mut(sector).enumerate() {
        if lost(index) {
            let start = index * sector;
            for (offset, byte) in chunk.iter_mut().enumerate() {
                *byte = file.durable.get(start + offset).copied().unwrap_or(0);
            }
        }
    }
    bytes
}
