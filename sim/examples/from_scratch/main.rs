//! A team fuzzing a registry of its own with the whole `wsreg-sim` command line: the registry
//! in `registry.rs` is written from scratch (not on `wsreg::Registry`), registered under two
//! names, and handed to [`wsreg_sim::cli::main_with`]. Every command then knows it: `fuzz`,
//! `run`, `shrink` (snapshots record the name), `replay`, and the determinism check's worker
//! processes, which are this same binary.
//!
//! ```text
//! cargo run --profile sim --config "build.rustflags=['--cfg','madsim']" --target-dir target/madsim \
//!     -p wsreg-sim --example from_scratch -- fuzz --target scratch --seeds 0..1000
//! ... -- fuzz --target scratch-check-then-act --seeds 0..200     # caught, shrunk, snapshotted
//! ... -- replay snapshots/<name>.snap
//! ```

mod registry;

use registry::{Scratch, Variant};
use wsreg_sim::tooling::target::{Target, Targets};

fn main() {
    let targets = Targets::builtin()
        .with(Target::new("scratch", |config, observer| {
            Scratch::new(Variant::Correct, config, observer)
        }))
        .with(Target::new("scratch-check-then-act", |config, observer| {
            Scratch::new(Variant::CheckThenAct, config, observer)
        }));
    std::process::exit(wsreg_sim::cli::main_with(targets));
}
