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
}
