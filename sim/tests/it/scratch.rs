//! A registry written from scratch (the one in `sim/examples/from_scratch/`, not built on
//! `wsreg::Registry`) goes through the whole pipeline by the public API alone: the correct one
//! passes a campaign; its check-then-act variant is caught, shrunk, snapshotted and replayed;
//! its determinism check runs in fresh worker processes; and the stock binary, which does not
//! know it, refuses to replay its snapshot with exit 2.

#[path = "../../examples/from_scratch/registry.rs"]
mod registry;

use std::sync::Arc;

use registry::{Scratch, Variant};
use wsreg_sim::generate::config::SimConfig;
use wsreg_sim::generate::oracle::Oracle;
use wsreg_sim::generate::seed::SeedRange;
use wsreg_sim::run::recorder::Keep;
use wsreg_sim::tooling::campaign::{derive, run_campaign, CampaignOptions, CampaignSummary};
use wsreg_sim::tooling::isolation::WorkerCommand;
use wsreg_sim::tooling::shrink::{shrink, ShrinkOptions};
use wsreg_sim::tooling::snapshot::Snapshot;
use wsreg_sim::tooling::target::{Target, Targets};

use crate::support::{sim, stderr, temp};

pub fn correct() -> Target {
    Target::new("scratch", |config, observer| {
        Scratch::new(Variant::Correct, config, observer)
    })
}

pub fn recycling() -> Target {
    Target::new("scratch-recycled-ids", |config, observer| {
        Scratch::new(Variant::RecycledIds, config, observer)
    })
}

pub fn racy() -> Target {
    Target::new("scratch-check-then-act", |config, observer| {
        Scratch::new(Variant::CheckThenAct, config, observer)
    })
}

fn campaign(target: Target, seeds: u64, oracle: Oracle) -> CampaignSummary {
    let config = SimConfig {
        oracle,
        ..SimConfig::default()
    };
    crate::support::campaign_of(target, config, seeds)
}

#[test]
fn the_correct_registry_passes_a_thousand_seeds_and_is_exercised() {
    let summary = campaign(correct(), 1_000, Oracle::Both);
    assert_eq!(summary.seeds_run, 1_000);
    assert!(summary.passed(), "{:?}", summary.failures);
    for point in [
        "resumed_recovered",
        "epoch_changed",
        "manager_reaped",
        "manager_evicted",
    ] {
        assert!(
            summary.coverage.get(point).is_some_and(|&n| n > 0),
            "{point} never reached: {:?}",
            summary.coverage
        );
    }
}

/// A correct design that differs from the core: connection numbers are reused once closed
/// (declared: its ids are not unique). No oracle may call that a bug. A tab is the client's
/// own: a receipt on a closed tab is never charged to the new tab that got its number, and a
/// crashed tab reads nothing after its crash.
#[test]
fn a_registry_that_reuses_connection_numbers_passes_under_every_oracle() {
    for (oracle, seeds) in [
        (Oracle::BlackBox, 1_000),
        (Oracle::Both, 300),
        (Oracle::WhiteBox, 300),
    ] {
        let summary = campaign(recycling(), seeds, oracle);
        assert_eq!(summary.seeds_run, seeds);
        assert!(summary.passed(), "{oracle:?}: {:?}", summary.failures);
    }
}

#[test]
fn its_check_then_act_variant_is_caught_shrunk_snapshotted_and_replayed() {
    let target = racy();
    let summary = campaign(target.clone(), 200, Oracle::Both);
    let first = summary.failing.first().expect("the race is caught");
    let label = first.outcome.label();
    assert!(
        label.starts_with("I2 ") || label.starts_with("I6 "),
        "caught as {label}"
    );
    // The black-box oracle alone catches it too: it needs nothing from the registry.
    let blind = campaign(target.clone(), 200, Oracle::BlackBox);
    assert!(!blind.passed(), "the black-box oracle missed the race");

    let (_, plan, runtime_seed) = derive(&SimConfig::default(), first.seed);
    let before = plan.ops.len();
    let s = shrink(
        &target,
        plan,
        runtime_seed,
        &label,
        ShrinkOptions::default(),
        &|_, _| {},
    )
    .expect("shrinks");
    assert!(s.plan.ops.len() <= 8, "{before} → {} ops", s.plan.ops.len());

    let snap = Snapshot::new(
        target.name(),
        s.plan,
        s.runtime_seed,
        &s.report,
        "found: test".into(),
    );
    let dir = temp("scratch-snapshots");
    let path = snap.write(&dir, &s.report).unwrap().expect("written");
    let loaded = Snapshot::load(&path).expect("loads");
    assert_eq!(loaded.target, "scratch-check-then-act");

    let targets = Targets::builtin().with(correct()).with(racy());
    let again = targets
        .get(&loaded.target)
        .expect("registered")
        .run(
            Arc::new(loaded.plan.clone()),
            loaded.runtime_seed,
            Keep::All,
        )
        .expect("runs");
    assert!(loaded.fails_as_recorded(&again), "{:?}", again.outcome);

    // The stock binary does not know this target: it says so and exits 2, running nothing.
    let out = sim(&["replay", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("no target named \"scratch-check-then-act\"") && err.contains("main_with"),
        "{err}"
    );
}

#[test]
fn its_determinism_check_runs_in_fresh_worker_processes() {
    let opts = CampaignOptions {
        jobs: 2,
        target: correct(),
        check_determinism: true,
        isolation: Some(WorkerCommand {
            program: std::env::current_exe().unwrap(),
            args: crate::isolation::WORKER_ARGS.map(String::from).to_vec(),
        }),
        ..CampaignOptions::new(SeedRange { start: 0, end: 20 })
    };
    let summary = run_campaign(&opts, &|_, _, _| {}).expect("runs");
    assert_eq!(summary.seeds_run, 20);
    assert!(summary.passed(), "{:?}", summary.failures);
}
