//! Campaigns: many seeds, each derived into a config and a plan and run on a fresh thread, in
//! parallel; failures grouped by invariant; coverage summed; optional determinism checks.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::check::coverage::Coverage;
use crate::check::outcome::Outcome;
use crate::check::trace::Step;
use crate::generate::config::SimConfig;
use crate::generate::plan::Plan;
use crate::generate::seed::{Seed, SeedRange};
use crate::generate::workload::generate;
use crate::run::recorder::Keep;
use crate::run::runtime::RuntimeError;
use crate::run::world::RunReport;
use crate::tooling::isolation::{run_in_worker, WorkerCommand, WorkerError};
use crate::tooling::target::Target;

/// The plan and runtime seed one seed runs with when recorded as `keep`: the end-of-run
/// baseline is madsim's plain scheduling, so its plans run without buggify.
pub fn plan_for(base: &SimConfig, seed: Seed, keep: Keep) -> (Plan, Seed) {
    let (_, mut plan, runtime_seed) = derive(base, seed);
    if keep == Keep::EndOfRun {
        plan.buggify = false;
    }
    (plan, runtime_seed)
}

/// The plan and runtime seed one seed stands for under `base`.
pub fn derive(base: &SimConfig, seed: Seed) -> (SimConfig, Plan, Seed) {
    let config = base.for_seed(seed);
    let plan = generate(&config, seed);
    (config, plan, seed.child("runtime"))
}

/// Where two runs of one seed first differ.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Divergence {
    /// The first differing step number.
    pub step: u64,
    /// That step in the first run (or `(none)`).
    pub first: String,
    /// That step in the second run (or `(none)`).
    pub second: String,
}

/// Runs a seed again (`run` runs it, keeping what it is told), on a fresh thread, and compares
/// the trace with `first`'s; on a mismatch, runs it twice more keeping every step and names the
/// first step that differs. When those two agree with each other but not with `first`, the
/// nondeterminism depends on process state (a global counter, say), and the divergence says so.
pub fn check_determinism(
    run: &dyn Fn(Keep) -> Result<RunReport, RuntimeError>,
    first: &RunReport,
) -> Result<Option<Divergence>, RuntimeError> {
    let second = run(Keep::Tail(1))?;
    if second.hash == first.hash && second.steps == first.steps {
        return Ok(None);
    }
    let a = run(Keep::All)?;
    let b = run(Keep::All)?;
    let d = first_difference(&a.trace, &b.trace);
    if d.first != d.second {
        return Ok(Some(d));
    }
    Ok(Some(Divergence {
        step: first.steps.min(second.steps),
        first: format!("{} steps, trace hash {:#018x}", first.steps, first.hash),
        second: format!(
            "{} steps, trace hash {:#018x} (two more fresh runs agreed with this one: the difference comes from state the process kept between runs)",
            second.steps, second.hash
        ),
    }))
}

/// Runs a seed again in a fresh worker process and compares its steps and trace hash with
/// `first`'s. On a mismatch, a second run in this process tells the two causes apart: if it
/// differs too, the run itself is nondeterministic (and the first differing step is named);
/// if it agrees, the difference is state this process kept from earlier runs.
pub fn check_in_worker(
    worker: &WorkerCommand,
    target: &Target,
    plan: &Plan,
    runtime_seed: Seed,
    run: &dyn Fn(Keep) -> Result<RunReport, RuntimeError>,
    first: &RunReport,
) -> Result<Option<Divergence>, RuntimeError> {
    let here = format!("{} steps, trace hash {:#018x}", first.steps, first.hash);
    let ran = match run_in_worker(worker, target.name(), plan, runtime_seed) {
        Ok(ran) => ran,
        Err(e @ WorkerError::Died { .. }) => {
            return Ok(Some(Divergence {
                step: first.steps,
                first: here,
                second: e.to_string(),
            }))
        }
        Err(e) => return Err(RuntimeError::Worker(e.to_string())),
    };
    if ran.steps == first.steps && ran.hash == first.hash {
        return Ok(None);
    }
    if let Some(d) = check_determinism(run, first)? {
        return Ok(Some(d));
    }
    Ok(Some(Divergence {
        step: first.steps.min(ran.steps),
        first: format!("{here} in this process"),
        second: format!(
            "{} steps, trace hash {:#018x} in a fresh process (a second run in this process agreed with the first: the backend keeps state in the process from earlier runs, a static for instance)",
            ran.steps, ran.hash
        ),
    }))
}

/// Replays the first seed of each kind of failure in a fresh worker process, before any of
/// them is reported or shrunk. One that fails otherwise there (or passes) was made by state
/// the campaign's process kept between runs: it is added as a `NONDETERMINISM` failure, which
/// the report puts first. A worker that cannot start is reported on stderr and skipped.
pub fn confirm_in_fresh_processes(
    summary: &mut CampaignSummary,
    worker: &WorkerCommand,
    target: &Target,
    base: &SimConfig,
) {
    let nondeterminism = crate::check::outcome::FailureKind::Nondeterminism.to_string();
    let firsts: Vec<(String, Seed)> = summary
        .failures
        .iter()
        .filter(|(label, _)| **label != nondeterminism)
        .map(|(label, g)| (label.clone(), g.first_seed))
        .collect();
    for (label, seed) in firsts {
        let Some(here) = summary.failing.iter().find(|r| r.seed == seed) else {
            continue;
        };
        let (_, plan, runtime_seed) = derive(base, seed);
        let there = match run_in_worker(worker, target.name(), &plan, runtime_seed) {
            Ok(ran) => ran.outcome,
            Err(e) => {
                eprintln!("could not replay seed {seed} in a fresh process: {e}");
                continue;
            }
        };
        if there.signature() == here.outcome.signature() {
            continue;
        }
        let message = format!(
            "seed {seed} failed as {label} in this campaign but {} in a fresh process: the backend keeps state between the runs of one process (a static, a global cache), so what this campaign found may not replay",
            if there.passed() { "passes".to_owned() } else { format!("as {}", there.label()) }
        );
        summary
            .failures
            .entry(nondeterminism.clone())
            .and_modify(|g| {
                g.count += 1;
                g.first_seed = g.first_seed.min(seed);
            })
            .or_insert(FailureGroup {
                count: 1,
                first_seed: seed,
                message,
                snapshot: None,
                known: false,
            });
    }
}

/// The first step where two traces differ.
pub fn first_difference(a: &[Step], b: &[Step]) -> Divergence {
    let show = |s: Option<&Step>| s.map_or("(none)".to_owned(), |s| s.to_string());
    let i = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    Divergence {
        step: i as u64 + 1,
        first: show(a.get(i)),
        second: show(b.get(i)),
    }
}

/// What a campaign runs.
#[derive(Clone, Debug)]
pub struct CampaignOptions {
    /// The seed range.
    pub seeds: SeedRange,
    /// This machine's shard: `(index, count)`.
    pub shard: (u64, u64),
    /// Parallel workers.
    pub jobs: usize,
    /// Stop starting new seeds after this much wall time.
    pub time_budget: Option<Duration>,
    /// The base config (each seed derives its own from it).
    pub config: SimConfig,
    /// What the seeds run against: the real core, a planted bug, or a team's own backend.
    pub target: Target,
    /// Run every seed twice and compare.
    pub check_determinism: bool,
    /// What to record and check: `Tail(1)` for campaigns; `Nothing` and `EndOfRun` are the
    /// benchmarks' baselines (`EndOfRun` also switches buggify off: madsim's plain scheduling).
    pub keep: Keep,
    /// With `check_determinism`: run the second run in a fresh worker process started this way
    /// (see [`crate::tooling::isolation`]), so state a backend keeps in the process between seeds shows
    /// as nondeterminism. `None`: the second run on a fresh thread of this process.
    pub isolation: Option<WorkerCommand>,
    /// Run every seed in a fresh worker process started as `isolation` says, not only the
    /// determinism check's second run: a backend that aborts the process (or overflows its
    /// stack) then fails that seed instead of ending the campaign. A seed's trace is not kept
    /// (its replay shows it); coverage is.
    pub isolate: bool,
}

impl CampaignOptions {
    /// A campaign over `seeds` against the real core: one shard, every core, default config.
    pub fn new(seeds: SeedRange) -> Self {
        Self {
            seeds,
            shard: (0, 1),
            jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
            time_budget: None,
            config: SimConfig::default(),
            target: Target::core(),
            check_determinism: false,
            keep: Keep::Tail(1),
            isolation: None,
            isolate: false,
        }
    }

    fn run(&self, plan: Arc<Plan>, seed: Seed, keep: Keep) -> Result<RunReport, RuntimeError> {
        self.target.run(plan, seed, keep)
    }
}

/// One seed's result.
#[derive(Clone, Debug, Serialize)]
pub struct SeedResult {
    /// The seed.
    pub seed: Seed,
    /// How it ended.
    pub outcome: Outcome,
    /// Steps.
    pub steps: u64,
    /// Virtual microseconds.
    pub virtual_us: u64,
    /// Trace hash.
    pub hash: u64,
    /// Set when the seed did not replay identically.
    pub divergence: Option<Divergence>,
    /// Wall microseconds the run took.
    pub wall_us: u64,
    #[serde(skip)]
    coverage: Coverage,
}

/// A failure kind and where it was first seen.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct FailureGroup {
    /// Seeds that failed this way.
    pub count: u64,
    /// The lowest such seed.
    pub first_seed: Seed,
    /// Its message.
    pub message: String,
    /// The snapshot its first seed shrank to (its name ends in the shrunk plan's hash), once
    /// shrunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// With `fuzz --store`: its snapshot was in the store already, so it is not new.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub known: bool,
}

/// The version of the summary's JSON format (documented in `docs/summary-schema.md`); it goes
/// up whenever a field changes meaning or goes away.
pub const SUMMARY_VERSION: u32 = 1;

/// A campaign's summary.
#[derive(Clone, Debug, Serialize)]
pub struct CampaignSummary {
    /// [`SUMMARY_VERSION`].
    pub version: u32,
    /// What ran (`core` or a bug id).
    pub target: String,
    /// Whether it ran through the network.
    pub network: bool,
    /// The seed range asked for.
    pub range: String,
    /// The shard, `i/n`.
    pub shard: String,
    /// Seeds run.
    pub seeds_run: u64,
    /// Whether the time budget cut the campaign short.
    pub stopped_by_budget: bool,
    /// Wall seconds.
    pub wall_s: f64,
    /// Seeds per wall second.
    pub seeds_per_s: f64,
    /// Steps, all seeds.
    pub steps: u64,
    /// Steps per wall second.
    pub steps_per_s: f64,
    /// Simulated seconds, all seeds.
    pub virtual_s: f64,
    /// Simulated seconds per wall second.
    pub acceleration: f64,
    /// Failures by kind (`I2 one-manager-per-user`, `STUCK`, `NONDETERMINISM`...).
    pub failures: BTreeMap<String, FailureGroup>,
    /// Coverage points summed over all seeds.
    pub coverage: BTreeMap<&'static str, u64>,
    /// The failing seeds, in order.
    pub failing: Vec<SeedResult>,
    /// Every seed's result, in order.
    #[serde(skip)]
    pub all: Vec<SeedResult>,
}

impl CampaignSummary {
    /// Whether every seed passed and replayed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Progress callback: seeds done, seeds planned, failures so far.
pub type Progress<'a> = &'a (dyn Fn(u64, u64, u64) + Sync);

/// Runs a campaign.
pub fn run_campaign(
    opts: &CampaignOptions,
    progress: Progress<'_>,
) -> Result<CampaignSummary, RuntimeError> {
    let (index, count) = opts.shard;
    let total = opts.seeds.shard_len(index, count);
    let next = AtomicU64::new(0);
    let failures = AtomicU64::new(0);
    let out_of_time = AtomicBool::new(false);
    let results: Mutex<Vec<SeedResult>> = Mutex::new(Vec::new());
    let error: Mutex<Option<RuntimeError>> = Mutex::new(None);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..opts.jobs.max(1) {
            scope.spawn(|| loop {
                if opts.time_budget.is_some_and(|b| started.elapsed() >= b) {
                    out_of_time.store(true, Ordering::Relaxed);
                    return;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return;
                }
                let seed = opts.seeds.nth_in_shard(index, count, i);
                match run_seed(opts, seed) {
                    Ok(r) => {
                        if !r.outcome.passed() || r.divergence.is_some() {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                        let mut all = results.lock().expect("results");
                        all.push(r);
                        let done = all.len() as u64;
                        drop(all);
                        progress(done, total, failures.load(Ordering::Relaxed));
                    }
                    Err(e) => {
                        *error.lock().expect("error") = Some(e);
                        return;
                    }
                }
            });
        }
    });
    if let Some(e) = error.into_inner().expect("error") {
        return Err(e);
    }
    let mut results = results.into_inner().expect("results");
    results.sort_by_key(|r| r.seed);
    Ok(summarise(
        opts,
        results,
        started.elapsed(),
        out_of_time.load(Ordering::Relaxed),
    ))
}

/// Runs a plan in a fresh worker process; a worker that dies is the system under test's
/// failure.
fn isolated(
    worker: &WorkerCommand,
    target: &Target,
    plan: &Plan,
    runtime_seed: Seed,
) -> Result<RunReport, RuntimeError> {
    match run_in_worker(worker, target.name(), plan, runtime_seed) {
        Ok(ran) => Ok(ran.report()),
        Err(WorkerError::Died { status }) => Ok(crate::run::runtime::report_of_panic(
            crate::run::runtime::Panicked {
                message: format!("the process running this seed died ({status}) before giving a verdict: the system under test aborted it, or overflowed its stack"),
                by: "the system under test",
                at: None,
            },
            None,
        )),
        Err(e) => Err(RuntimeError::Worker(e.to_string())),
    }
}

fn run_seed(opts: &CampaignOptions, seed: Seed) -> Result<SeedResult, RuntimeError> {
    let (plan, runtime_seed) = plan_for(&opts.config, seed, opts.keep);
    let plan = Arc::new(plan);
    let started = Instant::now();
    let worker = match (&opts.isolation, opts.isolate) {
        (Some(worker), true) => Some(worker),
        (None, true) => {
            return Err(RuntimeError::Worker(
                "isolating seeds needs a worker command (CampaignOptions::isolation)".into(),
            ))
        }
        _ => None,
    };
    let report = match worker {
        Some(worker) => isolated(worker, &opts.target, &plan, runtime_seed)?,
        None => opts.run(Arc::clone(&plan), runtime_seed, opts.keep)?,
    };
    let wall_us = started.elapsed().as_micros() as u64;
    let again = |keep| opts.run(Arc::clone(&plan), runtime_seed, keep);
    let divergence = match (&opts.isolation, opts.check_determinism) {
        (_, false) => None,
        (Some(worker), true) if opts.isolate => {
            let second = isolated(worker, &opts.target, &plan, runtime_seed)?;
            let shown = |r: &RunReport| format!("{} steps, trace hash {:#018x}", r.steps, r.hash);
            (second.steps != report.steps || second.hash != report.hash).then(|| Divergence {
                step: report.steps.min(second.steps),
                first: format!("{} in one fresh process", shown(&report)),
                second: format!("{} in another", shown(&second)),
            })
        }
        (None, true) => check_determinism(&again, &report)?,
        (Some(worker), true) => {
            check_in_worker(worker, &opts.target, &plan, runtime_seed, &again, &report)?
        }
    };
    Ok(SeedResult {
        seed,
        outcome: report.outcome,
        steps: report.steps,
        virtual_us: report.virtual_us,
        hash: report.hash,
        divergence,
        wall_us,
        coverage: report.coverage,
    })
}

fn summarise(
    opts: &CampaignOptions,
    results: Vec<SeedResult>,
    wall: Duration,
    stopped_by_budget: bool,
) -> CampaignSummary {
    let wall_s = wall.as_secs_f64().max(1e-9);
    let steps: u64 = results.iter().map(|r| r.steps).sum();
    let virtual_s = results.iter().map(|r| r.virtual_us).sum::<u64>() as f64 / 1e6;
    let mut coverage = Coverage::default();
    let mut failures: BTreeMap<String, FailureGroup> = BTreeMap::new();
    let mut failing = Vec::new();
    for r in results.iter() {
        coverage.merge(&r.coverage);
        let mut kinds = Vec::new();
        if !r.outcome.passed() {
            let message = match &r.outcome {
                Outcome::Violation(v) => v.message.clone(),
                Outcome::Stuck { blocked } => blocked.join("; "),
                Outcome::Panic { message, by, .. } => format!("in {by}: {message}"),
                Outcome::Pass => String::new(),
            };
            kinds.push((r.outcome.label(), message));
        }
        if let Some(d) = &r.divergence {
            kinds.push((
                crate::check::outcome::FailureKind::Nondeterminism.to_string(),
                format!("first differs at step {}", d.step),
            ));
        }
        for (label, message) in kinds {
            failures
                .entry(label)
                .and_modify(|g| g.count += 1)
                .or_insert(FailureGroup {
                    count: 1,
                    first_seed: r.seed,
                    message,
                    snapshot: None,
                    known: false,
                });
        }
        if !r.outcome.passed() || r.divergence.is_some() {
            failing.push(r.clone());
        }
    }
    let network = opts.config.net.is_some();
    for (point, _) in crate::check::coverage::points(network) {
        coverage.hits.entry(point).or_insert(0);
    }
    if opts.config.net.as_ref().is_some_and(|n| n.nodes > 1) {
        for (point, _) in crate::check::coverage::NODE_POINTS {
            coverage.hits.entry(point).or_insert(0);
        }
    }
    let n = results.len() as u64;
    CampaignSummary {
        version: SUMMARY_VERSION,
        network,
        target: format!(
            "{}{}",
            opts.target.name(),
            if network {
                " behind the WebSocket server (simulated network)"
            } else {
                ""
            }
        ),
        range: format!("{}..{}", Seed(opts.seeds.start), Seed(opts.seeds.end)),
        shard: format!("{}/{}", opts.shard.0, opts.shard.1),
        seeds_run: n,
        stopped_by_budget,
        wall_s,
        seeds_per_s: n as f64 / wall_s,
        steps,
        steps_per_s: steps as f64 / wall_s,
        virtual_s,
        acceleration: virtual_s / wall_s,
        failures,
        coverage: coverage.hits,
        failing,
        all: results,
    }
}
