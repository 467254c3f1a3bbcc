//! Checking a run: steps and their trace hash, the invariants and their two oracles, coverage,
//! and the verdict.

pub mod coverage;
pub mod invariant;
pub mod outcome;
pub mod trace;
