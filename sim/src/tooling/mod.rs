//! What users drive: campaigns over many seeds, worker processes, shrinking, snapshots, what is
//! printed, and the command line.

pub mod campaign;
pub mod diagnosis;
pub mod guided;
pub mod isolation;
pub mod junit;
pub mod merge;
pub mod page;
pub mod report;
pub mod shrink;
pub mod snapshot;
pub mod store;
pub mod target;
pub mod triage;
