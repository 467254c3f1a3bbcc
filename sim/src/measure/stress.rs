//! Baseline (b) of the zoo benchmark: the same workload as a plain tokio multi-thread stress
//! loop, the way such tests are usually written. Real time, real threads, no control over the
//! schedule, only end-of-run assertions ([`Keep::EndOfRun`]); it stops at the first failing
//! iteration and then runs that iteration's workload again to see whether the failure comes
//! back. Built only without `--cfg madsim` (`cargo stress`).

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::generate::config::SimConfig;
use crate::generate::plan::Plan;
use crate::generate::seed::Seed;
use crate::measure::table::{Align, Column, Kind, Table};
use crate::run::recorder::Keep;
use crate::run::runtime::RuntimeError;
use crate::run::world::RunReport;
use crate::tooling::campaign::plan_for;
use crate::zoo::Bug;

/// One bug under the stress loop.
#[derive(Clone, Debug, Serialize)]
pub struct StressRow {
    /// The bug.
    pub bug: Bug,
    /// Iterations run.
    pub iterations: u32,
    /// The first failing iteration (1-based), if any.
    pub found_at: Option<u32>,
    /// What the failure was.
    pub label: Option<String>,
    /// Wall seconds until the failure (or for all iterations).
    pub wall_s: f64,
    /// Whether running the failing iteration's workload again failed the same way.
    pub reproduced: Option<bool>,
}

/// Runs `plan` against `B` on a fresh real tokio multi-thread runtime.
pub fn stress_plan(
    factory: crate::run::backend::Factory,
    plan: Arc<Plan>,
    _seed: u64,
    keep: Keep,
) -> Result<RunReport, RuntimeError> {
    #[cfg(not(madsim))]
    {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let black_box = Arc::default();
        Ok(rt.block_on(crate::run::world::execute(factory, plan, keep, black_box)))
    }
    #[cfg(madsim)]
    {
        let _ = (factory, plan, keep);
        Err(RuntimeError::NotSimulated)
    }
}

fn run_once(bug: Bug, iteration: u32) -> Result<RunReport, RuntimeError> {
    let (plan, _) = plan_for(
        &SimConfig::default(),
        Seed(u64::from(iteration)),
        Keep::EndOfRun,
    );
    let plan = Arc::new(plan);
    stress_plan(crate::zoo::factory(bug), plan, 0, Keep::EndOfRun)
}

/// Runs the stress loop for one bug, at most `iterations` times.
pub fn stress_bug(bug: Bug, iterations: u32) -> Result<StressRow, RuntimeError> {
    let started = Instant::now();
    for i in 0..iterations {
        let report = run_once(bug, i)?;
        if !report.outcome.passed() {
            let wall_s = started.elapsed().as_secs_f64();
            let label = report.outcome.label();
            let again = run_once(bug, i)?;
            return Ok(StressRow {
                bug,
                iterations,
                found_at: Some(i + 1),
                reproduced: Some(again.outcome.label() == label),
                label: Some(label),
                wall_s,
            });
        }
    }
    Ok(StressRow {
        bug,
        iterations,
        found_at: None,
        label: None,
        wall_s: started.elapsed().as_secs_f64(),
        reproduced: None,
    })
}

/// The stress table. Its outcomes come from real tokio scheduling, so they are `measured`.
pub fn table(rows: &[StressRow], command: &str) -> Table {
    let mut t = Table::new(
        "stress",
        command,
        vec![
            Column::text("bug"),
            Column::measured("baseline (b): found at iteration"),
            Column::new("failure", Align::Left, Kind::Measured),
            Column::measured("wall s"),
            Column::new("same failure when run again", Align::Left, Kind::Measured),
        ],
    );
    for r in rows {
        t.row(vec![
            r.bug.to_string(),
            r.found_at
                .map_or(format!("not in {}", r.iterations), |i| i.to_string()),
            r.label.clone().unwrap_or_else(|| "-".to_owned()),
            format!("{:.1}", r.wall_s),
            match r.reproduced {
                Some(true) => "yes",
                Some(false) => "no",
                None => "-",
            }
            .to_owned(),
        ]);
    }
    t
}
