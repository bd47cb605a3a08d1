//! The corruption matrix (RELIABILITY.md, G3): thousands of damaged copies
//! of small real logs, each opened in every recovery mode. Logs of tiny,
//! ~500-byte and multi-KiB records (batches and checkpoints among them),
//! spanning several segments, and one segment rewritten as format 2 wrote
//! it, are damaged in every way the contract names (`byte_damage`:
//! truncation and zeroing at every byte of the last records, every bit of
//! the last record headers, of a seal and of a segment header, sampled
//! payload flips, lying lengths, zero and garbage tails, stale valid
//! records, torn sectors; `structure`: missing, duplicate, foreign, forked
//! and misnamed segments, damaged control files, stray files).
//!
//! The oracle (`oracle`) derives from the damage alone where the valid
//! prefix ends and what each mode may do there; `check` holds recovery to
//! it: exactly the valid prefix, byte for byte, with the cut reported, or
//! `Corrupt` naming the file and offset with the directory untouched; never
//! a panic, a record that was not written, or an allocation sized by an
//! unchecked length. Every choice comes from a seed, printed on failure and
//! replayed with `DURAWAL_TEST_SEED`; `DURAWAL_RELIABILITY=full` damages
//! every byte and draws many more variants.

mod allocations;
mod byte_damage;
mod check;
mod logs;
mod oracle;
mod structure;

#[path = "../common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::time::Instant;

use check::{Variant, MODES};
use common::memory::Image;
use common::{release_tier, seed_from_env, Rng};
use logs::{OriginalLog, Profile};

#[global_allocator]
static ALLOCATOR: allocations::Tracking = allocations::Tracking;

/// How much of the matrix a run covers.
pub struct Tier {
    /// Damage every byte of the last records, not a sample of the larger ones.
    pub every_byte: bool,
    /// Payload bits flipped at random.
    pub payload_flips: u64,
    /// Random garbage tails.
    pub garbage_tails: u64,
    /// Random sets of torn sectors.
    pub torn_sets: u64,
    /// Forks of the log whose segments are put among its own.
    pub forks: u64,
}

impl Tier {
    fn from_env() -> Self {
        if release_tier() {
            Tier {
                every_byte: true,
                payload_flips: 2_000,
                garbage_tails: 500,
                torn_sets: 1_000,
                forks: 12,
            }
        } else {
            Tier {
                every_byte: false,
                payload_flips: 48,
                garbage_tails: 24,
                torn_sets: 24,
                forks: 3,
            }
        }
    }
}

/// Checks the variants of one log as they are made (a log's variants
/// together would not fit in memory) and keeps what they found.
pub struct Matrix<'a> {
    pub log: &'a OriginalLog,
    /// Variants checked, by kind of damage.
    pub kinds: BTreeMap<&'static str, u64>,
    pub failures: Vec<String>,
    pub largest_allocation: usize,
}

impl Matrix<'_> {
    /// Checks a variant whose expectation is known.
    pub fn check(&mut self, variant: Variant) {
        if variant.image == self.log.image {
            return;
        }
        *self.kinds.entry(variant.expect.kind()).or_default() += 1;
        let checked = check::check(self.log, &variant);
        self.largest_allocation = self.largest_allocation.max(checked.largest_allocation);
        for failure in checked.failures {
            self.failures.push(format!("{}: {failure}", variant.label));
        }
    }

    /// Damages segment `index` of the log with `damage`, derives the
    /// expectation from the result, and checks it.
    pub fn damage(&mut self, label: String, index: usize, damage: impl FnOnce(&mut Vec<u8>)) {
        let mut image: Image = self.log.image.clone();
        damage(image.get_mut(&self.log.segment_name(index)).unwrap());
        let expect = oracle::classify(self.log, &image);
        self.check(Variant {
            label,
            image,
            expect,
        });
    }
}

/// What one profile's run found.
struct ProfileRun {
    name: &'static str,
    kinds: BTreeMap<&'static str, u64>,
    failures: Vec<String>,
    largest_allocation: usize,
}

impl ProfileRun {
    fn variants(&self) -> u64 {
        self.kinds.values().sum()
    }
}

fn run_profile(profile: &'static Profile, seed: u64, tier: &Tier) -> ProfileRun {
    let mut rng = Rng::new(seed);
    let log = logs::write(profile, &mut rng);
    let mut matrix = Matrix {
        log: &log,
        kinds: BTreeMap::new(),
        failures: Vec::new(),
        largest_allocation: 0,
    };
    byte_damage::all(&mut matrix, &mut rng, tier);
    structure::all(&mut matrix, &mut rng, tier, seed);
    ProfileRun {
        name: profile.name,
        kinds: matrix.kinds,
        failures: matrix.failures,
        largest_allocation: matrix.largest_allocation,
    }
}

/// Fewest variants a push must check (RELIABILITY.md, G3).
const AT_LEAST: u64 = 5_000;

#[test]
fn every_damaged_log_opens_as_its_valid_prefix_or_is_refused_naming_the_damage() {
    let seed = seed_from_env(0x5eed_6300);
    let tier = Tier::from_env();
    let started = Instant::now();
    let profiles = [&logs::TINY, &logs::MEDIUM, &logs::LARGE, &logs::FORMAT_2];
    let runs: Vec<ProfileRun> = std::thread::scope(|scope| {
        let workers: Vec<_> = profiles
            .iter()
            .enumerate()
            .map(|(index, profile)| {
                let tier = &tier;
                scope.spawn(move || run_profile(profile, seed ^ (index as u64) << 56, tier))
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("a profile's run panicked"))
            .collect()
    });
    let variants: u64 = runs.iter().map(ProfileRun::variants).sum();
    for run in &runs {
        eprintln!(
            "{}: {} variants {:?}, largest allocation {} bytes",
            run.name,
            run.variants(),
            run.kinds,
            run.largest_allocation
        );
    }
    eprintln!(
        "corruption matrix: {variants} damaged logs x {} recovery modes in {:.1} s (seed {seed})",
        MODES.len(),
        started.elapsed().as_secs_f64()
    );
    let failures: Vec<String> = runs
        .into_iter()
        .flat_map(|run| {
            run.failures
                .into_iter()
                .map(move |f| format!("[{}] {f}", run.name))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} failures (replay with DURAWAL_TEST_SEED={seed}); the first of each kind:\n{}",
        failures.len(),
        first_of_each_kind(&failures).join("\n")
    );
    assert!(
        variants >= AT_LEAST,
        "only {variants} variants: the matrix must check at least {AT_LEAST}"
    );
}

/// The first failure of each kind, a kind being the failure's text with its
/// numbers left out (so that one damage at 500 offsets shows once).
fn first_of_each_kind(failures: &[String]) -> Vec<String> {
    let mut kinds = std::collections::BTreeSet::new();
    failures
        .iter()
        .filter(|failure| kinds.insert(failure.replace(|c: char| c.is_ascii_digit(), "")))
        .take(20)
        .cloned()
        .collect()
}
