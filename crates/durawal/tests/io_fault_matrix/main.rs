//! The I/O fault matrix (RELIABILITY.md, G4, its simulated half): a
//! workload of concurrent appends and syncs, segment rotations, a
//! checkpoint, `truncate_before` and a close runs once to count its disk
//! operations, then once per operation with that operation failing (EIO,
//! ENOSPC, EDQUOT, or a write cut short), once or from then on. The disk
//! (`disk`) notes every operation and what each file held at its last
//! successful sync; the checks (`checks`) hold the log to rule 3: poisoned
//! for good after a failed write or sync of its data, every later call and
//! close failing with `Poisoned`, a failed sync never retried and nothing
//! written after the failure, and, with every write no successful sync
//! covered lost, a reopen finding every acknowledged record byte-exact.
//! Each case runs under a watchdog: a hang fails the test. The release
//! tier (`DURAWAL_RELIABILITY=full`) adds EROFS, EFBIG, EINTR and ENOMEM.

mod checks;
mod disk;
mod workload;

#[path = "../common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use checks::Outcome;
use disk::{Disk, Failure, Plan};

/// A case that has not finished by then is taken as hung.
const WATCHDOG: Duration = Duration::from_secs(30);
/// Fewest cases with a fault injected that a run must check (RELIABILITY.md, G4).
const AT_LEAST: u64 = 300;

/// Runs the workload with `plan` in a new directory and checks it; `None`
/// for the counting run, which returns the number of operations.
fn run_case(plan: Option<Plan>) -> Result<(u64, Option<Outcome>), String> {
    let dir = tempfile::tempdir().map_err(|error| error.to_string())?;
    let disk = Disk::new(dir.path(), plan);
    let run = workload::run(dir.path(), Arc::new(Disk::storage(&disk)));
    let disk = disk.lock().unwrap();
    let outcome = match plan {
        Some(plan) => Some(checks::check(&plan, &run, &disk, dir.path())?),
        None => {
            check_workload(&run, &disk)?;
            None
        }
    };
    Ok((disk.operations(), outcome))
}

/// Without faults, the workload must do what the matrix means it to: open,
/// rotate through two segments at least, checkpoint, truncate, and close
/// with every record acknowledged.
fn check_workload(run: &workload::Run, disk: &Disk) -> Result<(), String> {
    let rotations = disk
        .seen
        .iter()
        .filter(|seen| seen.kind == "rename" && seen.name.ends_with(".wal"))
        .count();
    let head_written = disk.seen.iter().any(|seen| seen.name == "HEAD.tmp -> HEAD");
    let failed = run.calls.iter().find(|call| call.error.is_some());
    if let Some(error) = &run.open_error {
        return Err(format!(
            "the workload fails to open without faults: {error}"
        ));
    }
    if let Some(call) = failed {
        return Err(format!(
            "{} fails without faults: {:?}",
            call.what, call.error
        ));
    }
    let last = run.appended.keys().last().copied().unwrap_or(0);
    if rotations < 3 || !head_written || run.acknowledged != last {
        return Err(format!(
            "the workload installed {} segments, wrote HEAD: {head_written}, acknowledged {} of {last}",
            rotations, run.acknowledged
        ));
    }
    Ok(())
}

/// [`run_case`] on a thread of its own. One that does not finish in time
/// fails the test at once (its thread is left behind, stuck).
fn watched(plan: Option<Plan>) -> Result<(u64, Option<Outcome>), String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::Builder::new()
        .name("fault case".into())
        .spawn(move || {
            let result = std::panic::catch_unwind(|| run_case(plan));
            let _ = sender.send(result.unwrap_or_else(|panic| {
                Err(format!("panicked: {}", durawal::panic_message(&*panic)))
            }));
        })
        .expect("spawn a case");
    receiver
        .recv_timeout(WATCHDOG)
        .unwrap_or_else(|_| panic!("{plan:?} did not finish in {WATCHDOG:?}: a hang"))
}

#[derive(Default)]
struct Tally {
    cases: u64,
    injected: u64,
    /// By the operation the fault hit: cases, and those that poisoned the log.
    by_operation: BTreeMap<String, (u64, u64)>,
    data_faults: u64,
    open_failed: u64,
    poisoned: u64,
    failed_syncs: u64,
    failures: Vec<String>,
}

impl Tally {
    fn add(&mut self, plan: &Plan, result: Result<(u64, Option<Outcome>), String>) {
        self.cases += 1;
        let outcome = match result {
            Ok((_, Some(outcome))) => outcome,
            Ok((_, None)) => unreachable!("a case with a plan is checked"),
            Err(failure) => return self.failures.push(format!("{plan:?}: {failure}")),
        };
        if let Some(faulted) = outcome.faulted {
            let how = if plan.persistent {
                "from then on"
            } else {
                "once"
            };
            self.injected += 1;
            let entry = self
                .by_operation
                .entry(format!("{faulted} ({how})"))
                .or_default();
            entry.0 += 1;
            entry.1 += u64::from(outcome.poisoned);
        }
        self.data_faults += u64::from(outcome.data);
        self.open_failed += u64::from(outcome.open_failed);
        self.poisoned += u64::from(outcome.poisoned);
        self.failed_syncs += outcome.failed_syncs;
    }
}

#[test]
fn every_failed_operation_poisons_without_losing_an_acknowledged_record() {
    let started = Instant::now();
    let (operations, _) = watched(None).expect("the workload without faults");
    let mut tally = Tally::default();
    let failures = Failure::all();
    for at in 1..=operations {
        for persistent in [false, true] {
            for &failure in &failures {
                let plan = Plan {
                    at,
                    persistent,
                    failure,
                };
                let result = watched(Some(plan));
                tally.add(&plan, result);
            }
        }
    }
    eprintln!(
        "I/O fault matrix: {} operations, {} cases ({} with the fault injected: {} on log data, {} failing the open, {} poisoning the log; {} syncs failed) in {:.1} s",
        operations,
        tally.cases,
        tally.injected,
        tally.data_faults,
        tally.open_failed,
        tally.poisoned,
        tally.failed_syncs,
        started.elapsed().as_secs_f64()
    );
    for (operation, (cases, poisoned)) in &tally.by_operation {
        eprintln!("  {operation}: {cases} cases, {poisoned} poisoned the log");
    }
    assert!(
        tally.failures.is_empty(),
        "{} of {} cases failed; the first:\n{}",
        tally.failures.len(),
        tally.cases,
        tally.failures[..tally.failures.len().min(12)].join("\n")
    );
    assert!(
        tally.injected >= AT_LEAST,
        "only {} cases injected their fault; the matrix must check at least {AT_LEAST}",
        tally.injected
    );
}
