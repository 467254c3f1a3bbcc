//! The command line's arguments: what each command takes, parsed by clap. Nothing here
//! decides anything; [`super`] dispatches to the library.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use super::target::parse_latency;
use crate::generate::oracle::Oracle;
use crate::generate::seed::{Seed, SeedRange};
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
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run one seed (or a plan file) and print its verdict, summary and trace.
    Run(RunArgs),
    /// Run a campaign over a range of seeds, in parallel.
    Fuzz(FuzzArgs),
    /// Run a coverage-guided campaign: keep the plans that reached something new (a coverage
    /// point, a new pair of adjacent steps for one user) and run mutants of them.
    Explore(ExploreArgs),
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
pub(crate) struct ReportArgs {
    /// A snapshot (`snapshots/NAME.snap`) or a run record (`run --json FILE`).
    pub(crate) file: PathBuf,
    /// Where the page goes [default: beside FILE, as NAME.html].
    #[arg(short, long, value_name = "PAGE")]
    pub(crate) output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct MergeArgs {
    /// The shards' summaries (`fuzz --shard i/n --json FILE`).
    #[arg(required = true)]
    pub(crate) files: Vec<PathBuf>,
    /// Write the merged summary as JSON to this file.
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct TablesArgs {
    /// The pages whose `<!-- table: NAME -->` blocks are rendered [default: README.md and
    /// every docs/*.md].
    #[arg(long = "page", value_name = "FILE")]
    pub(crate) pages: Vec<PathBuf>,
    /// The committed tables, one `NAME.json` each.
    #[arg(long, default_value = "docs/tables")]
    pub(crate) dir: PathBuf,
    /// Do not write: exit 1 when the README differs from what the tables render.
    #[arg(long)]
    pub(crate) check: bool,
    /// Also compare the tables of a fresh measurement in this directory with the committed ones:
    /// every count must match (wall-clock cells may differ).
    #[arg(long)]
    pub(crate) fresh: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct DisconnectArgs {
    /// Users, each with one client and one agent [default: 10,000; 200 with --nodes].
    #[arg(long)]
    pub(crate) users: Option<usize>,
    /// Virtual seconds the agents emit for.
    #[arg(long, default_value_t = 60)]
    pub(crate) seconds: u64,
    /// Events each agent emits per second.
    #[arg(long, default_value_t = 2)]
    pub(crate) rate: u64,
    /// The runtime seed (decimal or 0x hex).
    #[arg(long, default_value = "0")]
    pub(crate) seed: Seed,
    /// Go through the real WebSocket server over simulated TCP instead of in process.
    #[arg(long)]
    pub(crate) net: bool,
    /// With --net: per-packet latency in ms, `MIN..MAX`.
    #[arg(long, value_parser = parse_latency, requires = "net", default_value = "1..10")]
    pub(crate) latency_ms: [u64; 2],
    /// Messages each user's history retains [default: the core's, 256].
    #[arg(long)]
    pub(crate) history: Option<usize>,
    /// Run a planted bug from the zoo instead of the real core.
    #[arg(long)]
    pub(crate) bug: Option<Bug>,
    /// With --net: N real server nodes over the simulated store, each connect sent to the next
    /// node; the benchmark then runs once per store or node fault, each played at half time,
    /// and prints one row per fault.
    #[arg(long, requires = "net")]
    pub(crate) nodes: Option<u32>,
    /// With --nodes: run this fault only.
    #[arg(long, requires = "nodes")]
    pub(crate) fault: Option<crate::measure::disconnect::Fault>,
    /// Run twice, on fresh threads, and require byte-identical summaries.
    #[arg(long)]
    pub(crate) check_determinism: bool,
    /// Also write the summary as JSON to this file.
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
    /// Also write the table as JSON into this directory, for `tables`.
    #[arg(long)]
    pub(crate) tables: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub(crate) struct ShrinkBudget {
    /// Most runs one shrink may spend.
    #[arg(long, default_value_t = 2_000)]
    pub(crate) max_runs: usize,
    /// Most wall time one shrink may spend, e.g. `2m`.
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    pub(crate) max_time: Duration,
    /// Where snapshots are written [default: the workspace's `snapshots/` for `wsreg-sim`,
    /// `./snapshots` for a team's own binary].
    #[arg(long, value_name = "DIR")]
    pub(crate) snapshots: Option<PathBuf>,
}

impl ShrinkBudget {
    pub(crate) fn options(&self) -> crate::tooling::shrink::ShrinkOptions {
        crate::tooling::shrink::ShrinkOptions {
            max_runs: self.max_runs,
            max_time: self.max_time,
            ..Default::default()
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct ShrinkArgs {
    /// The failing seed. With --plan, the runtime seed [default: 0].
    #[arg(long)]
    pub(crate) seed: Option<Seed>,
    /// Shrink this JSON plan file instead of a seed's plan.
    #[arg(long)]
    pub(crate) plan: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    #[command(flatten)]
    pub(crate) budget: ShrinkBudget,
}

#[derive(Debug, Args)]
pub(crate) struct ReplayArgs {
    /// The snapshot file (`snapshots/<name>.snap`).
    pub(crate) file: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Rounds per throughput row (the median is reported; 0 skips the throughput rows).
    #[arg(long, default_value_t = 3)]
    pub(crate) rounds: usize,
    /// Work per round, as a multiple of the default (1 to 100).
    #[arg(long, default_value_t = 1)]
    pub(crate) scale: u64,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
    /// Also write each printed table as JSON into this directory, for `tables`.
    #[arg(long)]
    pub(crate) tables: Option<PathBuf>,
    /// Seeds per zoo bug for the detection table (0 skips it).
    #[arg(long, default_value_t = 1_000)]
    pub(crate) zoo_seeds: u64,
    /// Seeds per zoo bug through the real server over the simulated network (0 skips it).
    #[arg(long, default_value_t = 200)]
    pub(crate) net_seeds: u64,
    /// Seeds per bug and way of exploring (buggify everywhere or per site, same-instant
    /// latency, pauses, short histories, all of them) in process, through the network and over
    /// many nodes, each run until ten failed (0 skips those tables).
    #[arg(long, default_value_t = 200)]
    pub(crate) explore_seeds: u64,
    /// Runs of the real core per mode, fresh seeds only and guided (`explore`), for the
    /// guidance table; its bugs, the network's five hardest, run as many runs as
    /// --explore-seeds (0 skips that table).
    #[arg(long, default_value_t = 1_000)]
    pub(crate) guided_runs: u64,
    /// Seeds per bug of many nodes (and of the core over many nodes) for their table, over
    /// three nodes with node and store faults (0 skips it).
    #[arg(long, default_value_t = 200)]
    pub(crate) node_seeds: u64,
    /// Seeds per zoo bug and oracle for the three-oracle table (0 skips it).
    #[arg(long, default_value_t = 200)]
    pub(crate) oracle_seeds: u64,
    /// Seeds of the real core per oracle, counting false alarms in the three-oracle table.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) false_alarm_seeds: u64,
    /// Measure only this zoo bug (and skip the throughput rows and the core's false alarms).
    #[arg(long)]
    pub(crate) bug: Option<Bug>,
}

/// What to run against, and the base config.
#[derive(Debug, Args, Clone, serde::Serialize)]
pub(crate) struct TargetArgs {
    /// What to run against: `core` (the default), a planted bug from the zoo (`B1`, `B3` to
    /// `B29`), or a backend this binary registered under a name.
    #[arg(long, visible_alias = "bug", value_name = "NAME")]
    pub(crate) target: Option<String>,
    /// Which oracles judge the runs: `both`, `black-box` (only what clients see and calls
    /// return) or `white-box` (only the backend's own account) [default: both].
    #[arg(long, value_enum)]
    pub(crate) oracle: Option<Oracle>,
    /// Simulated users per seed [default: 50].
    #[arg(long)]
    pub(crate) users: Option<usize>,
    /// Client operations per seed [default: 400].
    #[arg(long)]
    pub(crate) ops: Option<usize>,
    /// Use the base config for every seed instead of a per-seed swarm variation.
    #[arg(long)]
    pub(crate) no_swarm: bool,
    /// Where buggify adds yields: at every site (`everywhere`, the default), at the sites each
    /// seed switches on (`sites`), or nowhere (`off`).
    #[arg(long, value_enum)]
    pub(crate) buggify: Option<Buggify>,
    /// Go through the real WebSocket server on a simulated node, with clients on another,
    /// over simulated TCP with latency, partitions and server restarts.
    #[arg(long)]
    pub(crate) net: bool,
    /// With --net: per-packet latency in ms, `MIN..MAX` [default: 1..10].
    #[arg(long, value_parser = parse_latency, requires = "net")]
    #[serde(serialize_with = "super::target::latency_flag")]
    pub(crate) latency_ms: Option<[u64; 2]>,
    /// With --net: percent of packets lost, 0 to 10 [default: 2].
    #[arg(long, requires = "net")]
    pub(crate) loss_percent: Option<u8>,
    /// With --net: partitions per seed [default: 2].
    #[arg(long, requires = "net")]
    pub(crate) partitions: Option<u32>,
    /// With --net: server restarts per seed [default: 1].
    #[arg(long, requires = "net")]
    pub(crate) restarts: Option<u32>,
    /// With --net: no seed gets one fixed latency (swarm gives a quarter of the seeds one, so
    /// that what is sent together arrives in the same instant).
    #[arg(long, requires = "net")]
    pub(crate) no_same_instant: bool,
    /// With --net: no seed gets a short history (swarm gives two thirds of the seeds one of 2 to 8
    /// messages, so that trims and gap markers happen all the time).
    #[arg(long, requires = "net")]
    pub(crate) no_short_history: bool,
    /// With --net: no seed gets a short server connect timeout (swarm gives half the seeds one
    /// of 5 to 60 ms, 20 to 300 with --nodes, so the server drops some connects halfway).
    #[arg(long, requires = "net")]
    pub(crate) no_connect_deadlines: bool,
    /// With --net: pauses per seed of a server node (with --nodes, now and then the store's):
    /// what reaches it meanwhile runs together when it resumes [default: 3].
    #[arg(long, requires = "net")]
    pub(crate) pauses: Option<u32>,
    /// With --net: server nodes over one simulated stream store, 1 to 8 [default: 1]. With 2 or
    /// more, each seed also plays every store fault once: a restart (everything lost), a
    /// cut between one node and the store, a slow spell, a failover to a replica missing the
    /// newest writes, a flush, an eviction, a silence and late pushes (swarm turns each off
    /// for a quarter of the seeds).
    #[arg(long, requires = "net")]
    pub(crate) nodes: Option<u32>,
    /// With --nodes: failovers per seed to a replica missing each stream's newest writes
    /// [default: 1].
    #[arg(long, requires = "nodes")]
    pub(crate) failovers: Option<u32>,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The seed (decimal or 0x hex). With --plan, the runtime seed [default: 0].
    #[arg(long)]
    pub(crate) seed: Option<Seed>,
    /// Run this JSON plan file instead of a generated plan.
    #[arg(long)]
    pub(crate) plan: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    /// Run twice, on fresh threads, and compare the traces.
    #[arg(long)]
    pub(crate) check_determinism: bool,
    /// Print every step, not just the last ones.
    #[arg(long)]
    pub(crate) full_trace: bool,
    /// Also write the run as JSON to this file: target, runtime seed, plan, replay command,
    /// outcome, counts and trace hash (what `report` makes a page of).
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
    /// Also write the run's report page (self-contained HTML) to this file.
    #[arg(long, value_name = "PAGE")]
    pub(crate) page: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct FuzzArgs {
    /// Seeds to run, `A..B` (half-open) or one seed; decimal or 0x hex.
    #[arg(long, default_value = "0..10000")]
    pub(crate) seeds: SeedRange,
    /// Parallel workers [default: the number of cores].
    #[arg(long)]
    pub(crate) jobs: Option<usize>,
    /// Stop starting new seeds after this long, e.g. `60s` or `10m`.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub(crate) time_budget: Option<Duration>,
    /// Run only shard `i` of `n` (every n-th seed from the i-th), e.g. `0/4`.
    #[arg(long, default_value = "0/1", value_parser = parse_shard)]
    pub(crate) shard: (u64, u64),
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    /// Run every seed twice and compare the traces; the second run is in a fresh process, so
    /// state a backend keeps between seeds (a static) shows too.
    #[arg(long)]
    pub(crate) check_determinism: bool,
    /// With --check-determinism: the second run on a fresh thread of this process instead
    /// (faster; blind to state kept in the process between seeds).
    #[arg(long, requires = "check_determinism", conflicts_with = "isolate")]
    pub(crate) same_process: bool,
    /// Run every seed in a fresh process of its own, so a backend that aborts the process
    /// fails that seed instead of ending the campaign.
    #[arg(long)]
    pub(crate) isolate: bool,
    /// Write the summary as JSON to this file.
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
    /// Write a JUnit report to this file: one test case per failure kind, a failing one
    /// carrying the command that reproduces it.
    #[arg(long, value_name = "FILE")]
    pub(crate) junit: Option<PathBuf>,
    /// Do not shrink failures into snapshots.
    #[arg(long, conflicts_with = "store")]
    pub(crate) no_shrink: bool,
    /// A store of known failures: each failure is shrunk and written there as a snapshot
    /// unless the store holds one that fails the same way (same target, transport, invariant
    /// and check, whatever the seed). Known failures are counted but
    /// not reported as new, and the exit code is 0 unless a failure is new.
    #[arg(long, value_name = "DIR")]
    pub(crate) store: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) budget: ShrinkBudget,
}

#[derive(Debug, Args)]
pub(crate) struct ExploreArgs {
    /// Runs in all: fresh seeds and mutants of kept plans.
    #[arg(long, default_value_t = 2_000)]
    pub(crate) runs: u64,
    /// The first fresh seed; fresh seeds count up from it.
    #[arg(long, default_value = "0")]
    pub(crate) seed: Seed,
    /// Parallel workers [default: the number of cores].
    #[arg(long)]
    pub(crate) jobs: Option<usize>,
    /// Stop starting runs after this long, e.g. `60s` or `10m`.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub(crate) time_budget: Option<Duration>,
    /// Where the corpus is kept between campaigns (created when missing): a JSON file per
    /// kept plan. A campaign starts from the entries of its target and transport.
    #[arg(long, value_name = "DIR")]
    pub(crate) pool: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    /// Run fresh seeds only, counting features as a guided campaign does: what guidance is
    /// measured against.
    #[arg(long)]
    pub(crate) no_mutants: bool,
    /// Do not shrink failures into snapshots (their plans are still written, to replay).
    #[arg(long, conflicts_with = "store")]
    pub(crate) no_shrink: bool,
    /// A store of known failures, as `fuzz --store` keeps it: a failure it already holds a
    /// snapshot of (same target, transport, invariant and check) is counted but not new, and
    /// a new one is shrunk into it. The exit code is 0 unless a failure is new.
    #[arg(long, value_name = "DIR")]
    pub(crate) store: Option<PathBuf>,
    /// Write the summary as JSON to this file.
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) budget: ShrinkBudget,
}

#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    /// The seed.
    #[arg(long)]
    pub(crate) seed: Seed,
    #[command(flatten)]
    pub(crate) target: TargetArgs,
}

pub(crate) fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let err = || format!("{s:?} is not a shard: write i/n with i < n, e.g. 0/4");
    let (i, n) = s.split_once('/').ok_or_else(err)?;
    let (i, n): (u64, u64) = (i.parse().map_err(|_| err())?, n.parse().map_err(|_| err())?);
    if n == 0 || i >= n {
        return Err(err());
    }
    Ok((i, n))
}

/// Where buggify adds yields (`--buggify`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Buggify {
    /// At the sites each seed switches on.
    Sites,
    /// At every site.
    Everywhere,
    /// Nowhere.
    Off,
}
