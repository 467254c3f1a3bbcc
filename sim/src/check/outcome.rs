//! [`Outcome`] of a run and the fixed exit codes the CLI maps outcomes to.

use serde::{Deserialize, Serialize};

use crate::check::invariant::{Invariant, Violation};

/// The fixed exit codes of every command, in one place.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// Every run passed (`replay`: the snapshot replays as recorded).
    Pass = 0,
    /// An invariant was violated (or the system under test panicked).
    Violation = 1,
    /// Bad usage or input (flags, plan files, configs), or `replay` cannot run.
    Usage = 2,
    /// The liveness phase did not drain within its bound.
    Stuck = 3,
    /// A seed did not replay identically.
    Nondeterminism = 4,
    /// `replay`: a snapshot recorded failing now passes.
    ReplayNowPasses = 5,
    /// `replay`: the run fails, but not as recorded (another invariant, step or story), or a
    /// snapshot recorded as fixed fails again.
    ReplayDiffers = 6,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// What a failing seed is counted as in a campaign: the invariant it broke (a stuck run breaks
/// I10), a panic, or a seed that did not replay identically. Its label (`I2
/// one-manager-per-user`, `PANIC`, `NONDETERMINISM`) keys summaries, JUnit cases and stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FailureKind {
    /// An invariant broke.
    Invariant(Invariant),
    /// The system under test, the harness or a dependency panicked.
    Panic,
    /// Two runs of one seed differed.
    Nondeterminism,
}

impl FailureKind {
    /// Every kind, in report order.
    pub fn all() -> impl Iterator<Item = FailureKind> {
        Invariant::ALL
            .into_iter()
            .map(FailureKind::Invariant)
            .chain([FailureKind::Panic, FailureKind::Nondeterminism])
    }

    /// The kind a label names.
    pub fn parse(label: &str) -> Option<FailureKind> {
        FailureKind::all().find(|k| k.to_string() == label)
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FailureKind::Invariant(i) => write!(f, "{i}"),
            FailureKind::Panic => f.write_str("PANIC"),
            FailureKind::Nondeterminism => f.write_str("NONDETERMINISM"),
        }
    }
}

/// The exit code of a campaign (`fuzz`, or `merge` of its shards): nondeterminism first; else
/// the verdict of the lowest failing seed among the failures that are new (not `known` to a
/// store of failures); 0 when there are none. `failures` holds each failure kind with whether
/// it is known, `failing` each failing seed's outcome.
pub fn campaign_exit<'a>(
    failures: impl IntoIterator<Item = (&'a str, bool)>,
    failing: impl IntoIterator<Item = (u64, &'a Outcome)>,
) -> Exit {
    let new: std::collections::BTreeSet<&str> = failures
        .into_iter()
        .filter(|(_, known)| !known)
        .map(|(kind, _)| kind)
        .collect();
    if new.contains(FailureKind::Nondeterminism.to_string().as_str()) {
        return Exit::Nondeterminism;
    }
    if new.is_empty() {
        return Exit::Pass;
    }
    failing
        .into_iter()
        .filter(|(_, o)| !o.passed() && new.contains(o.label().as_str()))
        .min_by_key(|(seed, _)| *seed)
        .map_or(Exit::Violation, |(_, o)| o.exit_code().max(Exit::Violation))
}

/// How one run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    /// Every invariant held and everything drained.
    Pass,
    /// An invariant broke.
    Violation(Violation),
    /// After healing, some users still had messages in flight when the bound passed.
    Stuck {
        /// One line per blocked user: what it waits on.
        blocked: Vec<String>,
    },
    /// The system under test (or the harness) panicked.
    Panic {
        /// The panic message.
        message: String,
        /// Who panicked, from where the panic was raised: `the system under test` (the core,
        /// the server or a planted bug), `the harness`, or `a dependency`.
        by: String,
        /// Where (`file:line`), if known.
        at: Option<String>,
    },
}

impl Outcome {
    /// The exit code for this outcome.
    pub fn exit_code(&self) -> Exit {
        match self {
            Outcome::Pass => Exit::Pass,
            Outcome::Violation(_) | Outcome::Panic { .. } => Exit::Violation,
            Outcome::Stuck { .. } => Exit::Stuck,
        }
    }

    /// What a failing run counts as (`None` for a pass).
    pub fn kind(&self) -> Option<FailureKind> {
        match self {
            Outcome::Pass => None,
            Outcome::Violation(v) => Some(FailureKind::Invariant(v.invariant)),
            Outcome::Stuck { .. } => Some(FailureKind::Invariant(Invariant::I10)),
            Outcome::Panic { .. } => Some(FailureKind::Panic),
        }
    }

    /// A short label for grouping failures: `PASS`, `I2 one-manager-per-user`, `I10 liveness`,
    /// `PANIC` (see [`FailureKind`]).
    pub fn label(&self) -> String {
        self.kind()
            .map_or_else(|| "PASS".to_owned(), |k| k.to_string())
    }

    /// Whether the run passed.
    pub fn passed(&self) -> bool {
        matches!(self, Outcome::Pass)
    }

    /// What makes two failures alike, whatever seed, users and ids they involve: the
    /// invariant and the check of it that fired ([`Violation::rule`]), or where a panic was
    /// raised. A store of known failures calls a failure known when one of the same signature
    /// against the same target and transport is stored.
    pub fn signature(&self) -> String {
        match self {
            Outcome::Pass => "PASS".into(),
            Outcome::Violation(v) => format!("{:?}: {}", v.invariant, v.rule),
            Outcome::Stuck { .. } => "I10: stuck".into(),
            Outcome::Panic { by, at, .. } => {
                format!("PANIC in {by} at {}", at.as_deref().unwrap_or("?"))
            }
        }
    }
}
