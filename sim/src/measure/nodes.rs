//! The zoo of many nodes: each planted cross-node bug, and the core beside them, over three
//! server nodes and the simulated store with every node and store fault the campaign draws
//! (`cargo sim fuzz --net --nodes 3`), judged by the default oracles; the first failure of
//! each bug is shrunk.

use serde::Serialize;

use crate::generate::config::{NetConfig, SimConfig};
use crate::generate::seed::SeedRange;
use crate::measure::table::{Column, Table};
use crate::run::recorder::Keep;
use crate::run::runtime::RuntimeError;
use crate::tooling::campaign::{derive, run_campaign, CampaignOptions};
use crate::tooling::shrink::{shrink, ShrinkOptions};
use crate::tooling::target::Target;
use crate::zoo::nodes::NodeBug;

/// Server nodes the table runs over.
pub const NODES: u32 = 3;

/// One row: a planted bug of many nodes, or the core (`bug: None`).
#[derive(Clone, Debug, Serialize)]
pub struct NodeRow {
    /// The bug (`None`: the core, where every failure is a false alarm or a real bug).
    pub bug: Option<NodeBug>,
    /// The invariants expected to catch it.
    pub expected: Vec<String>,
    /// Seeds run.
    pub seeds: u64,
    /// Seeds that failed.
    pub failing: u64,
    /// Failing seeds by what caught them, most first.
    pub by: Vec<(String, u64)>,
    /// The first failing seed.
    pub first: Option<u64>,
    /// Whether every failing seed was caught by an expected invariant.
    pub all_as_expected: bool,
    /// Ops before and after shrinking the first failure.
    pub shrunk_ops: Option<(usize, usize)>,
}

/// The campaign config of the table: the default one over `NODES` nodes with every store
/// fault once (per-seed swarm on top), as `--net --nodes 3` sets it.
pub fn config() -> SimConfig {
    let mut net = NetConfig {
        nodes: NODES,
        ..NetConfig::default()
    };
    net.every_store_fault();
    SimConfig {
        net: Some(net),
        ..SimConfig::default()
    }
}

/// Runs the core and every bug of many nodes over seeds `0..seeds`.
pub fn measure(
    seeds: u64,
    jobs: usize,
    progress: &dyn Fn(&str),
) -> Result<Vec<NodeRow>, RuntimeError> {
    let mut rows = Vec::new();
    let targets = std::iter::once(None).chain(NodeBug::ALL.into_iter().map(Some));
    for bug in targets {
        let target = bug.map_or_else(|| Target::builtin(None), Target::node_bug);
        progress(&bug.map_or_else(|| "the core".to_owned(), |b| b.to_string()));
        let opts = CampaignOptions {
            jobs,
            target: target.clone(),
            keep: Keep::Tail(1),
            config: config(),
            ..CampaignOptions::new(SeedRange {
                start: 0,
                end: seeds,
            })
        };
        let all = run_campaign(&opts, &|_, _, _| {})?.all;
        let failing: Vec<_> = all.iter().filter(|r| !r.outcome.passed()).collect();
        let by = crate::measure::detection::failing_by_label(&all);
        let expected: Vec<String> = bug
            .map(|b| b.expected().iter().map(|i| format!("{i:?}")).collect())
            .unwrap_or_default();
        let as_expected = |label: &str| bug.is_some_and(|b| b.caught_as_expected(label));
        let mut shrunk_ops = None;
        if let (Some(_), Some(first)) = (bug, failing.first()) {
            let (_, plan, runtime_seed) = derive(&config(), first.seed);
            let before = plan.ops.len();
            let label = first.outcome.label();
            let s = shrink(
                &target,
                plan,
                runtime_seed,
                &label,
                ShrinkOptions::default(),
                &|_, _| {},
            )?;
            shrunk_ops = Some((before, s.plan.ops.len()));
        }
        rows.push(NodeRow {
            bug,
            all_as_expected: failing.iter().all(|r| as_expected(&r.outcome.label())),
            expected,
            seeds: all.len() as u64,
            failing: failing.len() as u64,
            by,
            first: failing.first().map(|r| r.seed.0),
            shrunk_ops,
        });
    }
    Ok(rows)
}

/// The table of many nodes.
pub fn table(rows: &[NodeRow], command: &str) -> Table {
    let mut t = Table::new(
        "zoo-nodes",
        command,
        vec![
            Column::text("target"),
            Column::text("expected"),
            Column::count("seeds failing"),
            Column::count("first failing seed"),
            Column::text("caught by"),
            Column::text("shrunk to"),
        ],
    );
    for r in rows {
        let by: Vec<String> = r.by.iter().map(|(l, n)| format!("{l} {n}")).collect();
        t.row(vec![
            r.bug.map_or_else(|| "core".to_owned(), |b| b.to_string()),
            if r.expected.is_empty() {
                "nothing".to_owned()
            } else {
                r.expected.join(", ")
            },
            format!("{}/{}", r.failing, r.seeds),
            r.first.map_or("-".to_owned(), |s| s.to_string()),
            if by.is_empty() {
                "-".to_owned()
            } else {
                by.join(", ")
            },
            r.shrunk_ops
                .map_or("-".to_owned(), |(a, b)| format!("{b} ops (of {a})")),
        ]);
    }
    let bugs: Vec<&NodeRow> = rows.iter().filter(|r| r.bug.is_some()).collect();
    let caught = bugs
        .iter()
        .filter(|r| r.failing > 0 && r.all_as_expected)
        .count();
    t.notes.push(format!(
        "over {NODES} nodes with node and store faults: {caught} of {} planted bugs caught, every failing seed by an expected invariant; the core failed {} of {} seeds",
        bugs.len(),
        rows.iter().filter(|r| r.bug.is_none()).map(|r| r.failing).sum::<u64>(),
        rows.iter().filter(|r| r.bug.is_none()).map(|r| r.seeds).sum::<u64>(),
    ));
    t
}

/// Whether the table shows what it must: the core never fails, and each bug is caught, always
/// by an expected invariant.
pub fn as_expected(rows: &[NodeRow]) -> bool {
    rows.iter().all(|r| match r.bug {
        None => r.failing == 0,
        Some(_) => r.failing > 0 && r.all_as_expected,
    })
}
