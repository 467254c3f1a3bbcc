//! Checking a run: steps and their trace hash, the invariants and their two oracles, how a
//! reader moves through a stream, the ledger of every finding on a recorded run, coverage, and
//! the verdict.

pub mod coverage;
pub mod invariant;
pub mod ledger;
pub mod outcome;
pub mod reading;
pub mod trace;
