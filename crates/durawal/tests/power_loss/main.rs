//! Pins the durability contract under simulated power loss (RELIABILITY.md,
//! G2). A simulated disk (`sim_disk`) keeps, per file, the bytes written and
//! the bytes made durable by a data sync, and for the directory, the entries
//! as they are and as they were at the last directory sync. A workload runs
//! until the power fails at its k-th disk operation, for every k (the
//! `explorer`): from then on every operation fails, and what was written or
//! renamed but not synced is lost, kept or torn (at 512-byte or 4 KiB
//! sectors) in six fixed combinations and in random draws decided file by
//! file and directory change by directory change (`fates`). Recovery of that
//! image must open and return a prefix of the appended records that holds
//! every acknowledged one, byte-exact and dense (`log_check`).
//!
//! Format 3's line between a torn write and damage to synced records is
//! checked both ways: every image opens (a torn write is cut), and a bit
//! flipped in a record a later flagged record proves synced is refused
//! (`synced_damage`).
//!
//! The workloads: one writer appending records and checkpoints
//! (`appending`), four writers at once (`many_writers`), truncation
//! (`truncating`), a process crash followed by a reopen and then a power
//! loss (`reopen`), and a power loss during the recovery of a power loss
//! (`recovery_crash`). Per push they check over 60,000 crash states;
//! `DURAWAL_RELIABILITY=full` draws 1,000 random fates per point instead of
//! 50, for over a million.
//!
//! The harness proves it can fail: with data syncs or directory syncs made
//! to do nothing (as if the code had dropped them), it finds lost
//! acknowledged records.

mod appending;
mod explorer;
mod fates;
mod log_check;
mod many_writers;
mod recovery_crash;
mod reopen;
mod sim_disk;
mod synced_damage;
mod truncating;

use sim_disk::Mutation;

#[test]
fn every_power_failure_point_recovers_every_acknowledged_record() {
    appending::explore(Mutation::None, false).assert_clean("appending", 10_000);
}

#[test]
fn every_power_failure_point_of_four_concurrent_writers_recovers_every_acknowledged_record() {
    // How many disk operations (so crash points) the run makes depends on
    // how the scheduler groups the writers' syncs: typically 15,000-20,000
    // states, never below half that.
    many_writers::explore(Mutation::None, false).assert_clean("four writers", 7_500);
}

#[test]
fn a_power_loss_after_a_crash_and_reopen_keeps_what_the_reopened_log_called_durable() {
    reopen::explore(Mutation::None, false).assert_clean("crash, reopen, power loss", 10_000);
}

#[test]
fn a_power_loss_during_recovery_keeps_every_acknowledged_record() {
    recovery_crash::explore(Mutation::None, false)
        .assert_clean("power loss during recovery", 5_000);
}

#[test]
fn a_bit_flip_in_a_synced_record_is_refused_at_every_power_failure_point() {
    synced_damage::explore(Mutation::None).assert_clean("bit flip in a synced record", 5_000);
}

#[test]
fn the_harness_catches_a_dropped_data_sync_and_a_dropped_directory_sync() {
    for mutation in [Mutation::NoDataSync, Mutation::NoDirectorySync] {
        let found = appending::explore(mutation, true);
        assert!(
            !found.failures.is_empty(),
            "{mutation:?}: the harness found nothing wrong"
        );
        eprintln!(
            "{mutation:?}: caught after {} crash states: {}",
            found.states, found.failures[0]
        );
    }
}

#[test]
fn every_power_failure_point_of_a_truncating_workload_recovers_the_old_or_the_new_log() {
    truncating::explore(Mutation::None, false).assert_clean("truncating", 5_000);
}

#[test]
fn the_truncating_harness_catches_directory_syncs_dropped_while_truncating() {
    let found = truncating::explore(Mutation::NoDirectorySyncWhileTruncating, true);
    assert!(
        !found.failures.is_empty(),
        "the harness found nothing wrong"
    );
    assert!(
        found.failures[0].contains("head_started: true"),
        "caught before the truncations: {}",
        found.failures[0]
    );
    eprintln!(
        "caught after {} crash states: {}",
        found.states, found.failures[0]
    );
}
