//! What each way of exploring finds: every planted bug over the same seeds under the baseline
//! (uniform timing, buggify at every site), with one technique at a time, and with the default
//! campaign (every technique but per-site buggify, which found nothing sooner), in process,
//! through the network and over many nodes. The default is each table's last column.
//!
//! - **per-site buggify**: each seed switches on only some of buggify's sites;
//! - **same instant**: swarm gives a quarter of the seeds one fixed latency, so what is sent
//!   together arrives together;
//! - **pauses**: a server node (or, over many nodes, the store) stops three times a run for up
//!   to 50 ms, mostly just after a client opened tabs, and what reached it meanwhile runs in
//!   one scheduling draw;
//! - **short history**: swarm gives half the seeds a history of 2 to 8 messages, so trims and
//!   gap markers meet resumes all the time.
//!
//! A cell gives the seeds run per failing seed: seeds are run from the first of the range
//! until [`FAILURES`] have failed (or the range is spent), so an easy bug costs a few seeds and
//! a hard one the whole range. The last row is the real core's seeds per second under each
//! technique, summed over one thread's wall time per seed: what each technique costs.

use serde::Serialize;

use crate::generate::config::{NetConfig, SimConfig};
use crate::generate::seed::SeedRange;
use crate::measure::detection::quiet_campaign;
use crate::measure::table::{Column, Table};
use crate::run::runtime::RuntimeError;
use crate::tooling::target::Target;
use crate::zoo::nodes::NodeBug;
use crate::zoo::Bug;

/// Where the bugs run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Scope {
    /// In-process calls.
    InProcess,
    /// Through the server over the simulated network.
    Network,
    /// Over three server nodes and the simulated store, with every store fault.
    Nodes,
}

impl Scope {
    /// The table's name.
    pub fn table_name(self) -> &'static str {
        match self {
            Scope::InProcess => "exploration-in-process",
            Scope::Network => "exploration-net",
            Scope::Nodes => "exploration-nodes",
        }
    }

    /// The scope in a few words, for a row.
    pub fn words(self) -> &'static str {
        match self {
            Scope::InProcess => "in process",
            Scope::Network => "network",
            Scope::Nodes => "three nodes",
        }
    }

    /// The default campaign config of this scope.
    pub fn config(self) -> SimConfig {
        match self {
            Scope::InProcess => SimConfig::default(),
            Scope::Network => SimConfig {
                net: Some(NetConfig::default()),
                ..SimConfig::default()
            },
            Scope::Nodes => crate::measure::nodes::config(),
        }
    }

    /// The techniques compared in this scope: only buggify's apply in process.
    pub fn techniques(self) -> &'static [Technique] {
        match self {
            Scope::InProcess => &IN_PROCESS,
            Scope::Network | Scope::Nodes => &THROUGH_SERVER,
        }
    }
}

/// A way of exploring: which of the techniques it switches on.
#[derive(Clone, Copy, Debug)]
pub struct Technique {
    /// Its column title.
    pub name: &'static str,
    /// Buggify at all (off: madsim's plain scheduling).
    pub buggify: bool,
    /// Buggify at the sites each seed switches on, instead of everywhere.
    pub sites: bool,
    /// A quarter of the seeds with one fixed latency.
    pub same_instant: bool,
    /// Whether server nodes pause (as many times as the default config says).
    pub pauses: bool,
    /// Half the seeds with a short history.
    pub short_history: bool,
    /// Some seeds with a short server connect timeout.
    pub connect_deadlines: bool,
}

const BASELINE: Technique = Technique {
    name: "baseline",
    buggify: true,
    sites: false,
    same_instant: false,
    pauses: false,
    short_history: false,
    connect_deadlines: false,
};

const IN_PROCESS: [Technique; 3] = [
    Technique {
        name: "no buggify",
        buggify: false,
        ..BASELINE
    },
    Technique {
        name: "per-site buggify",
        sites: true,
        ..BASELINE
    },
    Technique {
        name: "buggify everywhere (default)",
        ..BASELINE
    },
];

const THROUGH_SERVER: [Technique; 7] = [
    BASELINE,
    Technique {
        name: "per-site buggify",
        sites: true,
        ..BASELINE
    },
    Technique {
        name: "same instant",
        same_instant: true,
        ..BASELINE
    },
    Technique {
        name: "pauses",
        pauses: true,
        ..BASELINE
    },
    Technique {
        name: "short history",
        short_history: true,
        ..BASELINE
    },
    Technique {
        name: "connect deadline",
        connect_deadlines: true,
        ..BASELINE
    },
    Technique {
        name: "default",
        buggify: true,
        sites: false,
        same_instant: true,
        pauses: true,
        short_history: true,
        connect_deadlines: true,
    },
];

impl Technique {
    /// The campaign config this technique runs with in `scope`.
    pub fn config(&self, scope: Scope) -> SimConfig {
        let mut c = scope.config();
        c.faults.buggify = self.buggify;
        c.faults.buggify_sites = self.sites;
        if let Some(net) = &mut c.net {
            net.same_instant = self.same_instant;
            net.short_history = self.short_history;
            net.connect_deadlines = self.connect_deadlines;
            if !self.pauses {
                net.pauses = 0;
            }
        }
        c
    }
}

/// One technique against one bug.
#[derive(Clone, Debug, Serialize)]
pub struct Cell {
    /// Seeds run.
    pub run: u64,
    /// Of them, seeds that failed.
    pub failed: u64,
}

impl Cell {
    /// Seeds run per failing seed (the range's length when none failed: a lower bound).
    pub fn per_failure(&self) -> f64 {
        self.run as f64 / self.failed.max(1) as f64
    }
}

/// A cell stops once this many seeds have failed.
pub const FAILURES: u64 = 10;

/// Runs `target` over `0..seeds` until [`FAILURES`] seeds have failed.
fn cell(
    target: &Target,
    seeds: u64,
    jobs: usize,
    config: &SimConfig,
) -> Result<Cell, RuntimeError> {
    // Chunks of a few seeds per worker, so that an easy bug stops soon after its tenth failure.
    let chunk = 2 * jobs.max(1) as u64;
    let mut c = Cell { run: 0, failed: 0 };
    while c.run < seeds && c.failed < FAILURES {
        let range = SeedRange {
            start: c.run,
            end: (c.run + chunk).min(seeds),
        };
        let all = quiet_campaign(target, range, jobs, config.clone())?;
        // Counted in seed order up to the tenth failure, so the count does not hang on how
        // many workers ran the chunk.
        for r in &all {
            if c.failed == FAILURES {
                break;
            }
            c.run += 1;
            c.failed += u64::from(!r.outcome.passed());
        }
    }
    Ok(c)
}

/// One bug's row: a cell per technique, in the scope's order.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// The bug.
    pub bug: String,
    /// Its cells.
    pub cells: Vec<Cell>,
}

/// What [`measure`] found.
#[derive(Clone, Debug, Serialize)]
pub struct Exploration {
    /// Where the bugs ran.
    pub scope: Scope,
    /// Seeds per bug and technique, at most.
    pub seeds: u64,
    /// A row per bug.
    pub rows: Vec<Row>,
    /// The real core's seeds per second (one thread) under each technique.
    pub core_seeds_per_s: Vec<f64>,
}

/// The bugs of a scope: the zoo's (of `bugs`) in process and through the network, the bugs
/// of many nodes over many nodes.
fn targets(scope: Scope, bugs: &[Bug]) -> Vec<(String, Target)> {
    match scope {
        Scope::Nodes => NodeBug::ALL
            .into_iter()
            .map(|b| (b.to_string(), Target::node_bug(b)))
            .collect(),
        _ => bugs
            .iter()
            .map(|&b| (b.to_string(), Target::builtin(Some(b))))
            .collect(),
    }
}

/// Runs every bug of the scope, and the real core, over seeds `0..seeds` under each
/// technique of the scope.
pub fn measure(
    scope: Scope,
    bugs: &[Bug],
    seeds: u64,
    jobs: usize,
    progress: &dyn Fn(&str),
) -> Result<Exploration, RuntimeError> {
    let mut rows = Vec::new();
    for (bug, target) in targets(scope, bugs) {
        progress(&bug);
        let mut cells = Vec::new();
        for t in scope.techniques() {
            cells.push(cell(&target, seeds, jobs, &t.config(scope))?);
        }
        rows.push(Row { bug, cells });
    }
    progress("the core");
    let mut core_seeds_per_s = Vec::new();
    let range = SeedRange {
        start: 0,
        end: seeds,
    };
    for t in scope.techniques() {
        let all = quiet_campaign(&Target::builtin(None), range, jobs, t.config(scope))?;
        let wall_s = all.iter().map(|r| r.wall_us).sum::<u64>() as f64 / 1e6;
        core_seeds_per_s.push(all.len() as f64 / wall_s.max(1e-9));
    }
    Ok(Exploration {
        scope,
        seeds,
        rows,
        core_seeds_per_s,
    })
}

/// A bug that needs at most this many seeds per failure under every technique gets no row.
const NEARLY_EVERY_SEED: f64 = 1.2;

/// How many of the hardest bugs (under the first technique) the speed-up note names.
const HARDEST: usize = 5;

/// The bugs of `e` the default (its last technique) finds hardest, by name, at most
/// [`HARDEST`]: most seeds per failure first, those it never found before all; none that it
/// found on every seed.
pub fn hardest_by_default(e: &Exploration) -> Vec<String> {
    let last = e.scope.techniques().len() - 1;
    hardest(e, last).map(|r| r.bug.clone()).collect()
}

/// The [`HARDEST`] rows of `e` by technique `t`: those it never found first, then most seeds
/// per failure; none that it found on every seed run.
fn hardest(e: &Exploration, t: usize) -> impl Iterator<Item = &Row> {
    let mut rows: Vec<&Row> = e
        .rows
        .iter()
        .filter(|r| r.cells[t].run > r.cells[t].failed)
        .collect();
    rows.sort_by(|a, b| {
        let key = |r: &Row| (r.cells[t].failed == 0, r.cells[t].per_failure());
        key(b)
            .partial_cmp(&key(a))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    rows.into_iter().take(HARDEST)
}

fn shown(c: &Cell) -> String {
    if c.failed == 0 {
        format!(">{} (0/{})", c.run, c.run)
    } else {
        format!("{:.1} ({}/{})", c.per_failure(), c.failed, c.run)
    }
}

/// The table.
pub fn table(e: &Exploration, command: &str) -> Table {
    let techniques = e.scope.techniques();
    let mut columns = vec![Column::text("bug")];
    columns.extend(techniques.iter().map(|t| Column::measured(t.name)));
    let mut t = Table::new(e.scope.table_name(), command, columns);
    // The bugs every technique finds on (nearly) every seed say nothing about the techniques:
    // they are named in a note instead of a row each.
    let (every_seed, rows): (Vec<&Row>, Vec<&Row>) = e.rows.iter().partition(|r| {
        r.cells
            .iter()
            .all(|c| c.failed > 0 && c.per_failure() <= NEARLY_EVERY_SEED)
    });
    for r in &rows {
        let mut cells = vec![r.bug.clone()];
        cells.extend(r.cells.iter().map(shown));
        t.row(cells);
    }
    let mut speed = vec!["the core: seeds/s".to_owned()];
    speed.extend(e.core_seeds_per_s.iter().map(|s| format!("{s:.1}")));
    t.row(speed);
    if !every_seed.is_empty() {
        let names: Vec<&str> = every_seed.iter().map(|r| r.bug.as_str()).collect();
        t.notes.push(format!(
            "{} fail on nearly every seed (at most {NEARLY_EVERY_SEED} seeds per failure) under every technique",
            names.join(", ")
        ));
    }
    t.notes.push(format!(
        "each cell: seeds run per failing seed, from seed 0 until {FAILURES} failed or {} were run (>: none failed), and in brackets the failing seeds of those run",
        e.seeds
    ));
    let last = techniques.len() - 1;
    let caught: Vec<String> = techniques
        .iter()
        .enumerate()
        .map(|(i, tech)| {
            let n = e.rows.iter().filter(|r| r.cells[i].failed > 0).count();
            format!("{} {n}", tech.name)
        })
        .collect();
    t.notes.push(format!(
        "bugs caught within {} seeds: {} of {}",
        e.seeds,
        caught.join(", "),
        e.rows.len()
    ));
    let speed_ups = speed_ups(e);
    if !speed_ups.is_empty() {
        t.notes.push(format!(
            "the {} hardest under the {}, found this much sooner by {}: {}",
            speed_ups.len(),
            techniques[0].name,
            techniques[last].name,
            speed_ups.join(", ")
        ));
    }
    t
}

/// For the [`HARDEST`] bugs by seeds per failure under the first technique: how many times
/// fewer seeds per failure the last (the default) needs (`>=` when the first found none).
fn speed_ups(e: &Exploration) -> Vec<String> {
    let last = e.scope.techniques().len() - 1;
    hardest(e, 0)
        .map(|r| {
            let (first, all) = (&r.cells[0], &r.cells[last]);
            let at_least = if first.failed == 0 { ">=" } else { "" };
            if all.failed == 0 {
                format!("{} not found", r.bug)
            } else {
                let x = first.per_failure() / all.per_failure();
                format!("{} {at_least}{x:.1}x", r.bug)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(bug: &str, cells: &[(u64, u64)]) -> Row {
        Row {
            bug: bug.into(),
            cells: cells
                .iter()
                .map(|&(run, failed)| Cell { run, failed })
                .collect(),
        }
    }

    #[test]
    fn the_speed_up_note_ranks_the_bugs_the_baseline_finds_hardest() {
        // The baseline, then every other technique of the network scope alike.
        let columns = THROUGH_SERVER.len();
        let cells = |a: (u64, u64), b: (u64, u64)| {
            let mut cells = vec![b; columns];
            cells[0] = a;
            cells
        };
        let e = Exploration {
            scope: Scope::Network,
            seeds: 200,
            rows: vec![
                row("B1", &cells((10, 10), (10, 10))),
                row("B3", &cells((200, 0), (20, 10))),
                row("B4", &cells((40, 10), (20, 10))),
                row("B5", &cells((200, 0), (200, 0))),
                row("B6", &cells((100, 10), (10, 10))),
            ],
            core_seeds_per_s: vec![1.0; columns],
        };
        assert_eq!(
            speed_ups(&e),
            ["B3 >=100.0x", "B5 not found", "B6 10.0x", "B4 2.0x"]
        );
        let t = table(&e, "cargo sim bench");
        assert!(t.notes[0].starts_with("B1 fail on nearly every seed"));
        assert!(t.notes[2].contains("baseline 3, per-site buggify 4,"));
        assert!(t.notes[3].contains("by default: B3 >=100.0x"));
    }
}
