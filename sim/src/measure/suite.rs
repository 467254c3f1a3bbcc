//! `bench`: every measurement table in order (throughput, the zoo in process and through the
//! network, the three oracles), each printed whole as soon as it is measured, and kept as JSON
//! for the README's tables.

use std::path::PathBuf;

use crate::check::outcome::Exit;
use crate::measure::table::{Table, TableError};
use crate::run::runtime::RuntimeError;
use crate::zoo::Bug;

/// What `bench` measures.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Rounds per throughput row (0 skips the throughput rows).
    pub rounds: usize,
    /// Work per round, as a multiple of the default.
    pub scale: u64,
    /// Seeds per zoo bug in process (0 skips the zoo table).
    pub zoo_seeds: u64,
    /// Seeds per zoo bug through the network (0 skips).
    pub net_seeds: u64,
    /// Seeds per bug and exploration technique in each scope (0 skips).
    pub explore_seeds: u64,
    /// Runs of the core per mode, fresh seeds only and guided, for the guidance table (0
    /// skips it; it also needs `explore_seeds`, which picks its bugs and their runs).
    pub guided_runs: u64,
    /// Seeds per bug of many nodes, and of the core over many nodes (0 skips that table).
    pub node_seeds: u64,
    /// Seeds per zoo bug and oracle (0 skips the three-oracle table).
    pub oracle_seeds: u64,
    /// Seeds of the real core per oracle, for the false-alarm row.
    pub false_alarm_seeds: u64,
    /// Only this zoo bug (and no throughput rows nor false alarms).
    pub bug: Option<Bug>,
    /// Where each table's JSON goes.
    pub tables: Option<PathBuf>,
    /// Where all results go as one JSON file.
    pub json: Option<PathBuf>,
    /// The command the tables say printed them.
    pub command: String,
}

/// Why `bench` could not measure.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Out of range.
    #[error("--rounds must be 0 to 50 and --scale 1 to 100")]
    Range,
    /// A run could not run.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// A guided campaign could not run.
    #[error(transparent)]
    Guided(#[from] crate::tooling::guided::GuidedError),
    /// A table could not be written.
    #[error(transparent)]
    Table(#[from] TableError),
    /// The JSON could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Prints a table after the ones before it, and keeps it for `--tables`.
fn show(printed: &mut Vec<Table>, table: Table) {
    if !printed.is_empty() {
        println!();
    }
    print!("{}", table.markdown());
    printed.push(table);
}

/// Measures and prints every table `o` asks for; fails (exit 1) when a zoo bug was not caught
/// as expected, or the core failed over many nodes.
pub fn run(o: &BenchOptions) -> Result<Exit, BenchError> {
    if o.rounds > 50 || o.scale == 0 || o.scale > 100 {
        return Err(BenchError::Range);
    }
    let throughput = match (o.bug, o.rounds) {
        (Some(_), _) | (None, 0) => None,
        (None, rounds) => Some(crate::measure::bench::run(rounds, o.scale)?),
    };
    let command = &o.command;
    let mut printed = Vec::new();
    if let Some(b) = &throughput {
        show(&mut printed, crate::measure::bench::table(b, command));
    }
    let bugs: Vec<Bug> = o.bug.map_or_else(|| Bug::ALL.to_vec(), |b| vec![b]);
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    let zoo = if o.zoo_seeds == 0 {
        Vec::new()
    } else {
        let progress = |bug: Bug| eprintln!("zoo: measuring {bug}");
        crate::measure::detection::measure(&bugs, o.zoo_seeds, jobs, &progress)?
    };
    if !zoo.is_empty() {
        show(
            &mut printed,
            crate::measure::detection::table(&zoo, command),
        );
    }
    let net_zoo = if o.net_seeds == 0 {
        Vec::new()
    } else {
        let progress = |bug: Bug| eprintln!("zoo through the network: measuring {bug}");
        crate::measure::detection::measure_net(&bugs, o.net_seeds, jobs, &progress)?
    };
    if !net_zoo.is_empty() {
        show(
            &mut printed,
            crate::measure::detection::table_net(&net_zoo, command),
        );
    }
    if o.explore_seeds > 0 {
        use crate::measure::exploration::{hardest_by_default, measure, table, Scope};
        // Per scope, the bugs its default finds hardest: the guidance table runs them.
        let mut hardest = Vec::new();
        for scope in [Scope::InProcess, Scope::Network, Scope::Nodes] {
            // The bugs of many nodes are not the zoo's: one zoo bug asked for skips them.
            if scope == Scope::Nodes && o.bug.is_some() {
                continue;
            }
            let progress = |t: &str| eprintln!("{}: measuring {t}", scope.table_name());
            let e = measure(scope, &bugs, o.explore_seeds, jobs, &progress)?;
            show(&mut printed, table(&e, command));
            hardest.push((scope, hardest_by_default(&e)));
        }
        if o.guided_runs > 0 {
            let progress = |t: &str| eprintln!("exploration-guided: measuring {t}");
            let rows = crate::measure::guidance::measure(
                o.guided_runs,
                &hardest,
                o.explore_seeds,
                jobs,
                &progress,
            )?;
            show(
                &mut printed,
                crate::measure::guidance::table(&rows, command),
            );
        }
    }
    let nodes = if o.node_seeds == 0 || o.bug.is_some() {
        Vec::new()
    } else {
        let progress = |t: &str| eprintln!("zoo of many nodes: measuring {t}");
        crate::measure::nodes::measure(o.node_seeds, jobs, &progress)?
    };
    if !nodes.is_empty() {
        show(&mut printed, crate::measure::nodes::table(&nodes, command));
    }
    let oracles = if o.oracle_seeds == 0 {
        Vec::new()
    } else {
        let progress = |t: &str| eprintln!("oracles: measuring {t}");
        let core = if o.bug.is_some() {
            0
        } else {
            o.false_alarm_seeds
        };
        crate::measure::oracles::measure(&bugs, o.oracle_seeds, core, jobs, &progress)?
    };
    if !oracles.is_empty() {
        show(
            &mut printed,
            crate::measure::oracles::table(&oracles, command),
        );
    }
    if let Some(dir) = &o.tables {
        for t in &printed {
            t.write_to(dir)?;
        }
    }
    if let Some(path) = &o.json {
        let all = serde_json::json!({
            "throughput": throughput,
            "zoo": zoo,
            "net_zoo": net_zoo,
            "nodes": nodes,
            "oracles": oracles,
        });
        let text = serde_json::to_string_pretty(&all).expect("bench results serialise");
        std::fs::write(path, text).map_err(|source| BenchError::Write {
            path: path.display().to_string(),
            source,
        })?;
    }
    let missed = zoo.iter().filter(|r| !r.caught_as_expected).count();
    Ok(
        if missed == 0 && crate::measure::nodes::as_expected(&nodes) {
            Exit::Pass
        } else {
            Exit::Violation
        },
    )
}
