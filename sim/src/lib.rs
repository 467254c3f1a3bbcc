//! wsreg-sim: a seeded deterministic simulator for wsreg, built on madsim.
//!
//! One seed drives many concurrent simulated users against the core (or any [`Backend`]),
//! faults included; every core observation and client action is a step, and the invariants
//! I1–I10 (defined in the README, named by [`invariant::Invariant`]) are checked after every
//! step.
//!
//! Data flow: [`Seed`] → [`SimConfig::for_seed`] (swarm) → [`workload::generate`] ([`Plan`]) →
//! [`run_plan`] (a fresh thread, a madsim runtime, a [`world`]) → [`RunReport`] with an
//! [`Outcome`].
//!
//! Modules, one concept each: `seed`, `config`, `plan`, [`workload`], `backend` (the seam: five
//! operations, optional capabilities), [`target`] (backends by name: the core, the zoo, a team's
//! own), [`zoo`] (planted bugs), `net` (any backend behind the real server over simulated TCP),
//! `client` (simulated users), [`world`] (phases), `recorder` (observer and clients → steps),
//! `trace` (steps and their stable hash), [`invariant`] (the checker: the black-box and white-box
//! oracles), `coverage`, `outcome` (verdicts and exit codes), `runtime` (the only madsim-specific
//! code), [`campaign`] (many seeds), `shrink`, `snapshot` (the regression corpus), `report` (what
//! is printed), `bench` and `detection` (throughput and the zoo tables), [`oracles`] (the
//! three-oracle table), [`disconnect`] (the disconnect benchmark), `stress` (baseline (b) on real
//! tokio), [`table`] (measured tables as JSON and as the README's markdown), [`cli`].

pub mod backend;
pub mod bench;
pub mod campaign;
pub mod cli;
mod client;
pub mod config;
pub mod coverage;
pub mod detection;
pub mod disconnect;
pub mod invariant;
pub mod isolation;
#[cfg(madsim)]
pub mod net;
pub mod oracles;
pub mod outcome;
pub mod plan;
pub mod recorder;
pub mod report;
pub mod runtime;
pub mod seed;
pub mod shrink;
pub mod snapshot;
pub mod stress;
pub mod table;
pub mod target;
pub mod trace;
pub mod workload;
pub mod world;
pub mod zoo;

pub use backend::{Backend, CoreBackend};
pub use config::SimConfig;
pub use outcome::Outcome;
pub use plan::Plan;
pub use runtime::run_plan;
pub use seed::Seed;
pub use world::RunReport;
