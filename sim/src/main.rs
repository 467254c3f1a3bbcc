//! The `wsreg-sim` binary: everything lives in the library; this maps it to an exit code.

fn main() {
    if !wsreg_sim::runtime::SIMULATED {
        eprintln!("error: {}", wsreg_sim::runtime::RuntimeError::NotSimulated);
        std::process::exit(wsreg_sim::outcome::EXIT_USAGE);
    }
    std::process::exit(wsreg_sim::cli::main());
}
