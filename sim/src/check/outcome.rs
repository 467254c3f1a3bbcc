//! [`Outcome`] of a run and the fixed exit codes the CLI maps outcomes to.

use serde::{Deserialize, Serialize};

use crate::invariant::Violation;

/// Exit code: every run passed.
pub const EXIT_PASS: i32 = 0;
/// Exit code: an invariant was violated (or the system under test panicked).
pub const EXIT_VIOLATION: i32 = 1;
/// Exit code: bad usage or input (flags, plan files, configs).
pub const EXIT_USAGE: i32 = 2;
/// Exit code: the liveness phase did not drain within its bound.
pub const EXIT_STUCK: i32 = 3;
/// Exit code: a seed did not replay identically.
pub const EXIT_NONDETERMINISM: i32 = 4;
/// Exit code of `replay`: a snapshot recorded failing now passes.
pub const EXIT_REPLAY_NOW_PASSES: i32 = 5;
/// Exit code of `replay`: the run fails, but not as recorded (another invariant, step or
/// story), or a snapshot recorded as fixed fails again.
pub const EXIT_REPLAY_DIFFERS: i32 = 6;

/// The exit code of a campaign (`fuzz`, or `merge` of its shards): nondeterminism first; else
/// the verdict of the lowest failing seed among the failures that are new (not `known` to a
/// store of failures); 0 when there are none. `failures` holds each failure kind with whether
/// it is known, `failing` each failing seed's outcome.
pub fn campaign_exit_code<'a>(
    failures: impl IntoIterator<Item = (&'a str, bool)>,
    failing: impl IntoIterator<Item = (u64, &'a Outcome)>,
) -> i32 {
    let new: std::collections::BTreeSet<&str> = failures
        .into_iter()
        .filter(|(_, known)| !known)
        .map(|(kind, _)| kind)
        .collect();
    if new.contains(NONDETERMINISM) {
        return EXIT_NONDETERMINISM;
    }
    if new.is_empty() {
        return EXIT_PASS;
    }
    failing
        .into_iter()
        .filter(|(_, o)| !o.passed() && new.contains(o.label().as_str()))
        .min_by_key(|(seed, _)| *seed)
        .map_or(EXIT_VIOLATION, |(_, o)| o.exit_code().max(EXIT_VIOLATION))
}

/// The failure kind of a seed that did not replay identically.
pub const NONDETERMINISM: &str = "NONDETERMINISM";

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
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Pass => EXIT_PASS,
            Outcome::Violation(_) | Outcome::Panic { .. } => EXIT_VIOLATION,
            Outcome::Stuck { .. } => EXIT_STUCK,
        }
    }

    /// A short label for grouping failures: `PASS`, `I2 one-manager-per-user`, `I10 liveness`,
    /// `PANIC`.
    pub fn label(&self) -> String {
        match self {
            Outcome::Pass => "PASS".into(),
            Outcome::Violation(v) => v.invariant.to_string(),
            Outcome::Stuck { .. } => crate::invariant::Invariant::I10.to_string(),
            Outcome::Panic { .. } => "PANIC".into(),
        }
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
