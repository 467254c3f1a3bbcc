//! The command line: `run`, `fuzz`, `plan`, `bench`, `shrink`, `replay`, `disconnect`, `tables`,
//! `merge`. Parses flags, calls the library, prints, and maps outcomes to the fixed exit codes of
//! [`crate::outcome`].

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::campaign::{check_determinism, derive, run_campaign, CampaignOptions};
use crate::config::SimConfig;
use crate::invariant::Oracle;
use crate::isolation::WorkerCommand;
use crate::outcome::{
    campaign_exit_code, EXIT_NONDETERMINISM, EXIT_PASS, EXIT_REPLAY_DIFFERS,
    EXIT_REPLAY_NOW_PASSES, EXIT_USAGE, EXIT_VIOLATION, NONDETERMINISM,
};
use crate::plan::Plan;
use crate::recorder::Keep;
use crate::report;
use crate::seed::{Seed, SeedRange};
use crate::target::{Target, Targets};
use crate::zoo::Bug;

/// wsreg-sim: seeded deterministic simulation of wsreg's per-user WebSocket managers.
///
/// Exit codes: 0 pass, 1 invariant violation (or a panic in the system under test), 2 usage or
/// input error, 3 stuck (liveness), 4 nondeterminism. `replay`: 0 as recorded, 5 now passes,
/// 6 fails differently, 2 cannot run.
#[derive(Debug, Parser)]
#[command(name = "wsreg-sim", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one seed (or a plan file) and print its verdict, summary and trace.
    Run(RunArgs),
    /// Run a campaign over a range of seeds, in parallel.
    Fuzz(FuzzArgs),
    /// Print the plan a seed generates, as a JSON plan file to edit and `run --plan`.
    Plan(PlanArgs),
    /// Measure throughput side by side: checked harness, bare madsim, 10 vs 10,000 users.
    Bench(BenchArgs),
    /// Shrink a failing seed (or plan) to a minimal plan and write it as a snapshot.
    Shrink(ShrinkArgs),
    /// Re-run a snapshot and say whether it still fails the same way (exit 0), now passes (5),
    /// fails differently (6), or cannot run (2).
    Replay(ReplayArgs),
    /// The disconnect benchmark: every user's socket closed by force again and again while its
    /// agent emits; counts what clients lost, with and without a gap marker.
    Disconnect(DisconnectArgs),
    /// Re-render the README's tables from the measured tables' JSON (`--check`: fail on drift).
    Tables(TablesArgs),
    /// Merge the JSON summaries of a campaign's shards: checks they cover its range exactly
    /// once, counts each failure once per invariant and shrunk plan, and exits as `fuzz` would.
    Merge(MergeArgs),
    /// Write a self-contained HTML page of a snapshot or a `run --json` record: swimlanes over
    /// virtual time, the violating step explained, each tab's delivery ledger, a filter by user.
    Report(ReportArgs),
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// A snapshot (`snapshots/NAME.snap`) or a run record (`run --json FILE`).
    file: PathBuf,
    /// Where the page goes [default: beside FILE, as NAME.html].
    #[arg(short, long, value_name = "PAGE")]
    output: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct MergeArgs {
    /// The shards' summaries (`fuzz --shard i/n --json FILE`).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Write the merged summary as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct TablesArgs {
    /// The README whose `<!-- table: NAME -->` blocks are rendered.
    #[arg(long, default_value = "README.md")]
    readme: PathBuf,
    /// The committed tables, one `NAME.json` each.
    #[arg(long, default_value = "docs/tables")]
    dir: PathBuf,
    /// Do not write: exit 1 when the README differs from what the tables render.
    #[arg(long)]
    check: bool,
    /// Also compare the tables of a fresh measurement in this directory with the committed ones:
    /// every count must match (wall-clock cells may differ).
    #[arg(long)]
    fresh: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct DisconnectArgs {
    /// Users, each with one client and one agent.
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// Virtual seconds the agents emit for.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Events each agent emits per second.
    #[arg(long, default_value_t = 2)]
    rate: u64,
    /// The runtime seed (decimal or 0x hex).
    #[arg(long, default_value = "0")]
    seed: Seed,
    /// Go through the real WebSocket server over simulated TCP instead of in process.
    #[arg(long)]
    net: bool,
    /// With --net: per-packet latency in ms, `MIN..MAX`.
    #[arg(long, value_parser = parse_latency, requires = "net", default_value = "1..10")]
    latency_ms: [u64; 2],
    /// Messages each user's history retains [default: the core's, 256].
    #[arg(long)]
    history: Option<usize>,
    /// Run a planted bug from the zoo instead of the real core.
    #[arg(long)]
    bug: Option<Bug>,
    /// Run twice, on fresh threads, and require byte-identical summaries.
    #[arg(long)]
    check_determinism: bool,
    /// Also write the summary as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also write the table as JSON into this directory, for `tables`.
    #[arg(long)]
    tables: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
struct ShrinkBudget {
    /// Most runs one shrink may spend.
    #[arg(long, default_value_t = 2_000)]
    max_runs: usize,
    /// Most wall time one shrink may spend, e.g. `2m`.
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    max_time: Duration,
    /// Where snapshots are written [default: the workspace's `snapshots/` for `wsreg-sim`,
    /// `./snapshots` for a team's own binary].
    #[arg(long, value_name = "DIR")]
    snapshots: Option<PathBuf>,
}

impl ShrinkBudget {
    fn options(&self) -> crate::shrink::ShrinkOptions {
        crate::shrink::ShrinkOptions {
            max_runs: self.max_runs,
            max_time: self.max_time,
            ..Default::default()
        }
    }
}

#[derive(Debug, Args)]
struct ShrinkArgs {
    /// The failing seed. With --plan, the runtime seed [default: 0].
    #[arg(long)]
    seed: Option<Seed>,
    /// Shrink this JSON plan file instead of a seed's plan.
    #[arg(long)]
    plan: Option<PathBuf>,
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    budget: ShrinkBudget,
}

#[derive(Debug, Args)]
struct ReplayArgs {
    /// The snapshot file (`snapshots/<name>.snap`).
    file: PathBuf,
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// Rounds per throughput row (the median is reported; 0 skips the throughput rows).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Work per round, as a multiple of the default (1 to 100).
    #[arg(long, default_value_t = 1)]
    scale: u64,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also write each printed table as JSON into this directory, for `tables`.
    #[arg(long)]
    tables: Option<PathBuf>,
    /// Seeds per zoo bug for the detection table (0 skips it).
    #[arg(long, default_value_t = 1_000)]
    zoo_seeds: u64,
    /// Seeds per zoo bug through the real server over the simulated network (0 skips it).
    #[arg(long, default_value_t = 200)]
    net_seeds: u64,
    /// Seeds per zoo bug and oracle for the three-oracle table (0 skips it).
    #[arg(long, default_value_t = 200)]
    oracle_seeds: u64,
    /// Seeds of the real core per oracle, counting false alarms in the three-oracle table.
    #[arg(long, default_value_t = 10_000)]
    false_alarm_seeds: u64,
    /// Measure only this zoo bug (and skip the throughput rows and the core's false alarms).
    #[arg(long)]
    bug: Option<Bug>,
}

/// What to run against, and the base config.
#[derive(Debug, Args, Clone)]
struct TargetArgs {
    /// What to run against: `core` (the default), a planted bug from the zoo (`B1`, `B3` to
    /// `B26`), or a backend this binary registered under a name.
    #[arg(long, visible_alias = "bug", value_name = "NAME")]
    target: Option<String>,
    /// Which oracles judge the runs: `both`, `black-box` (only what clients see and calls
    /// return) or `white-box` (only the backend's own account) [default: both].
    #[arg(long, value_enum)]
    oracle: Option<Oracle>,
    /// Simulated users per seed [default: 50].
    #[arg(long)]
    users: Option<usize>,
    /// Client operations per seed [default: 400].
    #[arg(long)]
    ops: Option<usize>,
    /// Use the base config for every seed instead of a per-seed swarm variation.
    #[arg(long)]
    no_swarm: bool,
    /// Go through the real WebSocket server on a simulated node, with clients on another,
    /// over simulated TCP with latency, partitions and server restarts.
    #[arg(long)]
    net: bool,
    /// With --net: per-packet latency in ms, `MIN..MAX` [default: 1..10].
    #[arg(long, value_parser = parse_latency, requires = "net")]
    latency_ms: Option<[u64; 2]>,
    /// With --net: percent of packets lost, 0 to 10 [default: 2].
    #[arg(long, requires = "net")]
    loss_percent: Option<u8>,
    /// With --net: partitions per seed [default: 2].
    #[arg(long, requires = "net")]
    partitions: Option<u32>,
    /// With --net: server restarts per seed [default: 1].
    #[arg(long, requires = "net")]
    restarts: Option<u32>,
}

fn parse_latency(s: &str) -> Result<[u64; 2], String> {
    let err = || format!("{s:?} is not a latency range: write MIN..MAX in ms, e.g. 1..10");
    let (lo, hi) = s.split_once("..").ok_or_else(err)?;
    let (lo, hi) = (
        lo.parse().map_err(|_| err())?,
        hi.parse().map_err(|_| err())?,
    );
    if lo > hi {
        return Err(err());
    }
    Ok([lo, hi])
}

impl TargetArgs {
    /// The target these flags name, among `targets`.
    fn resolve<'a>(&self, targets: &'a Targets) -> Result<&'a Target> {
        Ok(targets.get(self.target.as_deref().unwrap_or("core"))?)
    }

    fn config(&self) -> Result<SimConfig> {
        let mut c = SimConfig::default();
        if let Some(o) = self.oracle {
            c.oracle = o;
        }
        if let Some(u) = self.users {
            c.users = u;
        }
        if let Some(o) = self.ops {
            c.ops = o;
        }
        c.swarm = !self.no_swarm;
        if self.net {
            let mut net = crate::config::NetConfig::default();
            if let Some(l) = self.latency_ms {
                net.latency_ms = l;
            }
            if let Some(l) = self.loss_percent {
                net.loss_percent = l;
            }
            if let Some(p) = self.partitions {
                net.partitions = p;
            }
            if let Some(r) = self.restarts {
                net.restarts = r;
            }
            c.net = Some(net);
        }
        c.validate()?;
        Ok(c)
    }

    /// Applies these flags to a plan file's plan: the oracle and the network apply; the
    /// flags that shape a generated plan (users, ops, swarm, fault counts) are refused, since
    /// a plan file lists its own users, ops and faults.
    fn apply_to_plan(&self, plan: &mut Plan) -> Result<()> {
        let generated_only = [
            ("--users", self.users.is_some()),
            ("--ops", self.ops.is_some()),
            ("--no-swarm", self.no_swarm),
            ("--partitions", self.partitions.is_some()),
            ("--restarts", self.restarts.is_some()),
        ];
        if let Some((flag, _)) = generated_only.iter().find(|(_, given)| *given) {
            bail!(
                "{flag} shapes the plan a seed generates and does not apply to a plan file, \
                 which lists its own users, ops and faults: edit the file instead"
            );
        }
        if let Some(o) = self.oracle {
            plan.oracle = o;
        }
        if self.net {
            let defaults = crate::config::NetConfig::default();
            let net = plan.net.get_or_insert_with(|| crate::plan::NetPlan {
                latency_ms: defaults.latency_ms,
                loss_percent: defaults.loss_percent,
                faults: Vec::new(),
            });
            if let Some(l) = self.latency_ms {
                net.latency_ms = l;
            }
            if let Some(l) = self.loss_percent {
                net.loss_percent = l;
            }
        }
        plan.validate()?;
        Ok(())
    }

    /// The flags that reproduce this target, for replay lines.
    fn flags(&self) -> String {
        let switch = |on: bool| on.then(String::new);
        let flags = [
            ("--target", self.target.clone()),
            ("--oracle", self.oracle.map(|o| o.name().to_owned())),
            ("--users", self.users.map(|u| u.to_string())),
            ("--ops", self.ops.map(|o| o.to_string())),
            ("--no-swarm", switch(self.no_swarm)),
            ("--net", switch(self.net)),
            (
                "--latency-ms",
                self.latency_ms.map(|[lo, hi]| format!("{lo}..{hi}")),
            ),
            ("--loss-percent", self.loss_percent.map(|l| l.to_string())),
            ("--partitions", self.partitions.map(|p| p.to_string())),
            ("--restarts", self.restarts.map(|r| r.to_string())),
        ];
        let mut f = String::new();
        for (flag, value) in flags {
            match value.as_deref() {
                Some("") => f.push_str(&format!(" {flag}")),
                Some(v) => f.push_str(&format!(" {flag} {v}")),
                None => {}
            }
        }
        f
    }
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The seed (decimal or 0x hex). With --plan, the runtime seed [default: 0].
    #[arg(long)]
    seed: Option<Seed>,
    /// Run this JSON plan file instead of a generated plan.
    #[arg(long)]
    plan: Option<PathBuf>,
    #[command(flatten)]
    target: TargetArgs,
    /// Run twice, on fresh threads, and compare the traces.
    #[arg(long)]
    check_determinism: bool,
    /// Print every step, not just the last ones.
    #[arg(long)]
    full_trace: bool,
    /// Also write the run as JSON to this file: target, runtime seed, plan, replay command,
    /// outcome, counts and trace hash (what `report` makes a page of).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also write the run's report page (self-contained HTML) to this file.
    #[arg(long, value_name = "PAGE")]
    page: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct FuzzArgs {
    /// Seeds to run, `A..B` (half-open) or one seed; decimal or 0x hex.
    #[arg(long, default_value = "0..10000")]
    seeds: SeedRange,
    /// Parallel workers [default: the number of cores].
    #[arg(long)]
    jobs: Option<usize>,
    /// Stop starting new seeds after this long, e.g. `60s` or `10m`.
    #[arg(long, value_parser = humantime::parse_duration)]
    time_budget: Option<Duration>,
    /// Run only shard `i` of `n` (every n-th seed from the i-th), e.g. `0/4`.
    #[arg(long, default_value = "0/1", value_parser = parse_shard)]
    shard: (u64, u64),
    #[command(flatten)]
    target: TargetArgs,
    /// Run every seed twice and compare the traces; the second run is in a fresh process, so
    /// state a backend keeps between seeds (a static) shows too.
    #[arg(long)]
    check_determinism: bool,
    /// With --check-determinism: the second run on a fresh thread of this process instead
    /// (faster; blind to state kept in the process between seeds).
    #[arg(long, requires = "check_determinism", conflicts_with = "isolate")]
    same_process: bool,
    /// Run every seed in a fresh process of its own, so a backend that aborts the process
    /// fails that seed instead of ending the campaign.
    #[arg(long)]
    isolate: bool,
    /// Write the summary as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write a JUnit report to this file: one test case per failure kind, a failing one
    /// carrying the command that reproduces it.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Do not shrink failures into snapshots.
    #[arg(long, conflicts_with = "store")]
    no_shrink: bool,
    /// A store of known failures: each failure is shrunk and written there as a snapshot
    /// unless the store holds one that fails the same way (same target, transport, invariant
    /// and check, whatever the seed). Known failures are counted but
    /// not reported as new, and the exit code is 0 unless a failure is new.
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
    #[command(flatten)]
    budget: ShrinkBudget,
}

#[derive(Debug, Args)]
struct PlanArgs {
    /// The seed.
    #[arg(long)]
    seed: Seed,
    #[command(flatten)]
    target: TargetArgs,
}

fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let err = || format!("{s:?} is not a shard: write i/n with i < n, e.g. 0/4");
    let (i, n) = s.split_once('/').ok_or_else(err)?;
    let (i, n): (u64, u64) = (i.parse().map_err(|_| err())?, n.parse().map_err(|_| err())?);
    if n == 0 || i >= n {
        return Err(err());
    }
    Ok((i, n))
}

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
/// [`crate::isolation`]), so call it first thing in `main`:
///
/// ```no_run
/// use wsreg_sim::target::{Target, Targets};
/// // Any `wsreg::Backend`: here the real core, as a stand-in for a team's own registry.
/// let targets = Targets::builtin().with(Target::new("ours", wsreg_sim::backend::registry));
/// std::process::exit(wsreg_sim::cli::main_with(targets));
/// ```
pub fn main_with(targets: Targets) -> i32 {
    quiet_on_closed_pipe();
    crate::isolation::serve_if_worker(&targets);
    let cli = Cli::parse();
    let t = &targets;
    let result = match cli.command {
        Command::Run(a) => run(a, t),
        Command::Fuzz(a) => fuzz(a, t),
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
            EXIT_USAGE
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
    println!("{}", report::verdict(&report));
    println!("{}", report::summary(&report));
    let mut code = report.outcome.exit_code();
    if a.check_determinism {
        let again = |keep| target.run(Arc::clone(&plan), runtime_seed, keep);
        match check_determinism(&again, &report)? {
            None => println!(
                "determinism: replayed identically (hash {:#018x})",
                report.hash
            ),
            Some(d) => {
                println!(
                    "determinism: NONDETERMINISM, first differing step {}:\n  run 1: {}\n  run 2: {}",
                    d.step, d.first, d.second
                );
                code = EXIT_NONDETERMINISM;
            }
        }
    }
    if !report.outcome.passed() || a.full_trace {
        print!("{}", report::trace_excerpt(&report, a.full_trace));
    }
    if let Some(path) = &a.json {
        let record = crate::page::RunRecord {
            version: crate::page::RUN_RECORD_VERSION,
            target: target.name(),
            runtime_seed,
            replay: &replay,
            plan: &plan,
            report: &report,
        };
        std::fs::write(path, serde_json::to_string_pretty(&record)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &a.page {
        let name = path
            .file_stem()
            .map_or_else(|| "run".to_owned(), |s| s.to_string_lossy().into_owned());
        let source = crate::page::PageSource {
            name,
            target: target.name().to_owned(),
            runtime_seed,
            plan: (*plan).clone(),
            replay: replay.clone(),
            found: None,
            recorded: crate::page::Recorded::Nothing,
        };
        crate::page::write(path, &crate::page::render(&source, &report))?;
        println!("page written: {}", path.display());
    }
    println!("replay: {replay}");
    Ok(code)
}

/// `report FILE`: re-runs the snapshot's or record's plan and writes its page.
fn report_page(a: ReportArgs, targets: &Targets) -> Result<i32> {
    let source = crate::page::PageSource::load(&a.file)?;
    let target = targets
        .get(&source.target)
        .with_context(|| format!("making a page of {}", a.file.display()))?;
    let report = target.run(
        Arc::new(source.plan.clone()),
        source.runtime_seed,
        Keep::All,
    )?;
    let out = a.output.unwrap_or_else(|| crate::page::beside(&a.file));
    let page = crate::page::render(&source, &report);
    crate::page::write(&out, &page)?;
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
    Ok(EXIT_PASS)
}

fn fuzz(a: FuzzArgs, targets: &Targets) -> Result<i32> {
    let target = a.target.resolve(targets)?;
    let config = a.target.config()?;
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    if jobs == 0 || jobs > 256 {
        bail!("--jobs must be 1 to 256");
    }
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
    let total = a.seeds.shard_len(a.shard.0, a.shard.1);
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} seeds  {per_sec}  eta {eta}  {msg}",
            )
            .expect("template"),
        );
        bar
    });
    let step = (total / 10).max(1);
    let progress = |done: u64, total: u64, failures: u64| match &bar {
        Some(bar) => {
            bar.set_position(done);
            bar.set_message(format!("{failures} failing"));
        }
        None if done % step == 0 || done == total => {
            eprintln!("progress: {done}/{total} seeds, {failures} failing");
        }
        None => {}
    };
    let mut summary = run_campaign(&opts, &progress)?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    print!("{}", report::campaign(&summary));
    let mut written = std::collections::BTreeSet::new();
    let mut shrunk = Vec::new();
    for (label, g) in &summary.failures {
        println!(
            "replay: {} run --seed {}{}",
            program(),
            g.first_seed,
            a.target.flags()
        );
        if a.no_shrink || label == NONDETERMINISM {
            continue;
        }
        if let Some(store) = a.store.as_deref() {
            let first = summary.failing.iter().find(|r| r.seed == g.first_seed);
            let network = config_for_shrink.net.is_some();
            let alike = match first {
                Some(r) => crate::store::alike(store, target, network, &r.outcome)?,
                None => None,
            };
            if let Some(name) = alike {
                println!("store: known failure {label}: fails like {name} (not shrunk again)");
                shrunk.push((label.clone(), name, true));
                continue;
            }
        }
        let (_, plan, runtime_seed) = derive(&config_for_shrink, g.first_seed);
        let found = format!("seed {}{}", g.first_seed, a.target.flags());
        let store = a.store.as_deref();
        let (name, known) =
            shrink_and_write(target, plan, runtime_seed, label, found, &a.budget, store)?;
        shrunk.push((label.clone(), name.clone(), known));
        written.insert(name);
    }
    for (label, name, known) in shrunk {
        if let Some(g) = summary.failures.get_mut(&label) {
            g.snapshot = Some(name);
            g.known = known;
        }
    }
    let new: Vec<&String> = summary
        .failures
        .iter()
        .filter(|(_, g)| !g.known)
        .map(|(label, _)| label)
        .collect();
    if a.store.is_some() {
        let known = summary.failures.len() - new.len();
        if new.is_empty() {
            println!("store: no new failures ({known} known)");
        } else {
            let names: Vec<&str> = new.iter().map(|l| l.as_str()).collect();
            println!(
                "store: {} new failure(s): {} ({known} known)",
                new.len(),
                names.join(", ")
            );
        }
    }
    if !written.is_empty() {
        println!(
            "snapshots: {}",
            written.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&summary)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &a.junit {
        let flags = a.target.flags();
        let repro = |kind: &str, seed: Seed| {
            let check = if kind == NONDETERMINISM {
                " --check-determinism"
            } else {
                ""
            };
            format!("{} run --seed {seed}{flags}{check}", program())
        };
        std::fs::write(path, crate::junit::report(&summary, &repro))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(campaign_exit_code(
        summary.failures.iter().map(|(k, g)| (k.as_str(), g.known)),
        summary.failing.iter().map(|r| (r.seed.0, &r.outcome)),
    ))
}

fn bench(a: BenchArgs) -> Result<i32> {
    if a.rounds > 50 || a.scale == 0 || a.scale > 100 {
        bail!("--rounds must be 0 to 50 and --scale 1 to 100");
    }
    let throughput = match (a.bug, a.rounds) {
        (Some(_), _) | (None, 0) => None,
        (None, rounds) => Some(crate::bench::run(rounds, a.scale)?),
    };
    let command = crate::table::invocation("cargo sim");
    let mut printed = Vec::new();
    if let Some(b) = &throughput {
        show(&mut printed, crate::bench::table(b, &command));
    }
    let bugs: Vec<Bug> = a.bug.map_or_else(|| Bug::ALL.to_vec(), |b| vec![b]);
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    let zoo = if a.zoo_seeds == 0 {
        Vec::new()
    } else {
        let progress = |bug: Bug| eprintln!("zoo: measuring {bug}");
        crate::detection::measure(&bugs, a.zoo_seeds, jobs, &progress)?
    };
    if !zoo.is_empty() {
        show(&mut printed, crate::detection::table(&zoo, &command));
    }
    let net_zoo = if a.net_seeds == 0 {
        Vec::new()
    } else {
        let progress = |bug: Bug| eprintln!("zoo through the network: measuring {bug}");
        crate::detection::measure_net(&bugs, a.net_seeds, jobs, &progress)?
    };
    if !net_zoo.is_empty() {
        show(
            &mut printed,
            crate::detection::table_net(&net_zoo, &command),
        );
    }
    let oracles = if a.oracle_seeds == 0 {
        Vec::new()
    } else {
        let progress = |t: &str| eprintln!("oracles: measuring {t}");
        let core = if a.bug.is_some() {
            0
        } else {
            a.false_alarm_seeds
        };
        crate::oracles::measure(&bugs, a.oracle_seeds, core, jobs, &progress)?
    };
    if !oracles.is_empty() {
        show(&mut printed, crate::oracles::table(&oracles, &command));
    }
    if let Some(dir) = &a.tables {
        for t in &printed {
            t.write_to(dir)?;
        }
    }
    if let Some(path) = &a.json {
        let all = serde_json::json!({
            "throughput": throughput,
            "zoo": zoo,
            "net_zoo": net_zoo,
            "oracles": oracles,
        });
        std::fs::write(path, serde_json::to_string_pretty(&all)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let missed = zoo.iter().filter(|r| !r.caught_as_expected).count();
    Ok(if missed == 0 {
        EXIT_PASS
    } else {
        EXIT_VIOLATION
    })
}

/// Prints a table after the ones before it, and keeps it for `--tables`.
fn show(printed: &mut Vec<crate::table::Table>, table: crate::table::Table) {
    if !printed.is_empty() {
        println!();
    }
    print!("{}", table.markdown());
    printed.push(table);
}

/// Shrinks one failure, writes its snapshot, prints where; returns the snapshot's name.
fn shrink_and_write(
    target: &Target,
    plan: Plan,
    runtime_seed: Seed,
    label: &str,
    found: String,
    budget: &ShrinkBudget,
    store: Option<&std::path::Path>,
) -> Result<(String, bool)> {
    let before = plan.ops.len();
    let progress = |runs: usize, ops: usize| {
        if std::io::stderr().is_terminal() {
            eprint!("\rshrinking {label}: {runs} runs, {ops} ops left   ");
        }
    };
    let s = crate::shrink::shrink(
        target,
        plan,
        runtime_seed,
        label,
        budget.options(),
        &progress,
    )?;
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
    let found = format!(
        "found: {found}; plan shrunk from {before} to {} ops in {} runs ({:.1} s){}",
        s.plan.ops.len(),
        s.runs,
        s.elapsed.as_secs_f64(),
        if s.exhausted {
            ", budget exhausted: may not be minimal"
        } else {
            ""
        }
    );
    let snap =
        crate::snapshot::Snapshot::new(target.name(), s.plan, s.runtime_seed, &s.report, found)
            .replayed_by(&program());
    let in_ci = std::env::var_os("CI").is_some_and(|v| v != "false" && v != "0");
    if let Some(store) = store {
        // The store is written wherever it runs, CI included: it is the campaign's memory.
        return Ok(match snap.write(store, &s.report)? {
            Some(path) => {
                let page = page_beside(&snap, &path, &s.report)?;
                println!(
                    "store: new failure, written: {} (page: {})",
                    path.display(),
                    page.display()
                );
                (snap.name, false)
            }
            None => {
                println!("store: known failure {} (already stored)", snap.name);
                (snap.name, true)
            }
        });
    }
    if in_ci {
        println!(
            "snapshot {} (not written: CI never writes snapshots)",
            snap.name
        );
        print!("{}", snap.body(&s.report));
    } else {
        let dir = budget.snapshots.clone().unwrap_or_else(|| {
            if program() == "cargo sim" {
                crate::snapshot::dir()
            } else {
                PathBuf::from("snapshots")
            }
        });
        match snap.write(&dir, &s.report)? {
            Some(path) => {
                let page = page_beside(&snap, &path, &s.report)?;
                println!(
                    "snapshot written: {} (page: {})",
                    path.display(),
                    page.display()
                );
            }
            None => println!("snapshot {} (unchanged)", snap.name),
        }
    }
    Ok((snap.name, false))
}

/// Writes a freshly written snapshot's page beside it (`NAME.html`).
fn page_beside(
    snap: &crate::snapshot::Snapshot,
    path: &std::path::Path,
    report: &crate::world::RunReport,
) -> Result<PathBuf> {
    let out = crate::page::beside(path);
    let source = crate::page::PageSource::from_snapshot(snap.clone());
    crate::page::write(&out, &crate::page::render(&source, report))?;
    Ok(out)
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
        return Ok(EXIT_PASS);
    }
    let label = first.outcome.label();
    println!("shrinking a {label} failure ({} ops)", plan.ops.len());
    shrink_and_write(target, plan, runtime_seed, &label, found, &a.budget, None)?;
    Ok(first.outcome.exit_code())
}

fn replay(a: ReplayArgs, targets: &Targets) -> Result<i32> {
    use crate::snapshot::{Expect, Snapshot};
    let snap = Snapshot::load(&a.file)?;
    let target = targets
        .get(&snap.target)
        .with_context(|| format!("replaying {}", a.file.display()))?;
    let report = target.run(Arc::new(snap.plan.clone()), snap.runtime_seed, Keep::All)?;
    let now = report::verdict(&report);
    let now_line = now.lines().next().unwrap_or_default();
    println!("recorded: {}", snap.verdict);
    println!("now:      {now_line}");
    Ok(match (snap.expect, report.outcome.passed()) {
        (Expect::Pass, true) => {
            println!("replay: passes, as expected (a core bug that has been fixed)");
            EXIT_PASS
        }
        (Expect::Fail, true) => {
            println!("replay: NOW PASSES (the recorded failure no longer happens)");
            EXIT_REPLAY_NOW_PASSES
        }
        (Expect::Fail, false) if snap.fails_as_recorded(&report) => {
            println!("replay: still failing the same way at the same step");
            EXIT_PASS
        }
        (_, false) => {
            println!("replay: FAILS DIFFERENTLY\n{now}");
            print!("{}", report::trace_excerpt(&report, false));
            EXIT_REPLAY_DIFFERS
        }
    })
}

fn disconnect(a: DisconnectArgs) -> Result<i32> {
    use crate::disconnect::{markdown, run, Options};
    let opts = Options {
        users: a.users,
        seconds: a.seconds,
        rate_per_s: a.rate,
        seed: a.seed.0,
        net: a.net.then_some(a.latency_ms),
        history: a.history.unwrap_or(Options::default().history),
        bug: a.bug,
    };
    let (summary, wall) = run(&opts)?;
    let printed = markdown(&summary);
    print!("{printed}");
    println!(
        "wall time {:.2} s ({:.0} messages read per wall second; not part of the summary)",
        wall.as_secs_f64(),
        summary.delivered as f64 / wall.as_secs_f64().max(1e-9)
    );
    let mut code = if summary.unsignalled_gaps == 0 && summary.duplicates == 0 {
        EXIT_PASS
    } else {
        EXIT_VIOLATION
    };
    if a.check_determinism {
        let (again, _) = run(&opts)?;
        if markdown(&again) == printed {
            println!("determinism: the second run printed the same summary, byte for byte");
        } else {
            println!(
                "determinism: NONDETERMINISM, the second run printed:\n{}",
                markdown(&again)
            );
            code = EXIT_NONDETERMINISM;
        }
    }
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&summary)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(dir) = &a.tables {
        crate::disconnect::table(&summary, &crate::table::invocation("cargo sim")).write_to(dir)?;
    }
    Ok(code)
}

fn tables(a: TablesArgs) -> Result<i32> {
    use crate::table::{check_readme, render_readme, Table};
    let readme = std::fs::read_to_string(&a.readme)
        .with_context(|| format!("reading {}", a.readme.display()))?;
    let mut drift = Vec::new();
    if let Some(fresh) = &a.fresh {
        let mut names: Vec<String> = std::fs::read_dir(fresh)
            .with_context(|| format!("reading {}", fresh.display()))?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|f| f.strip_suffix(".json").map(str::to_owned))
            .collect();
        names.sort();
        if names.is_empty() {
            bail!("{} holds no tables", fresh.display());
        }
        for name in &names {
            let committed = Table::read(&a.dir, name)?;
            drift.extend(committed.count_drift(&Table::read(fresh, name)?));
            println!("tables: {name}: compared with {}", a.dir.display());
        }
    }
    if a.check {
        match check_readme(&readme, &a.dir) {
            Ok(used) => println!(
                "tables: the README shows {} tables as committed",
                used.len()
            ),
            Err(e) => drift.push(e.to_string()),
        }
    } else {
        let (rendered, used) = render_readme(&readme, &a.dir)?;
        std::fs::write(&a.readme, rendered)
            .with_context(|| format!("writing {}", a.readme.display()))?;
        println!(
            "tables: rendered {} tables into {}",
            used.len(),
            a.readme.display()
        );
    }
    for d in &drift {
        println!("drift: {d}");
    }
    Ok(if drift.is_empty() {
        EXIT_PASS
    } else {
        EXIT_VIOLATION
    })
}

fn merge(a: MergeArgs) -> Result<i32> {
    let m = crate::merge::merge_files(&a.files)?;
    println!(
        "merged: {} shard(s) of {} against {}{}: {} seeds run{}",
        m.shards.len(),
        m.range,
        m.target,
        if m.network { " (network)" } else { "" },
        m.seeds_run,
        if m.seeds_missing == 0 {
            ", the range covered exactly once".to_owned()
        } else {
            format!(
                ", {} seed(s) unrun (a time budget ran out); no seed twice",
                m.seeds_missing
            )
        }
    );
    if m.failures.is_empty() {
        println!("failures: none");
    } else {
        println!("failures:");
    }
    for f in &m.failures {
        println!(
            "  {}: {} seed(s), first {} (shards {}){}: {}",
            f.kind,
            f.count,
            f.first_seed,
            f.shards.join(", "),
            f.snapshot
                .as_ref()
                .map_or(String::new(), |s| format!(", snapshot {s}")),
            f.message
        );
    }
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&m)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(m.exit_code)
}

fn plan(a: PlanArgs) -> Result<i32> {
    let (_, plan, _) = derive(&a.target.config()?, a.seed);
    print!("{}", plan.to_json());
    Ok(EXIT_PASS)
}
