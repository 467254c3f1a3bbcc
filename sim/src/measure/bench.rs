//! `wsreg-sim bench`: throughput measured side by side in one run, so the ratios hold on a
//! noisy shared machine. Every row runs on one worker thread, and the rows are measured in
//! alternating rounds; each figure is the median of the rounds.
//!
//! Rows: the harness with every check on, the same seeds on bare madsim (no observer, no
//! checker, no trace), the harness at 10 and at 10,000 users per seed, the default config
//! through the real WebSocket server over the simulated network (`--net`), and the bare core on
//! madsim (the workload of `cargo bench --bench core`, which measures it on real tokio).

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::generate::config::{NetConfig, SimConfig};
use crate::generate::seed::SeedRange;
use crate::measure::table::{Column, Table};
use crate::run::recorder::Keep;
use crate::run::runtime::RuntimeError;
use crate::tooling::campaign::{run_campaign, CampaignOptions};

#[path = "core_workload.rs"]
mod core_workload;

/// One measured row.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// What ran.
    pub name: String,
    /// Users per seed.
    pub users: usize,
    /// Seeds per round (0 for the bare core).
    pub seeds: u64,
    /// Steps (or core operations) per round.
    pub steps: u64,
    /// Median wall seconds per round.
    pub wall_s: f64,
    /// Steps (or operations) per wall second.
    pub steps_per_s: f64,
    /// Seeds per wall second.
    pub seeds_per_s: f64,
}

/// The ratios the targets are stated in.
#[derive(Clone, Debug, Serialize)]
pub struct Ratios {
    /// Harness steps/s over bare-madsim steps/s on the same seeds (target ≥ 0.5).
    pub checked_over_bare: f64,
    /// Harness steps/s at 10,000 users over steps/s at 10 users (target ≥ 0.5).
    pub users_10k_over_10: f64,
    /// Seeds/s through the network over seeds/s in process, default config.
    pub net_over_in_process: f64,
}

/// The whole benchmark.
#[derive(Clone, Debug, Serialize)]
pub struct Bench {
    /// Rows.
    pub rows: Vec<Row>,
    /// Ratios.
    pub ratios: Ratios,
    /// Rounds each row was measured.
    pub rounds: usize,
}

struct Case {
    name: &'static str,
    config: SimConfig,
    seeds: u64,
    checks: bool,
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn campaign(case: &Case) -> Result<(u64, Duration), RuntimeError> {
    let opts = CampaignOptions {
        jobs: 1,
        config: case.config.clone(),
        keep: if case.checks {
            Keep::Tail(1)
        } else {
            Keep::Nothing
        },
        ..CampaignOptions::new(SeedRange {
            start: 0,
            end: case.seeds,
        })
    };
    let t = Instant::now();
    let s = run_campaign(&opts, &|_, _, _| {})?;
    Ok((s.steps, t.elapsed()))
}

fn bare_core(users: usize, rounds: usize) -> Result<(u64, Duration), RuntimeError> {
    #[cfg(madsim)]
    {
        let t = Instant::now();
        let ops = std::thread::spawn(move || {
            let rt = madsim::runtime::Runtime::with_seed_and_config(1, madsim::Config::default());
            rt.block_on(core_workload::workload(users, rounds))
        })
        .join()
        .map_err(|_| RuntimeError::NotSimulated)?;
        Ok((ops, t.elapsed()))
    }
    #[cfg(not(madsim))]
    {
        let _ = (users, rounds, core_workload::workload);
        Err(RuntimeError::NotSimulated)
    }
}

/// Runs every row `rounds` times, alternating, and reports medians.
pub fn run(rounds: usize, scale: u64) -> Result<Bench, RuntimeError> {
    let scaled = |users: usize, ops: usize| SimConfig {
        users,
        ops,
        swarm: false,
        ..SimConfig::default()
    };
    let cases = [
        Case {
            name: "harness, all checks (default config)",
            config: SimConfig::default(),
            seeds: 100 * scale,
            checks: true,
        },
        Case {
            name: "bare madsim, no checks (same seeds)",
            config: SimConfig::default(),
            seeds: 100 * scale,
            checks: false,
        },
        Case {
            name: "harness, all checks, 10 users/seed",
            config: scaled(10, 80),
            seeds: 400 * scale,
            checks: true,
        },
        Case {
            name: "harness, all checks, 10,000 users/seed",
            config: scaled(10_000, 80_000),
            seeds: scale,
            checks: true,
        },
        Case {
            name: "harness, all checks, through the WebSocket server (--net)",
            config: SimConfig {
                net: Some(NetConfig::default()),
                ..SimConfig::default()
            },
            seeds: 20 * scale,
            checks: true,
        },
    ];
    let mut walls: Vec<Vec<Duration>> = vec![Vec::new(); cases.len() + 2];
    let mut steps = vec![0u64; cases.len() + 2];
    let core_rounds = [
        (10usize, 2_000usize * scale as usize),
        (10_000, 2 * scale as usize),
    ];
    for _ in 0..rounds.max(1) {
        for (i, case) in cases.iter().enumerate() {
            let (s, w) = campaign(case)?;
            steps[i] = s;
            walls[i].push(w);
        }
        for (j, (users, r)) in core_rounds.iter().enumerate() {
            let (ops, w) = bare_core(*users, *r)?;
            steps[cases.len() + j] = ops;
            walls[cases.len() + j].push(w);
        }
    }
    // The bare run counts only client steps; its workload is the checked run's.
    steps[1] = steps[0];
    let mut rows = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let wall = median(walls[i].clone()).as_secs_f64().max(1e-9);
        rows.push(Row {
            name: case.name.to_owned(),
            users: case.config.users,
            seeds: case.seeds,
            steps: steps[i],
            wall_s: wall,
            steps_per_s: steps[i] as f64 / wall,
            seeds_per_s: case.seeds as f64 / wall,
        });
    }
    for (j, (users, _)) in core_rounds.iter().enumerate() {
        let i = cases.len() + j;
        let wall = median(walls[i].clone()).as_secs_f64().max(1e-9);
        rows.push(Row {
            name: "bare core on madsim (ops, not steps)".to_owned(),
            users: *users,
            seeds: 0,
            steps: steps[i],
            wall_s: wall,
            steps_per_s: steps[i] as f64 / wall,
            seeds_per_s: 0.0,
        });
    }
    let ratios = Ratios {
        checked_over_bare: rows[0].steps_per_s / rows[1].steps_per_s,
        users_10k_over_10: rows[3].steps_per_s / rows[2].steps_per_s,
        net_over_in_process: rows[4].seeds_per_s / rows[0].seeds_per_s,
    };
    Ok(Bench {
        rows,
        ratios,
        rounds,
    })
}

/// The benchmark as a table: one row per run, the ratios as notes.
pub fn table(b: &Bench, command: &str) -> Table {
    let mut t = Table::new(
        "throughput",
        command,
        vec![
            Column::text("run"),
            Column::count("users/seed"),
            Column::count("seeds"),
            Column::count("steps"),
            Column::measured("wall s (median)"),
            Column::measured("steps/s"),
            Column::measured("seeds/s"),
        ],
    );
    for r in &b.rows {
        t.row(vec![
            r.name.clone(),
            r.users.to_string(),
            r.seeds.to_string(),
            r.steps.to_string(),
            format!("{:.3}", r.wall_s),
            format!("{:.0}", r.steps_per_s),
            format!("{:.1}", r.seeds_per_s),
        ]);
    }
    t.notes.push(format!(
        "checked / bare madsim: {:.2} (target >= 0.5); 10,000 users / 10 users: {:.2} (target >= 0.5); seeds/s through the network / in process: {:.3}; {} rounds, one worker thread",
        b.ratios.checked_over_bare, b.ratios.users_10k_over_10, b.ratios.net_over_in_process, b.rounds
    ));
    t
}
