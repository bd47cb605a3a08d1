//! The count-up explorer: a workload runs once to count its disk
//! operations, then once per operation with the power failing there, and
//! the image each fate leaves is recovered and checked.

use crate::fates::{mix, Fate, FIXED_FATES};

/// What a check of one power-failure image found: how many crash states it
/// covered (one, or more when it explores further crashes itself), or what
/// is wrong.
pub type Checked = Result<u64, String>;

/// A workload run until the power failed at some point.
pub struct PointRun {
    /// Checks the recovery of the image a fate leaves.
    pub check: Box<dyn Fn(Fate) -> Checked>,
    /// What the workload had done, for the failure message.
    pub progress: String,
    /// Disk operations it made (all of them, when the power never failed).
    pub operations: u64,
}

/// Random fates drawn per power-failure point besides the fixed ones: 50 per
/// push, 1,000 in the release tier (`DURAWAL_RELIABILITY=full`), which
/// takes the harness past a million crash states.
pub fn random_draws() -> u64 {
    match std::env::var("DURAWAL_RELIABILITY").as_deref() {
        Ok("full") => 1_000,
        _ => 50,
    }
}

/// Crash states checked and the failures found.
pub struct Exploration {
    pub states: u64,
    pub failures: Vec<String>,
}

impl Exploration {
    /// Fails the test when anything failed, or when fewer than `at_least`
    /// crash states were checked (a workload too small to mean much).
    pub fn assert_clean(&self, what: &str, at_least: u64) {
        eprintln!("{what}: {} crash states", self.states);
        assert!(
            self.states >= at_least,
            "{what}: the workload is too small to mean much: {} crash states",
            self.states
        );
        assert!(
            self.failures.is_empty(),
            "{what}: {} failures, first: {}",
            self.failures.len(),
            self.failures[0]
        );
    }
}

/// Runs `at_point` for every power-failure point of a workload (counted by
/// running it once without failure), and its check for each fixed fate and
/// `draws` random ones. With `first_only`, stops at the first failure (for
/// the mutation checks).
pub fn explore_points(
    first_only: bool,
    draws: u64,
    at_point: impl Fn(u64) -> PointRun,
) -> Exploration {
    let disk_operations = at_point(u64::MAX).operations;
    let mut found = Exploration {
        states: 0,
        failures: Vec::new(),
    };
    for point in 1..=disk_operations + 1 {
        let PointRun {
            check, progress, ..
        } = at_point(point);
        let random = (0..draws).map(|draw| Fate::Random(mix(point << 16 | draw)));
        for fate in FIXED_FATES.into_iter().chain(random) {
            match check(fate) {
                Ok(states) => found.states += states,
                Err(failure) => {
                    found.states += 1;
                    found.failures.push(format!(
                        "power lost at operation {point}, {fate:?} ({progress}): {failure}"
                    ));
                    if first_only {
                        return found;
                    }
                }
            }
        }
    }
    found
}
