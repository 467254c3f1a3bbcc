//! `explore`: a coverage-guided campaign, printed: what it ran, what it kept, how its
//! features grew, and each failure with the plan file that replays it (shrunk into a snapshot
//! unless `--no-shrink`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::args::ExploreArgs;
use super::program;
use crate::check::outcome::Exit;
use crate::tooling::guided::{explore as run_guided, Failure, GuidedOptions, GuidedSummary};
use crate::tooling::isolation::WorkerCommand;
use crate::tooling::target::Targets;
use crate::tooling::triage::{Destination, Found};

pub(super) fn explore(a: ExploreArgs, targets: &Targets) -> Result<i32> {
    let target = a.target.resolve(targets)?;
    let config = a.target.config()?;
    let jobs = super::jobs(a.jobs)?;
    if a.runs == 0 {
        bail!("--runs must be at least 1");
    }
    println!(
        "explore: {} runs against {}, fresh seeds from {}, config {}: {}",
        a.runs,
        target.describe(),
        a.seed,
        config.hash_hex(),
        serde_json::to_string(&config)?
    );
    let opts = GuidedOptions {
        target: target.clone(),
        config,
        runs: a.runs,
        first_seed: a.seed,
        jobs,
        time_budget: a.time_budget,
        pool: a.pool.clone(),
        mutants: !a.no_mutants,
    };
    let bar = crate::tooling::report::Progress::of(a.runs, "runs");
    let s = run_guided(&opts, &|done, total, failing, features| {
        bar.say(
            done,
            total,
            &format!("{failing} failing, {features} features"),
        )
    })?;
    bar.finish();
    print!("{}", summary(&s, a.pool.as_deref()));
    // A plan file holds its own network and oracle: the target is all a replay needs.
    let flags = format!(" --target {}", target.name());
    let program = program();
    let failures_dir = a
        .pool
        .as_ref()
        .map_or_else(|| PathBuf::from("target/guided"), |c| c.join("failures"));
    let dest = Destination::choose(a.store.as_deref(), a.budget.snapshots.as_deref(), &program);
    let fresh = WorkerCommand::this_program().ok();
    let mut exit = Exit::Pass;
    let mut known_count = 0;
    let network = opts.config.net.is_some();
    for (count, first) in s.failures.values() {
        let path = write_plan(&failures_dir, first, target.name())?;
        println!(
            "{}: {count} run(s), first run {} ({})\n  replay: {program} run --plan {} --seed {}{flags}",
            first.label,
            first.run,
            origin(first),
            path.display(),
            first.runtime_seed
        );
        if let Some(store) = &a.store {
            let known = crate::tooling::store::alike(store, target, network, &first.outcome)?;
            if let Some(name) = known {
                println!("store: known failure {}: fails like {name}", first.label);
                known_count += 1;
                continue;
            }
        }
        let code = first.outcome.exit_code();
        if a.no_shrink {
            exit = exit.max(code);
            continue;
        }
        let found = Found {
            kind: &first.label,
            from: format!("plan {}{flags}", path.display()),
            program: &program,
            verify: fresh.as_ref(),
        };
        let kept = crate::tooling::triage::shrink_and_keep(
            target,
            first.plan.clone(),
            first.runtime_seed,
            found,
            a.budget.options(),
            &dest,
        )?;
        // Its shrunk plan may be one the store holds already: then it is not new either.
        if kept.known {
            known_count += 1;
        } else {
            exit = exit.max(code);
        }
    }
    if a.store.is_some() {
        let new = s.failures.len() - known_count;
        println!("store: {new} new failure(s) ({known_count} known)");
    }
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&s)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(exit.code())
}

fn origin(f: &Failure) -> String {
    match (f.mutant, f.from_seed) {
        (false, Some(seed)) => format!("seed {seed}"),
        (true, Some(seed)) => format!("a mutant of seed {seed}'s plan"),
        (_, None) => "a mutant of a plan from the pool".to_owned(),
    }
}

/// Writes a failing run's plan where `run --plan` can replay it.
fn write_plan(dir: &Path, f: &Failure, target: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let hash = crate::tooling::guided::pool::run_hash(&f.plan, target, f.runtime_seed);
    let kind: String = f
        .label
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '-' })
        .collect();
    let path = dir.join(format!("{kind}-{hash}.json"));
    f.plan.save(&path)?;
    Ok(path)
}

fn summary(s: &GuidedSummary, pool: Option<&Path>) -> String {
    let mut out = String::new();
    let kept_where = pool.map_or_else(String::new, |d| format!(" into {}", d.display()));
    out.push_str(&format!(
        "explored: {} runs ({} fresh seeds, {} mutants; {} invalid mutants skipped) in {:.1} s\n",
        s.runs,
        s.runs - s.mutants,
        s.mutants,
        s.invalid,
        s.wall_s
    ));
    out.push_str(&format!(
        "pool: {} entries loaded, {} kept{kept_where}\n",
        s.loaded, s.kept
    ));
    out.push_str(&format!(
        "features: {} before, {} after (+{})\n",
        s.features_before,
        s.features,
        s.features - s.features_before
    ));
    // At most eight points of the growth curve, evenly over the batches, the last one last.
    let n = s.growth.len();
    let mut picked: Vec<usize> = (1..=8)
        .map(|i| (i * n).div_ceil(8))
        .filter(|&i| i > 0)
        .collect();
    picked.dedup();
    let points: Vec<String> = picked
        .iter()
        .map(|&i| s.growth[i - 1])
        .map(|(runs, f)| format!("{runs}: {f}"))
        .collect();
    out.push_str(&format!("growth (runs: features): {}\n", points.join(", ")));
    if s.failures.is_empty() {
        out.push_str("failures: none\n");
    } else {
        out.push_str("failures:\n");
    }
    out
}
