//! The two oracles behind one small trait ([`Judge`]), and which of their verdicts count in a
//! run ([`Checks`]).
//!
//! The black-box oracle is the primary one: it sees only what the harness did, what the
//! backend's calls returned, and what each simulated tab read. It needs nothing from the
//! backend but its operations, so it checks any registry, and it cannot be misled by a registry
//! whose account of itself shares its bug. The white-box oracle checks that account (the
//! `Observer` stream and probes), for backends that give one, and the design choices a backend
//! declares (ids never reused, one acceptance per message).

use wsreg::backend::Capabilities;
use wsreg::Position;

use super::holding::Learned;
use super::{Failed, Key};
use crate::check::coverage::Coverage;
use crate::check::trace::{MsgTag, Step};
use crate::generate::oracle::Oracle;

/// A failed check, and its place among the checks of the step that failed it. Each oracle
/// checks only what it can see and stops at its first failure; when both judge a run, the
/// earlier of their failures is the verdict (the white-box one on a tie), so a step's verdict
/// is the same as one walk through every check in order would give.
pub(crate) type Verdict = Result<(), (u8, Failed)>;

/// One oracle: a model of the run fed every step, judging what it can see. Both oracles are
/// fed everything whoever judges (so what the world waits on never depends on who judges);
/// [`Checks`] says whose verdicts count.
pub(crate) trait Judge {
    /// Checks one step and updates the model.
    fn step(&mut self, s: &Step, coverage: &mut Coverage) -> Verdict;

    /// A sender was told its message is at `at` (at step `step`).
    fn confirmed(&mut self, user: &Key, msg: &MsgTag, at: Position, step: u64) -> Verdict;

    /// A client learned something the trace shows no step for (after step `step`): a close
    /// returned, a socket ended, a refusal's typed error.
    fn learned(&mut self, user: &Key, tab: Option<u64>, learned: &Learned, step: u64) -> Verdict {
        let _ = (user, tab, learned, step);
        Ok(())
    }

    /// The server process died: what it held went with it.
    fn server_lost(&mut self);
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
            // A probe is compared with the history the observer reported: without one, there
            // is nothing to compare it with.
            probes: white && caps.probes,
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
        // Probes answered but nothing observed: nothing to compare them with, so no check.
        let probes_only = Capabilities {
            probes: true,
            ..Capabilities::default()
        };
        assert!(!Checks::new(Oracle::Both, probes_only).probes);
    }
}
