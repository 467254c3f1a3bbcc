//! What each way of making things coincide finds through the network: every zoo bug over the
//! same seeds under uniform timing (packet latencies drawn from a range, nothing paused), with
//! one technique at a time, and with all of them (the default network config).
//!
//! - **same instant**: swarm gives a quarter of the seeds one fixed latency, so what is sent
//!   together arrives together;
//! - **pauses**: a server node (or, over many nodes, the store) stops three times a run for up
//!   to 50 ms, mostly just after a client opened tabs, and what reached it meanwhile runs in
//!   one scheduling draw.
//!
//! A cell gives the seeds run to the first failure: the median over ten blocks of the range,
//! each block run only up to its first failure (`>=` when the median block found nothing). The last row is the real core's
//! seeds per second under each technique, summed over one thread's wall time per seed, from
//! the same run: what each technique costs.

use crate::generate::config::NetConfig;
use crate::generate::seed::SeedRange;
use crate::measure::detection::net_campaign;
use crate::measure::table::{Column, Table};
use crate::run::runtime::RuntimeError;
use crate::zoo::Bug;

/// A way of exploring: what it changes in the default network config.
#[derive(Clone, Copy, Debug)]
pub struct Technique {
    /// Its column title.
    pub name: &'static str,
    /// A quarter of the seeds with one fixed latency.
    pub same_instant: bool,
    /// Whether server nodes pause (as many times as the default config says).
    pub pauses: bool,
}

/// Uniform timing, each technique alone, and all together (the default).
pub const TECHNIQUES: [Technique; 4] = [
    Technique {
        name: "uniform",
        same_instant: false,
        pauses: false,
    },
    Technique {
        name: "same instant",
        same_instant: true,
        pauses: false,
    },
    Technique {
        name: "pauses",
        same_instant: false,
        pauses: true,
    },
    Technique {
        name: "all (default)",
        same_instant: true,
        pauses: true,
    },
];

impl Technique {
    /// The network config this technique runs with.
    pub fn net(&self) -> NetConfig {
        let defaults = NetConfig::default();
        NetConfig {
            same_instant: self.same_instant,
            pauses: if self.pauses { defaults.pauses } else { 0 },
            ..defaults
        }
    }
}

/// One technique against one bug.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Cell {
    /// Blocks of the seed range (of [`BLOCKS`]) in which a seed failed.
    pub found_in: u64,
    /// Median over blocks of the seeds run to the first failure.
    pub to_first: f64,
    /// Whether that median block found nothing (counted as its whole length).
    pub censored: bool,
}

/// The seed range is cut into this many blocks.
pub const BLOCKS: u64 = 10;
/// Seeds run at once inside a block, which stops at its first failure.
const CHUNK: u64 = 4;

/// Runs `bug` (or the core) over `0..seeds` cut into [`BLOCKS`] blocks, each only up to its
/// first failure.
fn cell(bug: Option<Bug>, seeds: u64, jobs: usize, net: &NetConfig) -> Result<Cell, RuntimeError> {
    let block = (seeds / BLOCKS).max(1);
    let mut firsts: Vec<(f64, bool)> = Vec::new();
    for b in 0..BLOCKS {
        let (start, end) = (b * block, (b + 1) * block);
        let mut first = None;
        let mut at = start;
        while at < end && first.is_none() {
            let range = SeedRange {
                start: at,
                end: (at + CHUNK).min(end),
            };
            let all = net_campaign(bug, range, jobs, net.clone())?;
            first = all
                .iter()
                .position(|r| !r.outcome.passed())
                .map(|i| at - start + i as u64 + 1);
            at = range.end;
        }
        firsts.push(first.map_or((block as f64, true), |n| (n as f64, false)));
    }
    let found_in = firsts.iter().filter(|f| !f.1).count() as u64;
    // A block that found nothing is ordered after a hit at the same count.
    firsts.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (to_first, censored) = firsts[firsts.len() / 2];
    Ok(Cell {
        found_in,
        to_first,
        censored,
    })
}

/// One bug's row: a cell per technique, in [`TECHNIQUES`] order.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Row {
    /// The bug.
    pub bug: Bug,
    /// Its cells.
    pub cells: Vec<Cell>,
}

/// What [`measure`] found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Exploration {
    /// Seeds per bug and technique (at most: blocks stop at their first failure).
    pub seeds: u64,
    /// A row per bug.
    pub rows: Vec<Row>,
    /// The real core's seeds per second (one thread) under each technique.
    pub core_seeds_per_s: Vec<f64>,
}

/// Runs every bug in `bugs`, and the real core, over seeds `0..seeds` under each technique.
pub fn measure(
    bugs: &[Bug],
    seeds: u64,
    jobs: usize,
    progress: &dyn Fn(&str),
) -> Result<Exploration, RuntimeError> {
    let mut rows = Vec::new();
    for &bug in bugs {
        progress(&bug.to_string());
        let mut cells = Vec::new();
        for t in TECHNIQUES {
            cells.push(cell(Some(bug), seeds, jobs, &t.net())?);
        }
        rows.push(Row { bug, cells });
    }
    progress("the core");
    let mut core_seeds_per_s = Vec::new();
    let range = SeedRange {
        start: 0,
        end: seeds,
    };
    for t in TECHNIQUES {
        let all = net_campaign(None, range, jobs, t.net())?;
        let wall_s = all.iter().map(|r| r.wall_us).sum::<u64>() as f64 / 1e6;
        core_seeds_per_s.push(all.len() as f64 / wall_s.max(1e-9));
    }
    Ok(Exploration {
        seeds,
        rows,
        core_seeds_per_s,
    })
}

/// The table.
pub fn table(e: &Exploration, command: &str) -> Table {
    let mut columns = vec![Column::text("bug")];
    columns.extend(TECHNIQUES.iter().map(|t| Column::measured(t.name)));
    let mut t = Table::new("exploration-net", command, columns);
    // The bugs every technique finds on the first seed of every block say nothing about the
    // techniques: they are named in a note instead of a row each.
    let (first_seed, shown): (Vec<&Row>, Vec<&Row>) = e.rows.iter().partition(|r| {
        r.cells
            .iter()
            .all(|c| c.to_first <= 1.0 && c.found_in == BLOCKS)
    });
    for r in shown {
        let mut cells = vec![r.bug.to_string()];
        cells.extend(r.cells.iter().map(|c| {
            let at_least = if c.censored { ">=" } else { "" };
            format!("{at_least}{} ({}/{BLOCKS})", c.to_first, c.found_in)
        }));
        t.row(cells);
    }
    let mut speed = vec!["the core: seeds/s".to_owned()];
    speed.extend(e.core_seeds_per_s.iter().map(|s| format!("{s:.1}")));
    t.row(speed);
    let caught: Vec<String> = (0..TECHNIQUES.len())
        .map(|i| {
            let n = e.rows.iter().filter(|r| r.cells[i].found_in > 0).count();
            format!("{} {n}", TECHNIQUES[i].name)
        })
        .collect();
    if !first_seed.is_empty() {
        let names: Vec<String> = first_seed.iter().map(|r| r.bug.to_string()).collect();
        t.notes.push(format!(
            "{} fail on the first seed of every block under every technique",
            names.join(", ")
        ));
    }
    t.notes.push(format!(
        "each cell: the seeds run to the first failure, the median over {BLOCKS} blocks of {} seeds (>=: that block found nothing), and in brackets the blocks that found it; bugs caught within {} seeds: {} of {}",
        e.seeds / BLOCKS,
        e.seeds,
        caught.join(", "),
        e.rows.len()
    ));
    t
}
