//! `wsreg-stress`: baseline (b) of the zoo benchmark, a plain tokio multi-thread stress loop over
//! the zoo's bugs. It measures real tokio, so it refuses a `--cfg madsim` build.

use std::path::PathBuf;

use clap::Parser;
use wsreg_sim::measure::stress::{stress_bug, table};
use wsreg_sim::zoo::Bug;

/// Runs each zoo bug's workload in a real tokio stress loop, with end-of-run assertions only.
#[derive(Debug, Parser)]
#[command(name = "wsreg-stress", version)]
struct Args {
    /// Most iterations per bug (each is one generated workload, about 2.5 s of real time).
    #[arg(long, default_value_t = 5)]
    iterations: u32,
    /// Only this bug.
    #[arg(long)]
    bug: Option<Bug>,
    /// Bugs measured at once.
    #[arg(long, default_value_t = 3)]
    jobs: usize,
    /// Also write the rows as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also write the table as JSON into this directory (`stress.json`), for `cargo sim tables`.
    #[arg(long)]
    tables: Option<PathBuf>,
}

fn main() {
    if wsreg_sim::run::runtime::SIMULATED {
        eprintln!("error: wsreg-stress measures real tokio; build it without --cfg madsim (`cargo stress`)");
        std::process::exit(wsreg_sim::check::outcome::Exit::Usage.code());
    }
    let args = Args::parse();
    if args.iterations == 0 || args.jobs == 0 {
        eprintln!("error: --iterations and --jobs must be at least 1");
        std::process::exit(wsreg_sim::check::outcome::Exit::Usage.code());
    }
    let bugs: Vec<Bug> = args.bug.map_or_else(|| Bug::ALL.to_vec(), |b| vec![b]);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let rows = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..args.jobs {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&bug) = bugs.get(i) else { return };
                eprintln!("stress: {bug}");
                match stress_bug(bug, args.iterations) {
                    Ok(row) => rows.lock().expect("rows").push(row),
                    Err(e) => eprintln!("error: {bug}: {e}"),
                }
            });
        }
    });
    let mut rows = rows.into_inner().expect("rows");
    rows.sort_by_key(|r| r.bug);
    let t = table(
        &rows,
        &wsreg_sim::measure::table::invocation("cargo stress"),
    );
    print!("{}", t.markdown());
    if let Some(dir) = &args.tables {
        if let Err(e) = t.write_to(dir) {
            eprintln!("error: {e}");
            std::process::exit(wsreg_sim::check::outcome::Exit::Usage.code());
        }
    }
    if let Some(path) = args.json {
        let text = serde_json::to_string_pretty(&rows).expect("rows serialise");
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("error: writing {}: {e}", path.display());
            std::process::exit(wsreg_sim::check::outcome::Exit::Usage.code());
        }
    }
}
