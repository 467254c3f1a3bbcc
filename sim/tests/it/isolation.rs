//! Seed isolation: a backend that keeps state in a `static` between seeds is caught by the
//! determinism check, because its second run is in a fresh process (this test binary, started
//! again as a worker).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use wsreg::{AgentEvent, Error, Position, Registry, Sink, UserContext};
use wsreg_sim::check::outcome::Outcome;
use wsreg_sim::generate::seed::SeedRange;
use wsreg_sim::run::backend::Backend;
use wsreg_sim::run::backend::{BoxFuture, Connected};
use wsreg_sim::tooling::campaign::{
    confirm_in_fresh_processes, derive, run_campaign, CampaignOptions,
};
use wsreg_sim::tooling::isolation::{serve_if_worker, WorkerCommand};
use wsreg_sim::tooling::shrink::ShrinkOptions;
use wsreg_sim::tooling::target::{Target, Targets};
use wsreg_sim::tooling::triage::{shrink_and_keep, Destination, Found};
use wsreg_sim::zoo::plant::{self, Plant};

/// The leak: a process-wide cache that numbers users in the order the process first saw them
/// (a team's "user id to shard" cache, say). Within one process it settles after the first seed,
/// so two runs of a seed in a row agree; but a seed replayed on its own numbers users otherwise.
static FIRST_SEEN: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());

/// The real core, with a connect that waits a moment that depends on the cache: harmless to
/// every invariant, but it moves when the process's history does.
struct ProcessCache;

impl Plant for ProcessCache {
    fn connect<'a>(
        &'a self,
        core: &'a Registry,
        ctx: &'a UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> BoxFuture<'a, Result<Connected, Error>> {
        Box::pin(async move {
            let rank = {
                let mut seen = FIRST_SEEN.lock().unwrap();
                let next = seen.len() as u64;
                *seen.entry(ctx.user_id().to_owned()).or_insert(next)
            };
            tokio::time::sleep(Duration::from_millis(rank % 7)).await;
            Backend::connect(core, ctx, sink, resume).await
        })
    }
}

fn leaky() -> Target {
    Target::from_factory("leaky", plant::factory(|_| ProcessCache))
}

/// The real core, but its fifth agent event aborts the whole process (a `panic = "abort"` build,
/// a failed FFI call, a stack overflow...): nothing a thread can catch.
#[derive(Default)]
struct AbortsOnFifthEvent {
    sends: AtomicU32,
}

impl Plant for AbortsOnFifthEvent {
    fn emit(
        &self,
        core: &Registry,
        ctx: &UserContext,
        event: AgentEvent,
    ) -> Result<Position, Error> {
        if self.sends.fetch_add(1, Ordering::Relaxed) == 4 {
            std::process::abort();
        }
        core.emit(ctx.key(), event)
    }
}

fn aborts() -> Target {
    Target::from_factory("aborts", plant::factory(|_| AbortsOnFifthEvent::default()))
}

/// Connects this process has made through [`ProcessQuota`], whichever run made them.
static CONNECTS_IN_PROCESS: AtomicU64 = AtomicU64::new(0);

/// A process-wide quota (a team's global rate limiter, say): past 400 connects in the process,
/// every connect is refused at the per-user limit. A long campaign trips it; a seed replayed on
/// its own in a fresh process never does.
struct ProcessQuota;

impl Plant for ProcessQuota {
    fn connect<'a>(
        &'a self,
        core: &'a Registry,
        ctx: &'a UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> BoxFuture<'a, Result<Connected, Error>> {
        Box::pin(async move {
            if CONNECTS_IN_PROCESS.fetch_add(1, Ordering::Relaxed) >= 400 {
                return Err(Error::UserConnectionLimit {
                    user: ctx.user_id().to_owned(),
                    max: core.config().max_connections_per_user,
                });
            }
            Backend::connect(core, ctx, sink, resume).await
        })
    }
}

fn quota() -> Target {
    Target::from_factory("process-quota", plant::factory(|_| ProcessQuota))
}

/// Not a test: the entry point this binary serves a worker's one run from, when a campaign
/// below starts it again with `WSREG_SIM_WORKER` set. Run normally, it does nothing.
#[test]
#[ignore = "the worker entry point of the isolation tests, started by them"]
fn worker_entry() {
    serve_if_worker(
        &Targets::builtin()
            .with(leaky())
            .with(aborts())
            .with(quota())
            .with(crate::scratch::correct())
            .with(crate::scratch::racy()),
    );
}

/// How this test binary is started as a worker: it runs [`worker_entry`] alone.
pub const WORKER_ARGS: [&str; 5] = [
    "isolation::worker_entry",
    "--exact",
    "--ignored",
    "--nocapture",
    "--test-threads=1",
];

fn campaign(isolation: Option<WorkerCommand>) -> u64 {
    let opts = CampaignOptions {
        jobs: 2,
        check_determinism: true,
        target: leaky(),
        isolation,
        ..CampaignOptions::new(SeedRange { start: 0, end: 12 })
    };
    let summary = run_campaign(&opts, &|_, _, _| {}).expect("runs");
    summary
        .all
        .iter()
        .filter(|r| {
            assert!(r.outcome.passed(), "seed {}: {:?}", r.seed, r.outcome);
            if let Some(d) = &r.divergence {
                // A real second run that differed, not a worker that failed to answer.
                assert!(
                    d.second.contains("in a fresh process"),
                    "seed {}: {}",
                    r.seed,
                    d.second
                );
            }
            r.divergence.is_some()
        })
        .count() as u64
}

#[test]
fn a_backend_that_keeps_state_in_a_static_is_caught_by_a_fresh_process() {
    let worker = WorkerCommand {
        program: std::env::current_exe().unwrap(),
        args: WORKER_ARGS.map(String::from).to_vec(),
    };
    // Warm the cache, as a long campaign would have.
    let _ = campaign(None);
    // Two runs in this process agree: the in-process check sees nothing.
    assert_eq!(
        campaign(None),
        0,
        "the in-process check should be blind to it"
    );
    // A fresh process numbers the users otherwise: most seeds diverge.
    let caught = campaign(Some(worker));
    assert!(
        caught >= 9,
        "only {caught} of 12 seeds diverged in a fresh process"
    );
}

#[test]
fn the_core_replays_the_same_in_a_fresh_process() {
    // The wsreg-sim binary serves the core (and the zoo) as a worker.
    let opts = CampaignOptions {
        jobs: 2,
        check_determinism: true,
        isolation: Some(WorkerCommand {
            program: env!("CARGO_BIN_EXE_wsreg-sim").into(),
            args: Vec::new(),
        }),
        ..CampaignOptions::new(SeedRange { start: 0, end: 20 })
    };
    let summary = run_campaign(&opts, &|_, _, _| {}).expect("runs");
    assert_eq!(summary.seeds_run, 20);
    assert!(summary.passed(), "{:?}", summary.failures);
}

fn worker() -> WorkerCommand {
    WorkerCommand {
        program: std::env::current_exe().unwrap(),
        args: WORKER_ARGS.map(String::from).to_vec(),
    }
}

#[test]
fn with_isolate_a_backend_that_aborts_the_process_fails_its_seeds_and_the_campaign_goes_on() {
    let opts = CampaignOptions {
        jobs: 2,
        target: aborts(),
        isolation: Some(worker()),
        isolate: true,
        ..CampaignOptions::new(SeedRange { start: 0, end: 4 })
    };
    let summary = run_campaign(&opts, &|_, _, _| {}).expect("the campaign survives");
    assert_eq!(summary.seeds_run, 4);
    for r in &summary.all {
        match &r.outcome {
            Outcome::Panic { message, by, .. } => {
                assert!(message.contains("died"), "seed {}: {message}", r.seed);
                assert_eq!(by, "the system under test");
            }
            other => panic!("seed {}: {other:?}", r.seed),
        }
    }
    // The same seeds of the core, isolated, pass with their coverage and replay the same.
    let opts = CampaignOptions {
        jobs: 2,
        isolation: Some(worker()),
        isolate: true,
        check_determinism: true,
        ..CampaignOptions::new(SeedRange { start: 0, end: 4 })
    };
    let summary = run_campaign(&opts, &|_, _, _| {}).expect("runs");
    assert!(summary.passed(), "{:?}", summary.failures);
    assert!(
        summary.coverage.values().sum::<u64>() > 0,
        "coverage was lost"
    );
}

/// A backend whose failures come from state its process kept: the campaign says so before any
/// verdict, and its shrunk plan, which fails only in the process that shrank it, is not written.
#[test]
fn a_backend_with_process_state_is_named_first_and_never_gets_a_snapshot_that_does_not_replay() {
    let base = wsreg_sim::generate::config::SimConfig::default();
    let opts = CampaignOptions {
        jobs: 1,
        target: quota(),
        ..CampaignOptions::new(SeedRange { start: 0, end: 8 })
    };
    let mut summary = run_campaign(&opts, &|_, _, _| {}).expect("runs");
    let first = summary
        .failing
        .first()
        .expect("the quota trips in a long campaign")
        .seed;
    confirm_in_fresh_processes(&mut summary, &worker(), &quota(), &base);
    let text = wsreg_sim::tooling::report::campaign(&summary);
    let warning = text.find("WARNING: NONDETERMINISM").expect(&text);
    let failures = text.find("failures:").expect(&text);
    assert!(warning < failures, "the warning comes first: {text}");
    assert!(text.contains("in a fresh process"), "{text}");

    let (_, plan, runtime_seed) = derive(&base, first);
    let dir = crate::support::temp("process-quota-snapshots");
    let label = summary.failing[0].outcome.label();
    let found = Found {
        kind: &label,
        from: format!("seed {first}"),
        program: "cargo sim",
        verify: Some(&worker()),
    };
    let kept = shrink_and_keep(
        &quota(),
        plan,
        runtime_seed,
        found,
        ShrinkOptions::default(),
        &Destination::Snapshots(dir.clone()),
    )
    .expect("shrinks");
    assert!(kept.unreproducible, "{kept:?}");
    let written = std::fs::read_dir(&dir).map_or(0, |d| d.count());
    assert_eq!(written, 0, "a snapshot that does not replay was written");
}
