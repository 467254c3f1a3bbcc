//! [`Oracle`]: who judges a run, chosen with the config and written in the plan. What each
//! oracle checks is the check stage's business (`check::invariant`).

use serde::{Deserialize, Serialize};

/// Which oracles judge a run.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Oracle {
    /// Both: every check the backend's capabilities allow.
    #[default]
    Both,
    /// Only what clients see and calls return.
    BlackBox,
    /// Only the backend's own account (observer, probes) and its declared properties.
    WhiteBox,
}

impl Oracle {
    /// Whether this is the default.
    pub fn is_both(&self) -> bool {
        *self == Oracle::Both
    }

    /// Whether the black-box checks apply.
    pub fn black(self) -> bool {
        self != Oracle::WhiteBox
    }

    /// Whether the white-box checks apply (where the backend offers what they need).
    pub fn white(self) -> bool {
        self != Oracle::BlackBox
    }

    /// The name, as `--oracle` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Oracle::Both => "both",
            Oracle::BlackBox => "black-box",
            Oracle::WhiteBox => "white-box",
        }
    }
}
