//! The `wsreg-sim` binary: everything lives in the library; this maps it to an exit code.

/// glibc's allocator slows down as the heap grows (at 10,000 users most of the core's time went
/// to malloc consolidation); mimalloc keeps steps/s nearly flat as users grow.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    if !wsreg_sim::run::runtime::SIMULATED {
        eprintln!(
            "error: {}",
            wsreg_sim::run::runtime::RuntimeError::NotSimulated
        );
        std::process::exit(wsreg_sim::check::outcome::Exit::Usage.code());
    }
    // Started by a campaign to run one seed in a fresh process, `main` does that and exits.
    std::process::exit(wsreg_sim::cli::main());
}
