//! The three-oracle detection table: every zoo bug run under the black-box oracle alone, the
//! white-box oracle alone, and both, over the same seeds; and the real core under each, to count
//! false alarms. It shows what each oracle sees: the black-box one judges any backend from its
//! clients, the white-box one needs the backend's own account (and believes it).

use serde::Serialize;

use crate::generate::config::SimConfig;
use crate::generate::oracle::Oracle;
use crate::generate::seed::SeedRange;
use crate::measure::table::{Column, Table};
use crate::run::runtime::RuntimeError;
use crate::tooling::campaign::{run_campaign, CampaignOptions};
use crate::tooling::target::Target;
use crate::zoo::Bug;

/// The oracles, in the table's column order.
pub const ORACLES: [Oracle; 3] = [Oracle::BlackBox, Oracle::WhiteBox, Oracle::Both];

/// One target under one oracle.
#[derive(Clone, Debug, Serialize)]
pub struct Cell {
    /// Seeds run.
    pub seeds: u64,
    /// Seeds that failed.
    pub failing: u64,
    /// The first failing seed and what caught it.
    pub first: Option<(u64, String)>,
}

/// One target's row: a bug, or the core (`bug: None`).
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// The bug, or `None` for the core.
    pub bug: Option<Bug>,
    /// Black-box only, white-box only, both.
    pub cells: Vec<Cell>,
}

fn cell(target: &Target, oracle: Oracle, seeds: u64, jobs: usize) -> Result<Cell, RuntimeError> {
    let opts = CampaignOptions {
        jobs,
        target: target.clone(),
        config: SimConfig {
            oracle,
            ..SimConfig::default()
        },
        ..CampaignOptions::new(SeedRange {
            start: 0,
            end: seeds,
        })
    };
    let all = run_campaign(&opts, &|_, _, _| {})?.all;
    let failing: Vec<_> = all.iter().filter(|r| !r.outcome.passed()).collect();
    Ok(Cell {
        seeds: all.len() as u64,
        failing: failing.len() as u64,
        first: failing.first().map(|r| (r.seed.0, r.outcome.label())),
    })
}

/// Runs every bug in `bugs` over seeds `0..seeds`, and the core over `0..core_seeds`, under
/// each oracle.
pub fn measure(
    bugs: &[Bug],
    seeds: u64,
    core_seeds: u64,
    jobs: usize,
    progress: &dyn Fn(&str),
) -> Result<Vec<Row>, RuntimeError> {
    let mut rows = Vec::new();
    let targets = std::iter::once((None, core_seeds))
        .filter(|&(_, n)| n > 0)
        .chain(bugs.iter().map(|&b| (Some(b), seeds)));
    for (bug, n) in targets {
        let target = Target::builtin(bug);
        progress(target.name());
        let cells = ORACLES
            .iter()
            .map(|&o| cell(&target, o, n, jobs))
            .collect::<Result<_, _>>()?;
        rows.push(Row { bug, cells });
    }
    Ok(rows)
}

/// The bugs of the first catalogue (B1, B3 to B18), before the stream contract.
fn original(bug: Bug) -> bool {
    bug <= Bug::B18
}

/// The table.
pub fn table(rows: &[Row], command: &str) -> Table {
    let mut columns = vec![Column::text("target"), Column::text("expected")];
    for o in ORACLES {
        columns.push(Column::count(&format!("{}: seeds failing", o.name())));
        columns.push(Column::text("first caught by"));
    }
    let mut t = Table::new("oracles", command, columns);
    for r in rows {
        let mut cells = vec![
            r.bug.map_or("core".to_owned(), |b| b.to_string()),
            r.bug.map_or("none".to_owned(), |b| {
                let e: Vec<String> = b.expected().iter().map(|i| format!("{i:?}")).collect();
                e.join(", ")
            }),
        ];
        for c in &r.cells {
            cells.push(format!("{}/{}", c.failing, c.seeds));
            cells.push(
                c.first
                    .as_ref()
                    .map_or("-".to_owned(), |(seed, label)| format!("{label} ({seed})")),
            );
        }
        t.row(cells);
    }
    let caught = |i: usize, pick: &dyn Fn(Bug) -> bool| {
        let of: Vec<&Row> = rows.iter().filter(|r| r.bug.is_some_and(pick)).collect();
        let n = of.iter().filter(|r| r.cells[i].failing > 0).count();
        (n, of.len())
    };
    for (i, o) in ORACLES.iter().enumerate() {
        let (a, an) = caught(i, &original);
        let (b, bn) = caught(i, &|b| !original(b));
        let who = match o {
            Oracle::Both => "both oracles together".to_owned(),
            o => format!("the {} oracle alone", o.name()),
        };
        t.notes.push(format!(
            "{who}: {a} of the {an} original bugs (B1, B3 to B18) and {b} of the {bn} later ones caught"
        ));
    }
    if let Some(core) = rows.iter().find(|r| r.bug.is_none()) {
        let alarms: Vec<String> = ORACLES
            .iter()
            .zip(&core.cells)
            .map(|(o, c)| format!("{} {} of {}", o.name(), c.failing, c.seeds))
            .collect();
        t.notes.push(format!(
            "false alarms on the real core: {}",
            alarms.join(", ")
        ));
    }
    t
}
