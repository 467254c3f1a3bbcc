//! The command line: `run`, `fuzz`, `plan`, `bench`, `shrink`, `replay`, `disconnect`, `tables`,
//! `merge`, `report`. It parses (the `args` module), dispatches to the library, prints what the library
//! returns, and maps outcomes to the fixed exit codes of [`crate::check::outcome::Exit`]. What to do
//! with failures (shrink, store, snapshot, CI) is decided in [`crate::tooling::triage`].

mod args;
mod explore;
mod target;

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Parser;

pub use args::Cli;
use args::{
    BenchArgs, Command, DisconnectArgs, FuzzArgs, MergeArgs, PlanArgs, ReplayArgs, ReportArgs,
    RunArgs, ShrinkArgs, TablesArgs,
};

use crate::check::outcome::{campaign_exit, Exit};
use crate::generate::plan::Plan;
use crate::generate::seed::Seed;
use crate::run::recorder::Keep;
use crate::tooling::campaign::{check_determinism, derive, run_campaign, CampaignOptions};
use crate::tooling::isolation::WorkerCommand;
use crate::tooling::report;
use crate::tooling::target::Targets;
use crate::tooling::triage::{Destination, Found};

/// How to start this program again, for the replay lines it prints: `cargo sim` for
/// `wsreg-sim` itself, the path it was started by for a team's own binary.
pub fn program() -> String {
    let arg0 = std::env::args().next().unwrap_or_default();
    let stem = std::path::Path::new(&arg0)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned());
    if stem.as_deref() == Some("wsreg-sim") {
        "cargo sim".to_owned()
    } else {
        arg0
    }
}

/// Parses the arguments, runs, prints, and returns the exit code: `wsreg-sim` itself, with the
/// built-in targets.
pub fn main() -> i32 {
    main_with(Targets::builtin())
}

/// The whole command line over `targets`: how a team's binary fuzzes, shrinks, snapshots and
/// replays its own backend. It serves as its own worker process too (see
/// [`crate::tooling::isolation`]), so call it first thing in `main`:
///
/// ```no_run
/// use wsreg_sim::tooling::target::{Target, Targets};
/// // Any `wsreg::Backend`: here the real core, as a stand-in for a team's own registry.
/// let targets = Targets::builtin().with(Target::new("ours", wsreg_sim::run::backend::registry));
/// std::process::exit(wsreg_sim::cli::main_with(targets));
/// ```
pub fn main_with(targets: Targets) -> i32 {
    quiet_on_closed_pipe();
    crate::tooling::isolation::serve_if_worker(&targets);
    let cli = Cli::parse();
    let t = &targets;
    let result = match cli.command {
        Command::Run(a) => run(a, t),
        Command::Fuzz(a) => fuzz(a, t),
        Command::Explore(a) => explore::explore(a, t),
        Command::Plan(a) => plan(a),
        Command::Bench(a) => bench(a),
        Command::Shrink(a) => shrink(a, t),
        Command::Replay(a) => replay(a, t),
        Command::Disconnect(a) => disconnect(a),
        Command::Tables(a) => tables(a),
        Command::Merge(a) => merge(a),
        Command::Report(a) => report_page(a, t),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            Exit::Usage.code()
        }
    }
}

/// A command-line tool whose reader went away (`cargo sim run ... | head`) ends quietly, as
/// `cat` does, instead of panicking in `println!`: Rust starts programs with SIGPIPE ignored,
/// so a write to a closed pipe is an error that `println!` turns into a panic. The default
/// action ends the process at the first such write, with nothing printed.
fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to its default installs no handler of ours; it
    // is done first thing, before this process starts any thread of its own.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn run(a: RunArgs, targets: &Targets) -> Result<i32> {
    let target = a.target.resolve(targets)?;
    let base = a.target.config()?;
    let (plan, runtime_seed, replay) = match &a.plan {
        Some(path) => {
            let mut plan = Plan::load(path)?;
            a.target.apply_to_plan(&mut plan)?;
            let seed = a.seed.unwrap_or(Seed(0));
            println!("PLAN={} SEED={seed}", path.display());
            let replay = format!(
                "{} run --plan {} --seed {seed}{}",
                program(),
                path.display(),
                a.target.flags()
            );
            (plan, seed, replay)
        }
        None => {
            let Some(seed) = a.seed else {
                bail!("give --seed N (or --plan FILE)");
            };
            let (config, plan, runtime_seed) = derive(&base, seed);
            println!("SEED={seed}");
            println!(
                "config {}: {}",
                config.hash_hex(),
                serde_json::to_string(&config)?
            );
            let replay = format!("{} run --seed {seed}{}", program(), a.target.flags());
            (plan, runtime_seed, replay)
        }
    };
    println!(
        "target: {}; plan: {} users, {} ops; runtime seed {runtime_seed}",
        target.describe(),
        plan.users.len(),
        plan.ops.len()
    );
    let plan = Arc::new(plan);
    let report = target.run(Arc::clone(&plan), runtime_seed, Keep::All)?;
    let verdict = report::verdict(&report);
    println!("{verdict}");
    let label = report.outcome.label();
    for fix in crate::tooling::diagnosis::diagnose([(label.as_str(), verdict.as_str())]) {
        println!("what to change: {fix}");
    }
    println!("{}", report::summary(&report));
    let mut exit = report.outcome.exit_code();
    if a.check_determinism {
        let again = |keep| target.run(Arc::clone(&plan), runtime_seed, keep);
        let divergence = check_determinism(&again, &report)?;
        println!("{}", report::determinism(&report, divergence.as_ref()));
        if divergence.is_some() {
            exit = Exit::Nondeterminism;
        }
    }
    if !report.outcome.passed() || a.full_trace {
        print!("{}", report::trace_excerpt(&report, a.full_trace));
    }
    let record = crate::tooling::page::RunRecord {
        version: crate::tooling::page::RUN_RECORD_VERSION,
        target: target.name(),
        runtime_seed,
        replay: &replay,
        plan: &plan,
        report: &report,
    };
    if let Some(path) = &a.json {
        record.write(path)?;
    }
    if let Some(path) = &a.page {
        record.write_page(path)?;
        println!("page written: {}", path.display());
    }
    println!("replay: {replay}");
    Ok(exit.code())
}

/// `report FILE`: re-runs the snapshot's or record's plan and writes its page.
fn report_page(a: ReportArgs, targets: &Targets) -> Result<i32> {
    let source = crate::tooling::page::PageSource::load(&a.file)?;
    let target = targets
        .get(&source.target)
        .with_context(|| format!("making a page of {}", a.file.display()))?;
    let report = target.run(
        Arc::new(source.plan.clone()),
        source.runtime_seed,
        Keep::All,
    )?;
    let out = a
        .output
        .unwrap_or_else(|| crate::tooling::page::beside(&a.file));
    let page = crate::tooling::page::render(&source, &report);
    crate::tooling::page::write(&out, &page)?;
    println!(
        "{}",
        report::verdict(&report).lines().next().unwrap_or_default()
    );
    if let Some(note) = source.mismatch(&report) {
        println!("warning: {note}");
    }
    println!(
        "page written: {} ({} KB)",
        out.display(),
        page.len().div_ceil(1024)
    );
    Ok(Exit::Pass.code())
}

/// `--jobs`, checked (default: the number of cores).
fn jobs(asked: Option<usize>) -> Result<usize> {
    let jobs = asked.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    if jobs == 0 || jobs > 256 {
        bail!("--jobs must be 1 to 256");
    }
    Ok(jobs)
}

fn fuzz(a: FuzzArgs, targets: &Targets) -> Result<i32> {
    let target = a.target.resolve(targets)?;
    let config = a.target.config()?;
    let jobs = jobs(a.jobs)?;
    println!("SEED={}..{}", Seed(a.seeds.start), Seed(a.seeds.end));
    println!(
        "config {} (each seed derives its own{}): {}",
        config.hash_hex(),
        if config.swarm { " by swarm" } else { "" },
        serde_json::to_string(&config)?
    );
    let config_for_shrink = config.clone();
    let opts = CampaignOptions {
        shard: a.shard,
        jobs,
        time_budget: a.time_budget,
        config,
        target: target.clone(),
        check_determinism: a.check_determinism,
        isolation: if (a.check_determinism && !a.same_process) || a.isolate {
            Some(WorkerCommand::this_program().context("finding this program to start workers")?)
        } else {
            None
        },
        isolate: a.isolate,
        ..CampaignOptions::new(a.seeds)
    };
    let bar = report::Progress::new(a.seeds.shard_len(a.shard.0, a.shard.1));
    let mut summary = run_campaign(&opts, &|done, total, failing| {
        bar.tick(done, total, failing)
    })?;
    bar.finish();
    // Every failure's first seed, replayed in a fresh process before anything is reported: a
    // backend that keeps state between runs is named first, and loudly.
    let fresh = WorkerCommand::this_program().ok();
    if let Some(worker) = &fresh {
        crate::tooling::campaign::confirm_in_fresh_processes(
            &mut summary,
            worker,
            target,
            &config_for_shrink,
        );
    }
    print!("{}", report::campaign(&summary));
    let flags = a.target.flags();
    let program = program();
    let dest = Destination::choose(a.store.as_deref(), a.budget.snapshots.as_deref(), &program);
    if a.no_shrink {
        for g in summary.failures.values() {
            println!("replay: {program} run --seed {}{flags}", g.first_seed);
        }
    } else {
        let keeping = crate::tooling::triage::Keeping {
            options: a.budget.options(),
            dest: &dest,
            program: &program,
            verify: fresh.as_ref(),
        };
        crate::tooling::triage::campaign(
            &mut summary,
            target,
            &config_for_shrink,
            &flags,
            &keeping,
        )?;
    }
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&summary)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &a.junit {
        let repro = |kind: &str, seed: Seed| {
            let check = if crate::check::outcome::FailureKind::parse(kind)
                == Some(crate::check::outcome::FailureKind::Nondeterminism)
            {
                " --check-determinism"
            } else {
                ""
            };
            format!("{program} run --seed {seed}{flags}{check}")
        };
        std::fs::write(path, crate::tooling::junit::report(&summary, &repro))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(campaign_exit(
        summary.failures.iter().map(|(k, g)| (k.as_str(), g.known)),
        summary.failing.iter().map(|r| (r.seed.0, &r.outcome)),
    )
    .code())
}

fn bench(a: BenchArgs) -> Result<i32> {
    let options = crate::measure::suite::BenchOptions {
        rounds: a.rounds,
        scale: a.scale,
        zoo_seeds: a.zoo_seeds,
        net_seeds: a.net_seeds,
        explore_seeds: a.explore_seeds,
        guided_runs: a.guided_runs,
        node_seeds: a.node_seeds,
        oracle_seeds: a.oracle_seeds,
        false_alarm_seeds: a.false_alarm_seeds,
        bug: a.bug,
        tables: a.tables,
        json: a.json,
        command: crate::measure::table::invocation("cargo sim"),
    };
    Ok(crate::measure::suite::run(&options)?.code())
}

fn shrink(a: ShrinkArgs, targets: &Targets) -> Result<i32> {
    let target = a.target.resolve(targets)?;
    let (plan, runtime_seed, found) = match (&a.plan, a.seed) {
        (Some(path), seed) => {
            let mut plan = Plan::load(path)?;
            a.target.apply_to_plan(&mut plan)?;
            let found = format!("plan {}{}", path.display(), a.target.flags());
            (plan, seed.unwrap_or(Seed(0)), found)
        }
        (None, Some(seed)) => {
            let (_, plan, runtime_seed) = derive(&a.target.config()?, seed);
            (
                plan,
                runtime_seed,
                format!("seed {seed}{}", a.target.flags()),
            )
        }
        (None, None) => bail!("give --seed N or --plan FILE"),
    };
    let first = target.run(Arc::new(plan.clone()), runtime_seed, Keep::Tail(1))?;
    if first.outcome.passed() {
        println!("verdict: PASS: nothing to shrink");
        return Ok(Exit::Pass.code());
    }
    let label = first.outcome.label();
    println!("shrinking a {label} failure ({} ops)", plan.ops.len());
    let program = program();
    let dest = Destination::choose(None, a.budget.snapshots.as_deref(), &program);
    let fresh = WorkerCommand::this_program().ok();
    let found = Found {
        kind: &label,
        from: found,
        program: &program,
        verify: fresh.as_ref(),
    };
    crate::tooling::triage::shrink_and_keep(
        target,
        plan,
        runtime_seed,
        found,
        a.budget.options(),
        &dest,
    )?;
    Ok(first.outcome.exit_code().code())
}

fn replay(a: ReplayArgs, targets: &Targets) -> Result<i32> {
    let snap = crate::tooling::snapshot::Snapshot::load(&a.file)?;
    let target = targets
        .get(&snap.target)
        .with_context(|| format!("replaying {}", a.file.display()))?;
    let report = target.run(Arc::new(snap.plan.clone()), snap.runtime_seed, Keep::All)?;
    let (exit, said) = snap.replay_verdict(&report);
    print!("{said}");
    Ok(exit.code())
}

/// Users of the disconnect benchmark over many nodes, unless `--users` says otherwise.
const NODES_USERS: usize = 200;

fn disconnect(a: DisconnectArgs) -> Result<i32> {
    use crate::measure::disconnect::{Fault, Options};
    let defaults = Options::default();
    let nodes = a.nodes.unwrap_or(1);
    let users = if nodes > 1 {
        NODES_USERS
    } else {
        defaults.users
    };
    let opts = Options {
        users: a.users.unwrap_or(users),
        seconds: a.seconds,
        rate_per_s: a.rate,
        seed: a.seed.0,
        net: a.net.then_some(a.latency_ms),
        history: a.history.unwrap_or(defaults.history),
        bug: a.bug,
        nodes,
        fault: Fault::None,
    };
    let faults = match (a.fault, nodes) {
        (Some(f), _) => vec![f],
        (None, 1) => vec![Fault::None],
        (None, _) => Fault::ALL.to_vec(),
    };
    let (json, tables) = (a.json.as_deref(), a.tables.as_deref());
    let exit =
        crate::measure::disconnect::command(&opts, &faults, a.check_determinism, json, tables)?;
    Ok(exit.code())
}

fn tables(a: TablesArgs) -> Result<i32> {
    let pages = if a.pages.is_empty() {
        crate::measure::table::pages(std::path::Path::new("."))?
    } else {
        a.pages
    };
    let fresh = a.fresh.as_deref();
    let drift = crate::measure::table::render_or_check(&pages, &a.dir, a.check, fresh)?;
    Ok(if drift.is_empty() {
        Exit::Pass
    } else {
        Exit::Violation
    }
    .code())
}

fn merge(a: MergeArgs) -> Result<i32> {
    let m = crate::tooling::merge::merge_files(&a.files)?;
    print!("{}", m.report());
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&m)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(m.exit_code)
}

fn plan(a: PlanArgs) -> Result<i32> {
    let (_, plan, _) = derive(&a.target.config()?, a.seed);
    print!("{}", plan.to_json());
    Ok(Exit::Pass.code())
}
