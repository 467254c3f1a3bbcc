//! The two oracles and which checks of each apply to a run.
//!
//! The black-box oracle is the primary one: it sees only what the harness did, what the
//! backend's calls returned, and what each simulated tab read. It needs nothing from the
//! backend but its operations, so it checks any registry, and it cannot be misled by a registry
//! whose account of itself shares its bug. The white-box oracle checks that account (the
//! `Observer` stream and probes), for backends that give one, and the design choices a backend
//! declares (ids never reused, one acceptance per message).

use wsreg::backend::Capabilities;

use crate::generate::oracle::Oracle;

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
