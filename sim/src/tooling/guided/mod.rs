//! Coverage-guided exploration: a campaign that spends its runs where behaviour is new. It
//! runs fresh seeds as `fuzz` does, keeps every plan whose run reached a feature no run before
//! it reached (see [`features`]), and, once it has kept some, makes every other run a
//! mutant of a kept plan (see [`mutate`]). The kept plans are its pool, a directory a later
//! campaign starts from.
//!
//! Runs go in batches of [`BATCH`]: each batch is drawn from the pool as it stood before it,
//! and its results are taken in order, so a campaign is the same whatever the number of
//! workers.

pub mod features;
pub mod mutate;
pub mod pool;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use serde::Serialize;

use crate::generate::config::SimConfig;
use crate::generate::plan::Plan;
use crate::generate::seed::Seed;
use crate::run::recorder::Keep;
use crate::run::runtime::RuntimeError;
use crate::tooling::campaign::derive;
use crate::tooling::target::Target;
use features::{features, Features};
use pool::{Entry, PoolError, POOL_VERSION};

/// Runs drawn together, then taken in order.
pub const BATCH: usize = 8;

/// A feature reached by at most this many runs is rare.
const RARE: u64 = 2;

/// What a guided campaign runs.
#[derive(Clone, Debug)]
pub struct GuidedOptions {
    /// The backend.
    pub target: Target,
    /// The campaign config fresh seeds derive theirs from.
    pub config: SimConfig,
    /// Runs in all.
    pub runs: u64,
    /// The first fresh seed (fresh seeds count up from it).
    pub first_seed: Seed,
    /// Parallel workers.
    pub jobs: usize,
    /// Stop starting batches after this long.
    pub time_budget: Option<Duration>,
    /// Where the pool is kept (`None`: in memory only).
    pub pool: Option<PathBuf>,
    /// Whether kept plans are mutated (off: fresh seeds only, features still counted; the
    /// baseline guidance is measured against).
    pub mutants: bool,
}

/// A failing run.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    /// What it failed as.
    pub label: String,
    /// Which run (from 0).
    pub run: u64,
    /// The fresh seed it was, or the seed its mutated plan descends from (`None`: a plan
    /// loaded from the pool).
    pub from_seed: Option<Seed>,
    /// Whether it was a mutant.
    pub mutant: bool,
    /// The plan.
    #[serde(skip)]
    pub plan: Plan,
    /// The runtime seed.
    pub runtime_seed: Seed,
    /// How it ended.
    #[serde(skip)]
    pub outcome: crate::check::outcome::Outcome,
}

/// What a guided campaign did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct GuidedSummary {
    /// Runs made.
    pub runs: u64,
    /// Of them, mutants of kept plans.
    pub mutants: u64,
    /// Entries the pool started with (of this target and transport).
    pub loaded: usize,
    /// Entries kept by this campaign.
    pub kept: usize,
    /// Features reached before this campaign (by the loaded entries).
    pub features_before: usize,
    /// Features reached in all, by the end.
    pub features: usize,
    /// Features reached after each batch, to show how the campaign grew.
    pub growth: Vec<(u64, usize)>,
    /// Failing runs, by what they failed as: how many, and the first.
    pub failures: BTreeMap<String, (u64, Failure)>,
    /// Mutants that were not valid plans (skipped, not run).
    pub invalid: u64,
    /// Wall time.
    pub wall_s: f64,
}

/// Why a guided campaign stopped short.
#[derive(Debug, thiserror::Error)]
pub enum GuidedError {
    /// The pool of kept plans.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// The simulator.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// One run to make: a plan, its runtime seed, where it came from.
struct Candidate {
    plan: Plan,
    runtime_seed: Seed,
    from_seed: Option<Seed>,
    mutant: bool,
}

/// The kept plans, with the seed each descends from.
struct Kept {
    entry: Entry,
    from_seed: Option<Seed>,
}

/// Runs a guided campaign; `progress` is told after each batch the runs made, the runs
/// asked, the failing runs and the features reached.
pub fn explore(
    opts: &GuidedOptions,
    progress: &(dyn Fn(u64, u64, u64, usize) + Sync),
) -> Result<GuidedSummary, GuidedError> {
    let started = Instant::now();
    let target_name = opts.target.name().to_owned();
    // What a plan of this campaign looks like, to pick the pool entries that fit it.
    let (_, like, _) = derive(&opts.config, opts.first_seed);
    let mut kept: Vec<Kept> = Vec::new();
    let mut seen = Features::new();
    // How many runs of this campaign reached each feature.
    let mut reached_by: BTreeMap<String, u64> = BTreeMap::new();
    if let Some(dir) = &opts.pool {
        for entry in pool::load(dir)? {
            if entry.fits(&target_name, &like) {
                seen.extend(entry.features.iter().cloned());
                kept.push(Kept {
                    entry,
                    from_seed: None,
                });
            }
        }
    }
    let mut s = GuidedSummary {
        loaded: kept.len(),
        features_before: seen.len(),
        ..GuidedSummary::default()
    };
    let mut fresh = opts.first_seed.0;
    let mut batch_no = 0u64;
    while s.runs < opts.runs {
        if opts.time_budget.is_some_and(|b| started.elapsed() >= b) {
            break;
        }
        let mut rng = opts.first_seed.rng(&format!("guided-{batch_no}"));
        batch_no += 1;
        let size = BATCH.min((opts.runs - s.runs) as usize);
        let mut batch = Vec::with_capacity(size);
        while batch.len() < size {
            if kept.is_empty() || !opts.mutants || rng.gen_ratio(1, 2) {
                let seed = Seed(fresh);
                fresh += 1;
                let (_, plan, runtime_seed) = derive(&opts.config, seed);
                batch.push(Candidate {
                    plan,
                    runtime_seed,
                    from_seed: Some(seed),
                    mutant: false,
                });
                continue;
            }
            // The best of three drawn: the entry with most features few runs reached (newer on
            // a tie), so effort goes where behaviour is rare.
            let rare = |k: &Kept| {
                k.entry
                    .features
                    .iter()
                    .filter(|f| reached_by.get(*f).copied().unwrap_or(0) <= RARE)
                    .count()
            };
            let i = (0..3)
                .map(|_| rng.gen_range(0..kept.len()))
                .max_by_key(|&i| (rare(&kept[i]), i))
                .expect("three draws");
            let k = &kept[i];
            let limit = like.ops.len().max(k.entry.plan.ops.len());
            let (plan, runtime_seed) =
                mutate::mutate(&k.entry.plan, k.entry.runtime_seed, &mut rng, limit);
            if plan.validate().is_err() {
                s.invalid += 1;
                continue;
            }
            batch.push(Candidate {
                plan,
                runtime_seed,
                from_seed: k.from_seed,
                mutant: true,
            });
        }
        for (c, report) in batch
            .iter()
            .zip(run_batch(&opts.target, &batch, opts.jobs)?)
        {
            let run = s.runs;
            s.runs += 1;
            s.mutants += u64::from(c.mutant);
            if !report.outcome.passed() {
                let label = report.outcome.label();
                let first = Failure {
                    label: label.clone(),
                    run,
                    from_seed: c.from_seed,
                    mutant: c.mutant,
                    plan: c.plan.clone(),
                    runtime_seed: c.runtime_seed,
                    outcome: report.outcome.clone(),
                };
                s.failures.entry(label).or_insert((0, first)).0 += 1;
                // A failing plan is not kept: mutants of it would find the same bug again.
                continue;
            }
            let reached = features(&report);
            for f in &reached {
                *reached_by.entry(f.clone()).or_insert(0) += 1;
            }
            if reached.is_subset(&seen) {
                continue;
            }
            seen.extend(reached.iter().cloned());
            let entry = Entry {
                version: POOL_VERSION,
                target: target_name.clone(),
                runtime_seed: c.runtime_seed,
                features: reached,
                plan: c.plan.clone(),
            };
            if let Some(dir) = &opts.pool {
                pool::save(dir, &entry)?;
            }
            kept.push(Kept {
                entry,
                from_seed: c.from_seed,
            });
            s.kept += 1;
        }
        s.growth.push((s.runs, seen.len()));
        let failing = s.failures.values().map(|(n, _)| n).sum();
        progress(s.runs, opts.runs, failing, seen.len());
    }
    s.features = seen.len();
    s.wall_s = started.elapsed().as_secs_f64();
    Ok(s)
}

/// Runs a batch on `jobs` workers; reports in the batch's order.
fn run_batch(
    target: &Target,
    batch: &[Candidate],
    jobs: usize,
) -> Result<Vec<crate::run::world::RunReport>, RuntimeError> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let out: Mutex<Vec<Option<Result<_, RuntimeError>>>> =
        Mutex::new((0..batch.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, batch.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(c) = batch.get(i) else { return };
                let r = target.run(Arc::new(c.plan.clone()), c.runtime_seed, Keep::All);
                out.lock().expect("results")[i] = Some(r);
            });
        }
    });
    out.into_inner()
        .expect("results")
        .into_iter()
        .map(|r| r.expect("every candidate ran"))
        .collect()
}
