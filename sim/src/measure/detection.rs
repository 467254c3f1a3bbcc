//! How well the harness finds the zoo's bugs, against what a team would otherwise use: baseline
//! (a), the same plans on bare madsim (plain scheduling, no buggify) with only end-of-run
//! assertions ([`Keep::EndOfRun`]).
//!
//! The seed range is cut into ten blocks; "seeds to first detection" is the median over the
//! blocks of how many seeds a block needed before its first failure (a block with none counts
//! as its whole length), and likewise for virtual and wall time. Every detection (up to 50 per
//! bug) is run again on a fresh thread to check that it reproduces.

use std::sync::Arc;

use serde::Serialize;

use crate::generate::config::{NetConfig, SimConfig};
use crate::generate::seed::SeedRange;
use crate::measure::table::{Column, Table};
use crate::run::recorder::Keep;
use crate::run::runtime::RuntimeError;
use crate::tooling::campaign::{derive, plan_for, run_campaign, CampaignOptions, SeedResult};
use crate::tooling::shrink::{shrink, ShrinkOptions};
use crate::tooling::target::Target;
use crate::zoo::Bug;

/// How one way of testing fared against one bug.
#[derive(Clone, Debug, Serialize)]
pub struct Detection {
    /// Seeds run.
    pub seeds: u64,
    /// Seeds that found it.
    pub detected: u64,
    /// `detected / seeds`.
    pub rate: f64,
    /// Median over blocks of seeds needed to the first detection.
    pub median_seeds: f64,
    /// Whether that median is a block that found nothing, counted as its whole length: the
    /// true figure is at least this.
    pub censored: bool,
    /// Median over blocks of simulated seconds to the first detection.
    pub median_virtual_s: f64,
    /// Median over blocks of wall milliseconds to the first detection.
    pub median_wall_ms: f64,
    /// The first detection: seed and label.
    pub first: Option<(String, String)>,
    /// Detections re-run, and how many gave the same label and trace hash.
    pub reproduced: (u64, u64),
}

/// One bug's row.
#[derive(Clone, Debug, Serialize)]
pub struct BugRow {
    /// The bug.
    pub bug: Bug,
    /// The invariants expected to catch it.
    pub expected: Vec<String>,
    /// The harness.
    pub harness: Detection,
    /// Baseline (a).
    pub baseline: Detection,
    /// Whether the harness's first detection was by an expected invariant.
    pub caught_as_expected: bool,
    /// Baseline median seeds over harness median seeds (1 when both need at most 2).
    pub ratio: f64,
    /// `>=` when the baseline's median is censored (the ratio is a lower bound), `<=` when the
    /// harness's is, empty when neither is.
    pub ratio_bound: &'static str,
    /// Ops before and after shrinking the first detection.
    pub shrunk_ops: Option<(usize, usize)>,
    /// Seconds the shrink took.
    pub shrink_s: f64,
    /// Steps in the shrunk trace.
    pub shrunk_trace: usize,
}

const BLOCKS: u64 = 10;
const REPRODUCE_AT_MOST: usize = 50;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Per block of `all` (cut into [`BLOCKS`]): the seeds it ran up to its first failure (all of
/// them when none failed, then `true`), and the virtual seconds and wall milliseconds those took.
fn blocks_to_first(all: &[SeedResult]) -> Vec<((f64, bool), f64, f64)> {
    let block = (all.len() as u64 / BLOCKS).max(1) as usize;
    all.chunks(block)
        .map(|chunk| {
            let hit = chunk.iter().position(|r| !r.outcome.passed());
            let upto = hit.map_or(chunk.len(), |i| i + 1);
            (
                (upto as f64, hit.is_none()),
                chunk[..upto].iter().map(|r| r.virtual_us).sum::<u64>() as f64 / 1e6,
                chunk[..upto].iter().map(|r| r.wall_us).sum::<u64>() as f64 / 1e3,
            )
        })
        .collect()
}

/// The median over blocks of the seeds run to the first failure, and whether that median is
/// a block that found nothing (counted as its whole length: the true figure is at least it).
fn median_seeds_to_first(all: &[SeedResult]) -> (f64, bool) {
    let mut seeds: Vec<(f64, bool)> = blocks_to_first(all).into_iter().map(|b| b.0).collect();
    // A censored block (nothing found) is ordered after a hit at the same count.
    seeds.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    seeds.get(seeds.len() / 2).copied().unwrap_or((0.0, true))
}

fn detection(bug: Bug, all: &[SeedResult], keep: Keep) -> Result<Detection, RuntimeError> {
    let n = all.len() as u64;
    let (virt, wall): (Vec<f64>, Vec<f64>) =
        blocks_to_first(all).into_iter().map(|b| (b.1, b.2)).unzip();
    let failing: Vec<&SeedResult> = all.iter().filter(|r| !r.outcome.passed()).collect();
    let mut same = 0;
    for r in failing.iter().take(REPRODUCE_AT_MOST) {
        let (plan, runtime_seed) = plan_for(&SimConfig::default(), r.seed, keep);
        let again = Target::builtin(Some(bug)).run(Arc::new(plan), runtime_seed, keep)?;
        if again.outcome.label() == r.outcome.label() && again.hash == r.hash {
            same += 1;
        }
    }
    let (median_seeds, censored) = median_seeds_to_first(all);
    Ok(Detection {
        seeds: n,
        detected: failing.len() as u64,
        rate: failing.len() as f64 / n.max(1) as f64,
        median_seeds,
        censored,
        median_virtual_s: median(virt),
        median_wall_ms: median(wall),
        first: failing
            .first()
            .map(|r| (r.seed.to_string(), r.outcome.label())),
        reproduced: (failing.len().min(REPRODUCE_AT_MOST) as u64, same),
    })
}

/// Measures every bug in `bugs` over seeds `0..seeds`.
pub fn measure(
    bugs: &[Bug],
    seeds: u64,
    jobs: usize,
    progress: &dyn Fn(Bug),
) -> Result<Vec<BugRow>, RuntimeError> {
    let mut rows = Vec::new();
    for &bug in bugs {
        progress(bug);
        let campaign = |keep| {
            let opts = CampaignOptions {
                jobs,
                target: Target::builtin(Some(bug)),
                keep,
                ..CampaignOptions::new(SeedRange {
                    start: 0,
                    end: seeds,
                })
            };
            run_campaign(&opts, &|_, _, _| {})
        };
        let harness = detection(bug, &campaign(Keep::Tail(1))?.all, Keep::Tail(1))?;
        let baseline = detection(bug, &campaign(Keep::EndOfRun)?.all, Keep::EndOfRun)?;
        let caught_as_expected = harness
            .first
            .as_ref()
            .is_some_and(|(_, label)| bug.caught_as_expected(label));
        let ratio = if harness.median_seeds <= 2.0 && baseline.median_seeds <= 2.0 {
            1.0
        } else {
            baseline.median_seeds / harness.median_seeds.max(1.0)
        };
        let ratio_bound = match (baseline.censored, harness.censored) {
            (true, false) => ">= ",
            (false, true) => "<= ",
            (true, true) => "? ",
            (false, false) => "",
        };
        let (mut shrunk_ops, mut shrink_s, mut shrunk_trace) = (None, 0.0, 0);
        if let Some((seed, label)) = &harness.first {
            let seed = seed.parse().expect("a seed we printed");
            let (_, plan, runtime_seed) = derive(&SimConfig::default(), seed);
            let before = plan.ops.len();
            let s = shrink(
                &Target::builtin(Some(bug)),
                plan,
                runtime_seed,
                label,
                ShrinkOptions::default(),
                &|_, _| {},
            )?;
            shrunk_ops = Some((before, s.plan.ops.len()));
            shrink_s = s.elapsed.as_secs_f64();
            shrunk_trace = s.report.trace.len();
        }
        rows.push(BugRow {
            bug,
            expected: bug.expected().iter().map(|i| format!("{i:?}")).collect(),
            harness,
            baseline,
            caught_as_expected,
            ratio,
            ratio_bound,
            shrunk_ops,
            shrink_s,
            shrunk_trace,
        });
    }
    Ok(rows)
}

/// One bug through the real server over the simulated network.
#[derive(Clone, Debug, Serialize)]
pub struct NetRow {
    /// The bug.
    pub bug: Bug,
    /// Seeds run.
    pub seeds: u64,
    /// Seeds that failed.
    pub failing: u64,
    /// Failing seeds by what caught them (an invariant, `PANIC`), most first.
    pub by: Vec<(String, u64)>,
    /// The first failing seed.
    pub first: Option<u64>,
}

/// Runs every bug in `bugs` over seeds `0..seeds` through the network (the default network
/// config, per-seed swarm), and counts the failing seeds by what caught them.
pub fn measure_net(
    bugs: &[Bug],
    seeds: u64,
    jobs: usize,
    progress: &dyn Fn(Bug),
) -> Result<Vec<NetRow>, RuntimeError> {
    let mut rows = Vec::new();
    for &bug in bugs {
        progress(bug);
        let range = SeedRange {
            start: 0,
            end: seeds,
        };
        let all = net_campaign(Some(bug), range, jobs, NetConfig::default())?;
        let by = failing_by_label(&all);
        rows.push(NetRow {
            bug,
            seeds,
            failing: by.iter().map(|(_, n)| n).sum(),
            by,
            first: all.iter().find(|r| !r.outcome.passed()).map(|r| r.seed.0),
        });
    }
    Ok(rows)
}

/// A zoo bug (or the real core, `None`) over `seeds` through the network configured as `net`
/// (per-seed swarm on).
pub(crate) fn net_campaign(
    bug: Option<Bug>,
    seeds: SeedRange,
    jobs: usize,
    net: NetConfig,
) -> Result<Vec<SeedResult>, RuntimeError> {
    let config = SimConfig {
        net: Some(net),
        ..SimConfig::default()
    };
    quiet_campaign(&Target::builtin(bug), seeds, jobs, config)
}

/// `target` over `seeds` with `config` (per-seed swarm as it says), keeping only each seed's
/// verdict, nothing printed.
pub(crate) fn quiet_campaign(
    target: &Target,
    seeds: SeedRange,
    jobs: usize,
    config: SimConfig,
) -> Result<Vec<SeedResult>, RuntimeError> {
    let opts = CampaignOptions {
        jobs,
        target: target.clone(),
        keep: Keep::Tail(1),
        config,
        ..CampaignOptions::new(seeds)
    };
    Ok(run_campaign(&opts, &|_, _, _| {})?.all)
}

/// The failing seeds of a campaign counted by what caught them, most first.
pub(crate) fn failing_by_label(all: &[SeedResult]) -> Vec<(String, u64)> {
    let mut by = std::collections::BTreeMap::<String, u64>::new();
    for r in all.iter().filter(|r| !r.outcome.passed()) {
        *by.entry(r.outcome.label()).or_default() += 1;
    }
    let mut by: Vec<(String, u64)> = by.into_iter().collect();
    by.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    by
}

/// The network zoo table.
pub fn table_net(rows: &[NetRow], command: &str) -> Table {
    let mut t = Table::new(
        "zoo-net",
        command,
        vec![
            Column::text("bug"),
            Column::count("seeds failing"),
            Column::count("first failing seed"),
            Column::text("caught by"),
        ],
    );
    for r in rows {
        let by: Vec<String> = r.by.iter().map(|(l, n)| format!("{l} {n}")).collect();
        t.row(vec![
            r.bug.to_string(),
            format!("{}/{}", r.failing, r.seeds),
            r.first.map_or("-".to_owned(), |s| s.to_string()),
            by.join(", "),
        ]);
    }
    let caught = rows.iter().filter(|r| r.failing > 0).count();
    t.notes.push(format!(
        "through the network: {caught} of {} bugs caught within {} seeds",
        rows.len(),
        rows.first().map_or(0, |r| r.seeds)
    ));
    t
}

/// The geometric mean of the rows' ratios.
pub fn geometric_mean(rows: &[BugRow]) -> f64 {
    if rows.is_empty() {
        return 1.0;
    }
    let logs: f64 = rows.iter().map(|r| r.ratio.max(1e-9).ln()).sum();
    (logs / rows.len() as f64).exp()
}

/// The zoo table.
pub fn table(rows: &[BugRow], command: &str) -> Table {
    let mut t = Table::new(
        "zoo",
        command,
        vec![
            Column::text("bug"),
            Column::text("expected"),
            Column::count("harness: found in"),
            Column::count("median seeds to 1st"),
            Column::count("virtual s to 1st"),
            Column::measured("wall ms to 1st"),
            Column::text("first caught by"),
            Column::text("as expected"),
            Column::count("reproduces"),
            Column::count("baseline (a): found in"),
            Column::count("median seeds"),
            Column::count("reproduces"),
            Column::count("ratio (a)/harness"),
            Column::count("shrunk ops"),
            Column::measured("shrink s"),
            Column::count("trace lines"),
        ],
    );
    for r in rows {
        let h = &r.harness;
        let b = &r.baseline;
        let first = h
            .first
            .as_ref()
            .map_or("-".to_owned(), |(s, l)| format!("{l} ({s})"));
        let shrunk = r
            .shrunk_ops
            .map_or("-".to_owned(), |(a, b)| format!("{a} → {b}"));
        t.row(vec![
            r.bug.to_string(),
            r.expected.join(", "),
            format!("{}/{}", h.detected, h.seeds),
            format!("{}{:.1}", at_least(h.censored), h.median_seeds),
            format!("{:.3}", h.median_virtual_s),
            format!("{:.1}", h.median_wall_ms),
            first,
            (if r.caught_as_expected { "yes" } else { "NO" }).to_owned(),
            reproduced(h.reproduced),
            format!("{}/{}", b.detected, b.seeds),
            format!("{}{:.1}", at_least(b.censored), b.median_seeds),
            reproduced(b.reproduced),
            format!("{}{:.1}", r.ratio_bound, r.ratio),
            shrunk,
            format!("{:.2}", r.shrink_s),
            r.shrunk_trace.to_string(),
        ]);
    }
    let bound = if rows.iter().any(|r| r.ratio_bound == ">= ") {
        "at least "
    } else {
        ""
    };
    t.notes.push(format!(
        "geometric mean of the seeds-to-detection ratios, baseline (a) over the harness: {bound}{:.2} (target >= 5); `>=` marks a median block in which baseline (a) found nothing in its {} seeds, so the true ratio is higher",
        geometric_mean(rows),
        rows.first().map_or(0, |r| r.harness.seeds / BLOCKS)
    ));
    t
}

fn at_least(censored: bool) -> &'static str {
    if censored {
        ">= "
    } else {
        ""
    }
}

/// Detections re-run that gave the same label and trace, of those re-run; `-` when there was
/// nothing to re-run.
fn reproduced((ran, same): (u64, u64)) -> String {
    if ran == 0 {
        "-".to_owned()
    } else {
        format!("{same}/{ran}")
    }
}
