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
//! The source follows the pipeline, one folder per stage and one concept per module:
//!
//! - [`generate`]: `seed`, `config` (swarm), `plan`, [`workload`].
//! - [`run`]: `backend` (the seam: five operations, optional capabilities), [`target`]
//!   (backends by name: the core, the zoo, a team's own), [`world`] (phases), the simulated
//!   clients, `recorder` (observer and clients → steps), `runtime` (the only madsim-specific
//!   code), `net` (any backend behind the real server over simulated TCP).
//! - [`check`]: `trace` (steps and their stable hash), [`invariant`] (the checker: the
//!   black-box and white-box oracles), `coverage`, `outcome` (verdicts and exit codes).
//! - [`tooling`]: [`campaign`] (many seeds), `isolation` (worker processes), `junit`, `merge`
//!   (shard summaries), `shrink`,
//!   `snapshot` (the regression corpus), `report` (what is printed), [`cli`].
//! - [`measure`]: `bench` (throughput), `detection` and [`oracles`] (the zoo tables),
//!   [`disconnect`] (the disconnect benchmark), `stress` (baseline (b) on real tokio), [`table`]
//!   (measured tables as JSON and as the README's markdown).
//! - [`zoo`]: the planted bugs.
//!
//! Every module is also reachable at the crate's root (`wsreg_sim::campaign`, ...).

pub mod check;
pub mod generate;
pub mod measure;
pub mod run;
pub mod tooling;
pub mod zoo;

pub use check::{coverage, invariant, outcome, trace};
pub use generate::{config, plan, seed, workload};
pub use measure::{bench, detection, disconnect, oracles, stress, suite, table};
pub(crate) use run::client;
#[cfg(madsim)]
pub use run::net;
pub use run::{backend, recorder, runtime, target, world};
pub use tooling::{
    campaign, cli, isolation, junit, merge, page, report, shrink, snapshot, store, triage,
};

pub use backend::Backend;
pub use config::SimConfig;
pub use outcome::Outcome;
pub use plan::Plan;
pub use runtime::run_plan;
pub use seed::Seed;
pub use world::RunReport;
