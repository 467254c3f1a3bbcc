//! What coverage guidance (`cargo sim explore`) buys over fresh seeds alone, run side by side
//! over the same first seeds with the same config: the features the real core reaches in a
//! number of runs (in process and through the network), and, for the bugs the default campaign
//! finds hardest through the network, how many runs fail and which fails first.

use serde::Serialize;

use crate::generate::config::{NetConfig, SimConfig};
use crate::generate::seed::Seed;
use crate::measure::table::{Column, Table};
use crate::tooling::guided::{explore, GuidedError, GuidedOptions, GuidedSummary};
use crate::tooling::target::Target;
use crate::zoo::Bug;

/// One row: a count under fresh seeds alone, and under guidance.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// What is counted.
    pub what: String,
    /// Fresh seeds only.
    pub plain: String,
    /// Guided.
    pub guided: String,
}

fn campaign(
    target: Target,
    config: &SimConfig,
    runs: u64,
    jobs: usize,
    mutants: bool,
) -> Result<GuidedSummary, GuidedError> {
    let opts = GuidedOptions {
        target,
        config: config.clone(),
        runs,
        first_seed: Seed(0),
        jobs,
        time_budget: None,
        pool: None,
        mutants,
    };
    explore(&opts, &|_, _, _, _| {})
}

fn failing(s: &GuidedSummary) -> String {
    let runs: u64 = s.failures.values().map(|(n, _)| n).sum();
    match s.failures.values().map(|(_, f)| f.run).min() {
        Some(first) => format!("{runs}/{} (first: run {first})", s.runs),
        None => format!("0/{}", s.runs),
    }
}

/// Measures the core over `core_runs` runs per mode, and each of `bugs` over `bug_runs`
/// through the network.
pub fn measure(
    core_runs: u64,
    bugs: &[Bug],
    bug_runs: u64,
    jobs: usize,
    progress: &dyn Fn(&str),
) -> Result<Vec<Row>, GuidedError> {
    let net = SimConfig {
        net: Some(NetConfig::default()),
        ..SimConfig::default()
    };
    let mut rows = Vec::new();
    for (mode, config) in [
        ("in process", SimConfig::default()),
        ("network", net.clone()),
    ] {
        progress(&format!("the core, {mode}"));
        let [plain, guided] =
            [false, true].map(|m| campaign(Target::builtin(None), &config, core_runs, jobs, m));
        let (plain, guided) = (plain?, guided?);
        rows.push(Row {
            what: format!("the core, {mode}: features reached in {core_runs} runs"),
            plain: plain.features.to_string(),
            guided: guided.features.to_string(),
        });
    }
    for &bug in bugs {
        progress(&bug.to_string());
        let [plain, guided] =
            [false, true].map(|m| campaign(Target::builtin(Some(bug)), &net, bug_runs, jobs, m));
        rows.push(Row {
            what: format!("{bug}, network: failing runs"),
            plain: failing(&plain?),
            guided: failing(&guided?),
        });
    }
    Ok(rows)
}

/// The table.
pub fn table(rows: &[Row], command: &str) -> Table {
    let mut t = Table::new(
        "exploration-guided",
        command,
        vec![
            Column::text("what"),
            Column::measured("fresh seeds only"),
            Column::measured("guided"),
        ],
    );
    for r in rows {
        t.row(vec![r.what.clone(), r.plain.clone(), r.guided.clone()]);
    }
    t.notes.push(
        "both from seed 0 with the default config; guided runs a fresh seed half the time and otherwise a mutant of a kept plan, the best of three drawn by rare features"
            .to_owned(),
    );
    t
}
