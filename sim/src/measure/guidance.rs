//! What coverage guidance (`cargo sim explore`) buys over fresh seeds alone, run side by side
//! over the same first seeds with the same config: the features the real core reaches in a
//! number of runs (in process, through the network, over many nodes), and, for the bugs the
//! default campaign finds hardest there, how many runs fail and which fails first.

use serde::Serialize;

use crate::generate::config::SimConfig;
use crate::generate::seed::Seed;
use crate::measure::exploration::Scope;
use crate::measure::table::{Column, Table};
use crate::tooling::guided::{explore, GuidedError, GuidedOptions, GuidedSummary};
use crate::tooling::target::{Target, Targets};

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

/// Measures the core over `core_runs` runs in each scope of `hardest`, and each bug named
/// there (the bugs that scope's default finds hardest) over `bug_runs` in its scope.
pub fn measure(
    core_runs: u64,
    hardest: &[(Scope, Vec<String>)],
    bug_runs: u64,
    jobs: usize,
    progress: &dyn Fn(&str),
) -> Result<Vec<Row>, GuidedError> {
    let targets = Targets::builtin();
    let mut rows = Vec::new();
    for (scope, bugs) in hardest {
        let config = scope.config();
        let mode = scope.words();
        progress(&format!("the core, {mode}"));
        let [plain, guided] =
            [false, true].map(|m| campaign(Target::builtin(None), &config, core_runs, jobs, m));
        let (plain, guided) = (plain?, guided?);
        rows.push(Row {
            what: format!("the core, {mode}: features reached in {core_runs} runs"),
            plain: plain.features.to_string(),
            guided: guided.features.to_string(),
        });
        for name in bugs {
            let Ok(target) = targets.get(name) else {
                continue;
            };
            progress(name);
            let [plain, guided] =
                [false, true].map(|m| campaign(target.clone(), &config, bug_runs, jobs, m));
            rows.push(Row {
                what: format!("{name}, {mode}: failing runs"),
                plain: failing(&plain?),
                guided: failing(&guided?),
            });
        }
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
