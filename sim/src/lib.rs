//! wsreg-sim: a seeded deterministic simulator for wsreg, built on madsim.
//!
//! One seed drives many concurrent simulated users against the core (or any
//! [`wsreg::Backend`]), faults included; every core observation and client action is a step,
//! and the invariants I1–I10 (defined in the README, named by
//! [`check::invariant::Invariant`]) are checked after every step.
//!
//! Data flow: [`generate::seed::Seed`] → [`generate::config::SimConfig::for_seed`] (swarm) →
//! [`generate::workload::generate`] (a [`generate::plan::Plan`]) →
//! [`run::runtime::run_plan`] (a fresh thread, a madsim runtime, a [`run::world`]) →
//! [`run::world::RunReport`] with a [`check::outcome::Outcome`].
//!
//! The source follows the pipeline, one folder per stage and one concept per module. Stages
//! import one way, each only from the stages before it (a test reads the `use` lines), and
//! every item has one public path, through its stage:
//!
//! 1. [`generate`]: `seed`, `config` (swarm), `oracle` (who judges), `plan`, `workload`.
//! 2. [`check`]: `trace` (steps and their stable hash), `invariant` (the checker: the
//!    black-box and white-box oracles), `reading` (how a reader moves through a stream),
//!    `ledger` (every black-box finding of a recorded run, which the report page shows),
//!    `coverage`, `outcome` (verdicts, failure kinds, exit codes). Pure: it judges steps,
//!    whoever produced them.
//! 3. [`run`]: `backend` (the seam, `wsreg::Backend`, and how the harness makes one), `world`
//!    (phases), the simulated clients, `recorder` (observer and clients → steps, checked as
//!    they come), `runtime` (the only madsim-specific code), `net` (any backend behind the real
//!    server over simulated TCP).
//! 4. [`zoo`]: the planted bugs, each a backend over the real core.
//! 5. [`tooling`]: `target` (backends by name: the core, the zoo, a team's own), `campaign`
//!    (many seeds), `isolation` (worker processes), `shrink`, `triage` (what becomes of a
//!    failure), `snapshot` (the regression corpus), `store` (known failures), `junit`, `merge`
//!    (shard summaries), `page` (report pages), `report` (what is printed).
//! 6. [`measure`]: `bench` (throughput), `detection` and `oracles` (the zoo tables),
//!    `disconnect` (the disconnect benchmark), `stress` (baseline (b) on real tokio), `suite`
//!    (every table of `bench`), `table` (measured tables as JSON and as the README's markdown).
//! 7. [`cli`]: parses the command line and dispatches to the stages.

pub mod check;
pub mod cli;
pub mod generate;
pub mod measure;
pub mod run;
pub mod tooling;
pub mod zoo;
