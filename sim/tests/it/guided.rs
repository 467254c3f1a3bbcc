//! Guided exploration and per-site buggify: a guided campaign is the same whatever its
//! workers, keeps its pool between campaigns, and hands over failures that replay; a plan's
//! buggify sites are the only ones that fire.

use std::collections::BTreeSet;
use std::sync::Arc;

use wsreg_sim::generate::config::SimConfig;
use wsreg_sim::generate::seed::Seed;
use wsreg_sim::generate::sites::{Site, SITES};
use wsreg_sim::generate::workload::generate;
use wsreg_sim::run::recorder::Keep;
use wsreg_sim::tooling::guided::{explore, GuidedOptions, GuidedSummary};
use wsreg_sim::tooling::target::Target;
use wsreg_sim::zoo::Bug;

use crate::support::{sim, stderr, stdout, temp};

fn small() -> SimConfig {
    SimConfig {
        users: 6,
        ops: 60,
        ..SimConfig::default()
    }
}

fn guided(
    target: Target,
    runs: u64,
    jobs: usize,
    pool: Option<std::path::PathBuf>,
) -> GuidedSummary {
    let opts = GuidedOptions {
        target,
        config: small(),
        runs,
        first_seed: Seed(0),
        jobs,
        time_budget: None,
        pool,
        mutants: true,
    };
    explore(&opts, &|_, _, _, _| {}).expect("the campaign runs")
}

#[test]
fn a_guided_campaign_is_the_same_on_one_worker_or_three() {
    let one = guided(Target::core(), 48, 1, None);
    let three = guided(Target::core(), 48, 3, None);
    assert_eq!(one.runs, 48);
    assert!(one.mutants > 0 && one.kept > 0, "{one:?}");
    assert_eq!(
        (one.mutants, one.kept, one.features, &one.growth),
        (three.mutants, three.kept, three.features, &three.growth)
    );
    assert!(
        one.failures.is_empty(),
        "the core failed: {:?}",
        one.failures.keys()
    );
}

#[test]
fn a_pool_is_kept_and_a_later_campaign_starts_from_it() {
    let dir = temp("guided-pool");
    let _ = std::fs::remove_dir_all(&dir);
    let first = guided(Target::core(), 24, 2, Some(dir.clone()));
    let files = std::fs::read_dir(&dir).expect("the pool dir").count();
    assert_eq!(files, first.kept);
    let second = guided(Target::core(), 8, 2, Some(dir.clone()));
    assert_eq!(second.loaded, first.kept);
    assert_eq!(second.features_before, first.features);
    assert!(second.features >= first.features);
    // A campaign of another target leaves them alone.
    let other = guided(Target::builtin(Some(Bug::B4)), 1, 1, Some(dir.clone()));
    assert_eq!(other.loaded, 0);
    // A file that is not an entry stops the campaign with its name, instead of being skipped.
    std::fs::write(dir.join("junk.json"), "[1, 2]").expect("written");
    let opts = GuidedOptions {
        target: Target::core(),
        config: small(),
        runs: 1,
        first_seed: Seed(0),
        jobs: 1,
        time_budget: None,
        pool: Some(dir.clone()),
        mutants: true,
    };
    let err = explore(&opts, &|_, _, _, _| {})
        .expect_err("a junk entry")
        .to_string();
    assert!(err.contains("junk.json"), "{err}");
}

#[test]
fn a_guided_failure_replays_from_its_plan() {
    let target = Target::builtin(Some(Bug::B1));
    let s = guided(target.clone(), 16, 2, None);
    let (count, first) = s.failures.values().next().expect("B1 fails");
    assert!(*count > 0);
    let again = target
        .run(
            Arc::new(first.plan.clone()),
            first.runtime_seed,
            Keep::Tail(1),
        )
        .expect("runs");
    assert_eq!(again.outcome.label(), first.label);
}

#[test]
fn only_a_plans_buggify_sites_fire() {
    let mut plan = generate(&small(), Seed(3));
    plan.buggify = true;
    let run = |plan: &wsreg_sim::generate::plan::Plan| {
        Target::core()
            .run(Arc::new(plan.clone()), Seed(1), Keep::Tail(1))
            .expect("runs")
            .coverage
    };
    let everywhere = run(&plan);
    let fired = |c: &wsreg_sim::check::coverage::Coverage| -> BTreeSet<&str> {
        SITES.iter().map(|s| s.1).filter(|p| c.get(p) > 0).collect()
    };
    assert!(fired(&everywhere).len() >= 4, "{:?}", fired(&everywhere));
    plan.buggify_sites = Some([Site::Emit, Site::Close].into_iter().collect());
    let two = fired(&run(&plan));
    assert!(!two.is_empty());
    assert!(
        two.is_subset(&["buggify_emit", "buggify_close"].into_iter().collect()),
        "{two:?}"
    );
    plan.buggify = false;
    assert!(fired(&run(&plan)).is_empty());
}

#[test]
fn explore_prints_what_it_kept_and_how_to_replay_a_failure() {
    let dir = temp("guided-cli");
    let _ = std::fs::remove_dir_all(&dir);
    let pool = dir.to_str().expect("a path");
    let out = sim(&[
        "explore",
        "--runs",
        "16",
        "--users",
        "6",
        "--ops",
        "60",
        "--target",
        "B1",
        "--pool",
        pool,
        "--no-shrink",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("explored: 16 runs"), "{text}");
    let replay = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("replay: cargo sim "))
        .unwrap_or_else(|| panic!("no replay line: {text}"));
    let args: Vec<&str> = replay.split(' ').collect();
    let again = sim(&args);
    assert_eq!(again.status.code(), Some(1), "{}", stdout(&again));
    // With a store, the second campaign finds only what the first one kept: nothing new.
    let store = temp("guided-store");
    let _ = std::fs::remove_dir_all(&store);
    let store = store.to_str().expect("a path");
    let pool = temp("guided-store-pool");
    let _ = std::fs::remove_dir_all(&pool);
    let pool = pool.to_str().expect("a path");
    let args = [
        "explore", "--runs", "16", "--users", "6", "--ops", "60", "--target", "B1", "--store",
        store, "--pool", pool,
    ];
    let first = sim(&args);
    assert_eq!(first.status.code(), Some(1), "{}", stdout(&first));
    let second = sim(&args);
    assert_eq!(second.status.code(), Some(0), "{}", stdout(&second));
    assert!(
        stdout(&second).contains("store: 0 new failure(s)"),
        "{}",
        stdout(&second)
    );
    let out = sim(&["explore", "--runs", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--runs"), "{}", stderr(&out));
}

#[test]
fn a_runs_features_are_its_points_and_each_users_adjacent_steps() {
    use wsreg_sim::tooling::guided::features::features;
    let plan = generate(&small(), Seed(5));
    let report = Target::core()
        .run(Arc::new(plan), Seed(2), Keep::All)
        .expect("runs");
    let f = features(&report);
    // Every point hit is there once, with its hits in powers of two.
    for (point, hits) in &report.coverage.hits {
        if *hits > 0 {
            assert!(f.contains(&format!("{point}@{}", hits.ilog2())), "{point}");
        }
    }
    let pairs: Vec<&String> = f.iter().filter(|x| x.contains('>')).collect();
    assert!(pairs.iter().any(|p| p.starts_with("Connect>")), "{pairs:?}");
    // Some pairs fell in one instant (a connect and its registration), some did not.
    assert!(pairs.iter().any(|p| p.contains(">=")), "{pairs:?}");
    assert!(pairs.iter().any(|p| !p.contains(">=")), "{pairs:?}");
    // The same run, the same features.
    let plan = generate(&small(), Seed(5));
    let again = Target::core()
        .run(Arc::new(plan), Seed(2), Keep::All)
        .expect("runs");
    assert_eq!(features(&again), f);
}
