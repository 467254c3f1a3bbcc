//! What becomes of a failure once a run found it: shrunk to a small plan, then written as a
//! snapshot with its report page beside it: into `snapshots/` (or `--snapshots DIR`), into a
//! store of known failures (`fuzz --store DIR`, written in CI too: it is the campaign's
//! memory), or, in CI without a store, only printed (CI never writes snapshots). A campaign's
//! failures are triaged together ([`campaign`]): known ones are recognised without shrinking.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::check::outcome::FailureKind;
use crate::generate::config::SimConfig;
use crate::generate::plan::Plan;
use crate::generate::seed::Seed;
use crate::run::runtime::RuntimeError;
use crate::run::world::RunReport;
use crate::tooling::campaign::{derive, CampaignSummary};
use crate::tooling::isolation::{run_in_worker, WorkerCommand};
use crate::tooling::page::PageError;
use crate::tooling::shrink::ShrinkOptions;
use crate::tooling::snapshot::{Snapshot, SnapshotError};
use crate::tooling::store::StoreError;
use crate::tooling::target::Target;

/// Why a failure could not be kept.
#[derive(Debug, thiserror::Error)]
pub enum TriageError {
    /// A run (a shrink candidate, a replay of a stored snapshot) could not run.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The snapshot could not be written.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// Its page could not be written.
    #[error(transparent)]
    Page(#[from] PageError),
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where shrunk failures go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// A store of known failures: written wherever it runs, CI included.
    Store(PathBuf),
    /// A snapshot directory, for review.
    Snapshots(PathBuf),
    /// Nowhere: in CI, snapshots are printed, never written.
    Printed,
}

impl Destination {
    /// The destination a command's flags and its environment call for: the store when given;
    /// else nothing written in CI; else `snapshots` (default: the workspace's `snapshots/` for
    /// `wsreg-sim`, `./snapshots` for a team's own binary).
    pub fn choose(store: Option<&Path>, snapshots: Option<&Path>, program: &str) -> Self {
        match (store, snapshots) {
            (Some(store), _) => Destination::Store(store.to_owned()),
            _ if in_ci() => Destination::Printed,
            (None, Some(dir)) => Destination::Snapshots(dir.to_owned()),
            (None, None) if program == "cargo sim" => {
                Destination::Snapshots(crate::tooling::snapshot::dir())
            }
            (None, None) => Destination::Snapshots(PathBuf::from("snapshots")),
        }
    }

    /// The directory a replay line names.
    fn shown(&self) -> String {
        match self {
            Destination::Store(d) | Destination::Snapshots(d)
                if d == &crate::tooling::snapshot::dir() =>
            {
                "snapshots".to_owned()
            }
            Destination::Store(d) | Destination::Snapshots(d) => d.display().to_string(),
            Destination::Printed => "snapshots".to_owned(),
        }
    }
}

/// Whether this runs in CI (the `CI` variable set, and not to `false` or `0`).
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| v != "false" && v != "0")
}

/// A failure shrunk and kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kept {
    /// Its snapshot's name.
    pub name: String,
    /// The store already held it.
    pub known: bool,
    /// Its shrunk plan failed otherwise in a fresh process, so no snapshot was written.
    pub unreproducible: bool,
}

/// How a failure to shrink was found, for its snapshot's `found:` line.
pub struct Found<'a> {
    /// What it failed as (the shrink keeps candidates that fail the same way).
    pub kind: &'a str,
    /// Where it came from: `seed 0x9 --target B3`, `plan my.json`.
    pub from: String,
    /// The program that replays it (`cargo sim`, or a team's binary).
    pub program: &'a str,
    /// How to start a fresh process of that program, to check the shrunk plan fails there the
    /// same way before its snapshot is written (`None`: not checked).
    pub verify: Option<&'a WorkerCommand>,
}

/// Shrinks one failure and keeps its snapshot (and page) at `dest`, printing where.
pub fn shrink_and_keep(
    target: &Target,
    plan: Plan,
    runtime_seed: Seed,
    found: Found<'_>,
    options: ShrinkOptions,
    dest: &Destination,
) -> Result<Kept, TriageError> {
    let before = plan.ops.len();
    let terminal = std::io::stderr().is_terminal();
    let progress = |runs: usize, ops: usize| {
        if terminal {
            eprint!("\rshrinking {}: {runs} runs, {ops} ops left   ", found.kind);
        }
    };
    let s =
        crate::tooling::shrink::shrink(target, plan, runtime_seed, found.kind, options, &progress)?;
    if terminal {
        eprintln!();
    }
    let line = format!(
        "found: {}; plan shrunk from {before} to {} ops in {} runs ({:.1} s){}",
        found.from,
        s.plan.ops.len(),
        s.runs,
        s.elapsed.as_secs_f64(),
        if s.exhausted {
            ", budget exhausted: may not be minimal"
        } else {
            ""
        }
    );
    let snap = Snapshot::new(target.name(), s.plan, s.runtime_seed, &s.report, line)
        .replayed_by(found.program, &dest.shown());
    if let Some(worker) = found.verify {
        if let Some(there) = fails_otherwise_in_a_fresh_process(worker, target, &snap, &s.report) {
            println!(
                "snapshot {} NOT written: its plan fails as {} here but {there} in a fresh process; the backend keeps state between the runs of one process, so no snapshot of it would replay (see NONDETERMINISM)",
                snap.name,
                s.report.outcome.label()
            );
            return Ok(Kept {
                name: snap.name,
                known: false,
                unreproducible: true,
            });
        }
    }
    let known = match dest {
        Destination::Store(dir) => match snap.write(dir, &s.report)? {
            Some(path) => {
                let page = page_beside(&snap, &path, &s.report)?;
                println!(
                    "store: new failure, written: {} (page: {})",
                    path.display(),
                    page.display()
                );
                false
            }
            None => {
                println!("store: known failure {} (already stored)", snap.name);
                true
            }
        },
        Destination::Snapshots(dir) => {
            match snap.write(dir, &s.report)? {
                Some(path) => {
                    let page = page_beside(&snap, &path, &s.report)?;
                    println!(
                        "snapshot written: {} (page: {})",
                        path.display(),
                        page.display()
                    );
                }
                None => println!("snapshot {} (unchanged)", snap.name),
            }
            false
        }
        Destination::Printed => {
            println!(
                "snapshot {} (not written: CI never writes snapshots)",
                snap.name
            );
            print!("{}", snap.body(&s.report));
            false
        }
    };
    Ok(Kept {
        name: snap.name,
        known,
        unreproducible: false,
    })
}

/// How a snapshot's plan ends in a fresh process, when that is not how it ended here (`None`:
/// the same, or the worker could not say: then the snapshot is written as before).
fn fails_otherwise_in_a_fresh_process(
    worker: &WorkerCommand,
    target: &Target,
    snap: &Snapshot,
    here: &RunReport,
) -> Option<String> {
    match run_in_worker(worker, target.name(), &snap.plan, snap.runtime_seed) {
        Ok(ran) if ran.outcome.signature() == here.outcome.signature() => None,
        Ok(ran) if ran.outcome.passed() => Some("passes".to_owned()),
        Ok(ran) => Some(format!("fails as {}", ran.outcome.label())),
        Err(e) => {
            eprintln!("could not check {} in a fresh process: {e}", snap.name);
            None
        }
    }
}

/// Writes a freshly written snapshot's page beside it (`NAME.html`).
fn page_beside(snap: &Snapshot, path: &Path, report: &RunReport) -> Result<PathBuf, PageError> {
    let out = crate::tooling::page::beside(path);
    let source = crate::tooling::page::PageSource::from_snapshot(snap.clone());
    crate::tooling::page::write(&out, &crate::tooling::page::render(&source, report))?;
    Ok(out)
}

/// How a campaign's failures are kept.
pub struct Keeping<'a> {
    /// The shrink's budget.
    pub options: ShrinkOptions,
    /// Where snapshots go.
    pub dest: &'a Destination,
    /// The program that replays them (`cargo sim`, or a team's binary).
    pub program: &'a str,
    /// How to start a fresh process of it, to check each shrunk plan there before it is
    /// written (`None`: not checked).
    pub verify: Option<&'a WorkerCommand>,
}

/// A campaign's failures, one per kind (its first seed): each is recognised in the store, or
/// shrunk and kept as `keeping` says; `summary` learns each one's snapshot and whether it was
/// known. `flags` are the command-line flags that reproduce the campaign's seeds. Prints what
/// it did and returns the snapshots its shrinks made.
pub fn campaign(
    summary: &mut CampaignSummary,
    target: &Target,
    base: &SimConfig,
    flags: &str,
    keeping: &Keeping<'_>,
) -> Result<Vec<String>, TriageError> {
    let Keeping {
        options,
        dest,
        program,
        verify,
    } = *keeping;
    let mut kept = Vec::new();
    for (label, g) in &summary.failures {
        println!("replay: {program} run --seed {}{flags}", g.first_seed);
        if FailureKind::parse(label) == Some(FailureKind::Nondeterminism) {
            continue;
        }
        if let Destination::Store(store) = dest {
            let first = summary.failing.iter().find(|r| r.seed == g.first_seed);
            let alike = match first {
                Some(r) => {
                    crate::tooling::store::alike(store, target, base.net.is_some(), &r.outcome)?
                }
                None => None,
            };
            if let Some(name) = alike {
                println!("store: known failure {label}: fails like {name} (not shrunk again)");
                let k = Kept {
                    name,
                    known: true,
                    unreproducible: false,
                };
                kept.push((label.clone(), k, false));
                continue;
            }
        }
        let (_, plan, runtime_seed) = derive(base, g.first_seed);
        let found = Found {
            kind: label,
            from: format!("seed {}{flags}", g.first_seed),
            program,
            verify,
        };
        let k = shrink_and_keep(target, plan, runtime_seed, found, options, dest)?;
        kept.push((label.clone(), k, true));
    }
    let mut written = std::collections::BTreeSet::new();
    for (label, k, shrunk) in kept {
        if k.unreproducible {
            continue;
        }
        if let Some(g) = summary.failures.get_mut(&label) {
            g.snapshot = Some(k.name.clone());
            g.known = k.known;
        }
        if shrunk {
            written.insert(k.name);
        }
    }
    if matches!(dest, Destination::Store(_)) {
        let new: Vec<&str> = summary
            .failures
            .iter()
            .filter(|(_, g)| !g.known)
            .map(|(label, _)| label.as_str())
            .collect();
        let known = summary.failures.len() - new.len();
        if new.is_empty() {
            println!("store: no new failures ({known} known)");
        } else {
            println!(
                "store: {} new failure(s): {} ({known} known)",
                new.len(),
                new.join(", ")
            );
        }
    }
    let written: Vec<String> = written.into_iter().collect();
    if !written.is_empty() {
        println!("snapshots: {}", written.join(", "));
    }
    Ok(written)
}
