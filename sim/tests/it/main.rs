//! Simulator tests. They need the madsim runtime, so they build only under `--cfg madsim`
//! (`scripts/test` runs them); the plain build compiles this file to nothing.
#![cfg(madsim)]

mod cli;
mod clients;
mod corpus;
mod determinism;
mod disconnect;
mod golden;
mod guided;
mod imports;
mod isolation;
mod ledger;
mod net;
mod nodes;
mod oracles;
mod pages;
mod panics;
mod planted;
mod readme;
mod scratch;
mod shrinking;
mod support;
