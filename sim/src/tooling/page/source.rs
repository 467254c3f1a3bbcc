//! What a page is made from: a snapshot, or the record `run --json` writes. Both carry the
//! target, the runtime seed and the plan, so the page re-runs the plan (deterministically) to
//! get every step, and says so if the run no longer ends as recorded.

use std::path::Path;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::check::outcome::Outcome;
use crate::generate::plan::{Plan, PlanError};
use crate::generate::seed::Seed;
use crate::run::world::RunReport;
use crate::tooling::snapshot::{Expect, Snapshot, SnapshotError};

/// Version of the record `run --json` writes.
pub const RUN_RECORD_VERSION: u32 = 1;

/// The record `run --json FILE` writes: what was run, and how it ended.
#[derive(Debug, Serialize)]
pub struct RunRecord<'a> {
    /// [`RUN_RECORD_VERSION`].
    pub version: u32,
    /// The target's name.
    pub target: &'a str,
    /// The runtime seed.
    pub runtime_seed: Seed,
    /// The command that runs it again.
    pub replay: &'a str,
    /// The plan run.
    pub plan: &'a Plan,
    /// How it ended, its counts and its trace hash.
    #[serde(flatten)]
    pub report: &'a RunReport,
}

impl RunRecord<'_> {
    /// Writes the record as JSON to `path`.
    pub fn write(&self, path: &Path) -> Result<(), PageError> {
        let text = serde_json::to_string_pretty(self).expect("a run record serialises");
        std::fs::write(path, text).map_err(|source| PageError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// Writes the run's page to `path` (named after the file).
    pub fn write_page(&self, path: &Path) -> Result<(), PageError> {
        let name = path
            .file_stem()
            .map_or_else(|| "run".to_owned(), |s| s.to_string_lossy().into_owned());
        let source = PageSource {
            name,
            target: self.target.to_owned(),
            runtime_seed: self.runtime_seed,
            plan: self.plan.clone(),
            replay: self.replay.to_owned(),
            found: None,
            recorded: Recorded::Nothing,
        };
        super::write(path, &super::render(&source, self.report))
    }
}

/// The part of a run record a page needs.
#[derive(Debug, Deserialize)]
struct RunRecordFile {
    version: u32,
    target: String,
    runtime_seed: Seed,
    replay: String,
    plan: serde_json::Value,
    hash: u64,
    outcome: Outcome,
}

/// A file a page cannot be made from.
#[derive(Debug, Error)]
pub enum PageError {
    /// Unreadable or unwritable.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A snapshot that cannot be used.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// A run record's plan that cannot be used.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// Neither a snapshot nor a run record.
    #[error("{path}: {problem}")]
    Unrecognised {
        /// The file.
        path: String,
        /// What is wrong.
        problem: String,
    },
}

/// What a run was expected to show, as recorded.
#[derive(Clone, Debug)]
pub enum Recorded {
    /// A snapshot: its recorded verdict and story.
    Snapshot(Box<Snapshot>),
    /// Nothing: the run was made here, just now.
    Nothing,
    /// A run record: its outcome and trace hash.
    Run {
        /// How it ended.
        outcome: Outcome,
        /// Its trace hash.
        hash: u64,
    },
}

/// A run to show on a page.
#[derive(Clone, Debug)]
pub struct PageSource {
    /// What the page is called (the snapshot's name, or the record's file stem).
    pub name: String,
    /// The target's name.
    pub target: String,
    /// The runtime seed.
    pub runtime_seed: Seed,
    /// The plan.
    pub plan: Plan,
    /// The command that replays it.
    pub replay: String,
    /// How the failure was found and shrunk, when known.
    pub found: Option<String>,
    /// What was recorded.
    pub recorded: Recorded,
}

impl PageSource {
    /// A snapshot, as a page shows it.
    pub fn from_snapshot(snap: Snapshot) -> PageSource {
        let line = |prefix: &str| {
            snap.recorded
                .iter()
                .find_map(|l| l.strip_prefix(prefix).map(str::to_owned))
        };
        PageSource {
            name: snap.name.clone(),
            target: snap.target.clone(),
            runtime_seed: snap.runtime_seed,
            plan: snap.plan.clone(),
            replay: line("replay: ").unwrap_or_default(),
            found: line("found: "),
            recorded: Recorded::Snapshot(Box::new(snap)),
        }
    }

    /// Reads a snapshot (`.snap`) or a run record (`run --json`), telling them apart by content.
    pub fn load(path: &Path) -> Result<PageSource, PageError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| PageError::Io {
            path: shown.clone(),
            source,
        })?;
        if text.starts_with("---") {
            return Ok(PageSource::from_snapshot(Snapshot::parse(&text, path)?));
        }
        let unrecognised = |problem: String| PageError::Unrecognised {
            path: shown.clone(),
            problem,
        };
        let record: RunRecordFile = serde_json::from_str(&text).map_err(|e| {
            unrecognised(format!(
                "neither a snapshot (`.snap`) nor a run record (`run --json`): {e}"
            ))
        })?;
        if record.version != RUN_RECORD_VERSION {
            return Err(unrecognised(format!(
                "run record version {} (this build reads version {RUN_RECORD_VERSION})",
                record.version
            )));
        }
        let plan = Plan::from_json(&record.plan.to_string(), &format!("{shown}: plan"))?;
        Ok(PageSource {
            name: path
                .file_stem()
                .map_or_else(|| "run".to_owned(), |s| s.to_string_lossy().into_owned()),
            target: record.target,
            runtime_seed: record.runtime_seed,
            plan,
            replay: record.replay,
            found: None,
            recorded: Recorded::Run {
                outcome: record.outcome,
                hash: record.hash,
            },
        })
    }

    /// Why the run `report` does not show what was recorded, if it does not.
    pub fn mismatch(&self, report: &RunReport) -> Option<String> {
        match &self.recorded {
            Recorded::Nothing => None,
            Recorded::Snapshot(snap) => match (snap.expect, report.outcome.passed()) {
                (Expect::Pass, true) => None,
                (Expect::Fail, false) if snap.fails_as_recorded(report) => None,
                _ => Some(format!(
                    "This run no longer ends as the snapshot recorded (\"{}\"). The page shows the run as it is now.",
                    snap.verdict
                )),
            },
            Recorded::Run { outcome, hash } => (*outcome != report.outcome
                || *hash != report.hash)
                .then(|| {
                    format!(
                        "This run no longer ends as recorded (trace hash {hash:#018x}, now {:#018x}). The page shows the run as it is now.",
                        report.hash
                    )
                }),
        }
    }
}
