//! Generating runs: a seed, the config it derives (swarm), buggify's sites, and the plan (plain
//! data: users and their ops at virtual times) that a run plays.

pub mod config;
pub mod oracle;
pub mod plan;
pub mod seed;
pub mod sites;
pub mod workload;
