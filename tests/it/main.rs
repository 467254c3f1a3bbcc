//! Core tests on real tokio: the isolation guarantees of the modelled system, asserted.

mod delivery;
mod isolation;
mod limits;
mod nodes;
mod support;
