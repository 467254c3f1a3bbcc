//! The same seed replays identically: across processes, across threads, from a plan file.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use wsreg::{Error, Position, Registry, Sink, UserContext};
use wsreg_sim::generate::config::SimConfig;
use wsreg_sim::generate::plan::Plan;
use wsreg_sim::generate::seed::Seed;
use wsreg_sim::run::backend::{Backend, BoxFuture, Connected};
use wsreg_sim::run::recorder::Keep;
use wsreg_sim::run::runtime::run_plan;
use wsreg_sim::tooling::campaign::{check_determinism, derive, run_campaign, CampaignOptions};
use wsreg_sim::tooling::target::Target;
use wsreg_sim::zoo::plant::{self, Plant};

use crate::support::{hash_of, sim, temp};

#[test]
fn the_same_seed_gives_the_same_trace_hash_in_two_processes() {
    for mode in [&[][..], &["--net"][..]] {
        let name = if mode.is_empty() { "process" } else { "net" };
        let (a, b) = (
            temp(&format!("{name}-a.json")),
            temp(&format!("{name}-b.json")),
        );
        let run = |seed: &str, path: &std::path::Path| {
            let mut args = vec!["run", "--seed", seed, "--json", path.to_str().unwrap()];
            args.extend_from_slice(mode);
            sim(&args)
        };
        for path in [&a, &b] {
            let out = run("0x2a", path);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}",
                crate::support::stdout(&out)
            );
        }
        assert_eq!(hash_of(&a), hash_of(&b), "{name}");
        let other = temp(&format!("{name}-c.json"));
        run("0x2b", &other);
        assert_ne!(hash_of(&a), hash_of(&other), "different seeds, same trace");
    }
}

#[test]
fn a_hundred_seeds_in_a_row_replay_identically() {
    let opts = CampaignOptions {
        jobs: 2,
        check_determinism: true,
        ..CampaignOptions::new("0..100".parse().unwrap())
    };
    let summary = run_campaign(&opts, &|_, _, _| {}).unwrap();
    assert_eq!(summary.seeds_run, 100);
    assert!(summary.passed(), "{:?}", summary.failures);
    assert!(
        summary.steps > 100_000,
        "the campaign barely ran: {} steps",
        summary.steps
    );
}

#[test]
fn a_plan_file_round_trips_to_the_same_trace() {
    let (_, plan, runtime_seed) = derive(&SimConfig::default(), Seed(7));
    let path = temp("seed7.plan.json");
    plan.save(&path).unwrap();
    let loaded = Plan::load(&path).unwrap();
    assert_eq!(plan, loaded);
    let direct = Target::core()
        .run(Arc::new(plan), runtime_seed, Keep::Tail(1))
        .unwrap();
    let from_file = Target::core()
        .run(Arc::new(loaded), runtime_seed, Keep::Tail(1))
        .unwrap();
    assert!(direct.outcome.passed());
    assert_eq!(direct.hash, from_file.hash);
    // And through the CLI, in another process.
    let json = temp("seed7.report.json");
    let seed = runtime_seed.to_string();
    let out = sim(&[
        "run",
        "--plan",
        path.to_str().unwrap(),
        "--seed",
        &seed,
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(hash_of(&json), direct.hash);
}

/// A backend that is wrong in the way determinism checks exist for: its schedule depends on
/// process-global state (a counter that survives from one run to the next). Planted in the
/// real core, it replaces only the connect.
struct LeaksProcessState;

static CALLS: AtomicU64 = AtomicU64::new(0);

impl Plant for LeaksProcessState {
    fn connect<'a>(
        &'a self,
        core: &'a Registry,
        ctx: &'a UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> BoxFuture<'a, Result<Connected, Error>> {
        let extra = CALLS.fetch_add(1, Ordering::Relaxed) % 3;
        Box::pin(async move {
            for _ in 0..extra {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            Backend::connect(core, ctx, sink, resume).await
        })
    }
}

#[test]
fn a_schedule_that_depends_on_process_state_is_caught() {
    let (_, plan, seed) = derive(&SimConfig::default(), Seed(1));
    let plan = Arc::new(plan);
    let a = run_plan(
        plant::factory(|_| LeaksProcessState),
        Arc::clone(&plan),
        seed.0,
        Keep::All,
    )
    .unwrap();
    let b = run_plan(
        plant::factory(|_| LeaksProcessState),
        Arc::clone(&plan),
        seed.0,
        Keep::All,
    )
    .unwrap();
    assert_ne!(a.hash, b.hash, "the leak did not change the schedule");
    let d = wsreg_sim::tooling::campaign::first_difference(&a.trace, &b.trace);
    assert!(d.step >= 1 && d.first != d.second, "{d:?}");
    // The real core, checked the same way, replays.
    let core = Target::core()
        .run(Arc::clone(&plan), seed, Keep::Tail(1))
        .unwrap();
    let again = |keep| Target::core().run(Arc::clone(&plan), seed, keep);
    assert_eq!(check_determinism(&again, &core).unwrap(), None);
}
