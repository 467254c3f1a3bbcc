//! The gateway under wsreg-sim: both variants registered by name, and the whole command line
//! (`fuzz`, `run`, `shrink`, `replay`...) handed to them. Run it as `cargo sim ...` (the alias
//! in .cargo/config.toml builds it with the madsim cfg).

#[cfg(madsim)]
fn main() {
    use team_gateway::{Gateway, Release};
    use wsreg_sim::tooling::target::{Target, Targets};

    let targets = Targets::builtin()
        .with(Target::new("gateway", |config, observer| {
            Gateway::new(Release::Always, config, observer)
        }))
        .with(Target::new("gateway-leaky", |config, observer| {
            Gateway::new(Release::OnlyIfClosed, config, observer)
        }));
    std::process::exit(wsreg_sim::cli::main_with(targets));
}

#[cfg(not(madsim))]
fn main() {
    eprintln!("the fuzzer runs in the simulator: `cargo sim fuzz --target gateway` (the alias builds it with --cfg madsim)");
    std::process::exit(2);
}
