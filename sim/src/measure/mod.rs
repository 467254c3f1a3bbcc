//! Measuring: throughput, the zoo's detection tables (in process, through the network, over
//! many nodes, under each oracle), the disconnect benchmark, baseline (b) on real tokio, and the tables the
//! README shows.

pub mod bench;
pub mod detection;
pub mod disconnect;
pub mod exploration;
pub mod guidance;
pub mod nodes;
pub mod oracles;
pub mod stress;
pub mod suite;
pub mod table;
