//! The two oracles and which checks of each apply to a run.
//!
//! The black-box oracle is the primary one: it sees only what the harness did, what the
//! backend's calls returned, and what each simulated tab read. It needs nothing from the
//! backend but its operations, so it checks any registry, and it cannot be misled by a registry
//! whose account of itself shares its bug. The white-box oracle checks that account (the
//! `Observer` stream and probes), for backends that give one, and the design choices a backend
//! declares (ids never reused, one acceptance per message).

use serde::{Deserialize, Serialize};

use crate::backend::Capabilities;

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

/// The checks that apply to one run: the oracles chosen, narrowed to what the backend offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checks {
    /// What clients saw and calls returned.
    pub black: bool,
    /// The observer's account.
    pub white: bool,
    /// Probes before each client action.
    pub probes: bool,
    /// A connection or manager number seen twice is a bug.
    pub unique_ids: bool,
    /// A message accepted twice is a bug.
    pub accepts_once: bool,
}

impl Checks {
    /// Every check (the checker's default, for the core).
    pub const ALL: Checks = Checks {
        black: true,
        white: true,
        probes: true,
        unique_ids: true,
        accepts_once: true,
    };

    /// The checks `oracle` allows for a backend with `caps`.
    pub fn new(oracle: Oracle, caps: Capabilities) -> Self {
        let white = oracle.white() && caps.observes;
        Checks {
            black: oracle.black(),
            white,
            probes: oracle.white() && caps.probes,
            unique_ids: white && caps.unique_ids,
            accepts_once: white && caps.accepts_once,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backend_that_offers_nothing_is_judged_by_the_black_box_alone() {
        let bare = Checks::new(Oracle::Both, Capabilities::default());
        assert!(bare.black && !bare.white && !bare.probes && !bare.unique_ids);
        assert_eq!(Checks::new(Oracle::Both, Capabilities::ALL), Checks::ALL);
        let white = Checks::new(Oracle::WhiteBox, Capabilities::ALL);
        assert!(!white.black && white.white && white.accepts_once);
        let black = Checks::new(Oracle::BlackBox, Capabilities::ALL);
        assert!(black.black && !black.white && !black.probes && !black.accepts_once);
    }
}
