//! Failures found from large random plans shrink to a handful of ops, and their snapshots
//! replay to the same violation in a fresh process.

use wsreg_sim::generate::config::SimConfig;
use wsreg_sim::tooling::campaign::{derive, run_campaign, CampaignOptions};
use wsreg_sim::tooling::shrink::{shrink, ShrinkOptions};
use wsreg_sim::tooling::snapshot::Snapshot;
use wsreg_sim::tooling::target::Target;
use wsreg_sim::zoo::Bug;

use crate::support::{sim, stdout, temp};

fn shrinks_to_a_handful(bug: Bug) {
    let opts = CampaignOptions {
        jobs: 2,
        target: Target::builtin(Some(bug)),
        ..CampaignOptions::new("0..100".parse().unwrap())
    };
    let summary = run_campaign(&opts, &|_, _, _| {}).unwrap();
    let first = summary.failing.first().expect("caught");
    let (label, seed) = (first.outcome.label(), first.seed);
    let (_, plan, runtime_seed) = derive(&SimConfig::default(), seed);
    assert!(plan.ops.len() >= 100, "not a large plan");
    let s = shrink(
        &Target::builtin(Some(bug)),
        plan,
        runtime_seed,
        &label,
        ShrinkOptions::default(),
        &|_, _| {},
    )
    .unwrap();
    assert!(!s.exhausted, "{bug}: the budget ran out");
    assert!(
        s.plan.ops.len() <= 6,
        "{bug}: {} ops left",
        s.plan.ops.len()
    );
    assert!(
        s.report.trace.len() < 150,
        "{bug}: {} trace lines",
        s.report.trace.len()
    );
    let snap = Snapshot::new(
        &bug.to_string(),
        s.plan,
        s.runtime_seed,
        &s.report,
        "found: test".into(),
    );
    let dir = temp(&format!("snapshots-{bug}"));
    let path = snap.write(&dir, &s.report).unwrap().expect("written");
    assert!(
        snap.write(&dir, &s.report).unwrap().is_none(),
        "an identical rewrite"
    );
    let out = sim(&["replay", path.to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "replays as recorded: {text}");
    assert!(
        text.contains("still failing the same way at the same step"),
        "{text}"
    );
    assert!(text.contains(&label), "{text}");
}

#[test]
fn check_then_act_shrinks_to_a_handful_of_ops() {
    shrinks_to_a_handful(Bug::B3);
}

#[test]
fn limit_outside_the_lock_shrinks_to_a_handful_of_ops() {
    shrinks_to_a_handful(Bug::B11);
}

#[test]
fn thread_id_routing_shrinks_to_a_handful_of_ops() {
    shrinks_to_a_handful(Bug::B16);
}
