//! One reading of what tabs received: the report page shows exactly the black-box oracle's
//! findings, and the verdict of a run judged by the black-box oracle is the first of them.

use std::sync::Arc;

use wsreg_sim::check::ledger::{findings, Finding};
use wsreg_sim::check::outcome::Outcome;
use wsreg_sim::generate::oracle::Oracle;
use wsreg_sim::generate::plan::Plan;
use wsreg_sim::generate::seed::Seed;
use wsreg_sim::run::recorder::Keep;
use wsreg_sim::tooling::campaign::derive;
use wsreg_sim::tooling::page;
use wsreg_sim::tooling::snapshot::{dir, Expect, Snapshot};
use wsreg_sim::tooling::target::{Target, Targets};
use wsreg_sim::zoo::Bug;

/// Runs `plan` judged by the black-box oracle alone and checks the page against the verdict.
/// Returns whether the black-box oracle found anything.
fn page_agrees_with_the_verdict(
    target: &Target,
    plan: &Plan,
    runtime_seed: Seed,
    what: &str,
) -> bool {
    let mut plan = plan.clone();
    plan.oracle = Oracle::BlackBox;
    let (limits, network) = (plan.limits.clone(), plan.net.is_some());
    let nodes = plan.net.as_ref().map_or(1, |n| n.nodes);
    let report = target
        .run(Arc::new(plan), runtime_seed, Keep::All)
        .expect("runs");
    let found = findings(
        &report.trace,
        &report.confirms,
        &report.learned,
        &limits,
        network,
        nodes,
    );
    // Every finding is on the page, once, and the page shows nothing else.
    let ledgers = page::ledgers(&report.trace, &found);
    let mut shown: Vec<(u64, String)> = ledgers
        .iter()
        .flat_map(|t| t.findings())
        .chain(page::about_senders(&found).iter().map(|(_, e)| e))
        .map(|e| (e.step, e.text.clone()))
        .collect();
    let mut all: Vec<(u64, String)> = found.iter().map(|f| (f.step, f.message.clone())).collect();
    shown.sort();
    all.sort();
    assert_eq!(
        shown, all,
        "{what}: the page's findings are not the oracle's"
    );
    // The verdict is the first finding (the liveness bound names the tabs still behind).
    if let Outcome::Violation(v) = &report.outcome {
        let first: Option<&Finding> = found.first();
        let agrees = |f: &Finding| {
            (f.step, f.message.as_str()) == (v.step, v.message.as_str())
                || (v.message.contains("ms after healing") && v.message.ends_with(&f.message))
        };
        // What the world checks itself, not on a tab: a refusal naming another user's mode,
        // managers left after every tab closed.
        let world_check = v.message.contains("was refused because its mode is")
            || v.message.contains("the backend still held that socket")
            || v.invariant == wsreg_sim::check::invariant::Invariant::I9;
        assert!(
            world_check || first.is_some_and(agrees),
            "{what}: the verdict {:?} at step {} is not the page's first finding {first:?}",
            v.message,
            v.step
        );
    }
    !found.is_empty()
}

#[test]
fn the_page_shows_the_verdicts_findings_for_every_snapshot_of_the_corpus() {
    let targets = Targets::builtin();
    let mut paths: Vec<_> = std::fs::read_dir(dir())
        .expect("snapshots/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "snap"))
        .collect();
    paths.sort();
    let mut with_findings = 0;
    for path in &paths {
        let snap = Snapshot::load(path).expect("loads");
        if snap.expect == Expect::Pass {
            continue;
        }
        let target = targets.get(&snap.target).expect("a built-in target");
        with_findings += usize::from(page_agrees_with_the_verdict(
            target,
            &snap.plan,
            snap.runtime_seed,
            &snap.name,
        ));
    }
    assert!(
        with_findings >= 20,
        "only {with_findings} snapshots with findings"
    );
}

#[test]
fn the_page_shows_the_verdicts_findings_for_failing_seeds_of_every_zoo_bug() {
    for bug in Bug::ALL {
        let target = Target::builtin(Some(bug));
        let mut failing = 0;
        for seed in 0..40 {
            let (_, plan, runtime_seed) = derive(&Default::default(), Seed(seed));
            if page_agrees_with_the_verdict(
                &target,
                &plan,
                runtime_seed,
                &format!("{bug} seed {seed}"),
            ) {
                failing += 1;
            }
            if failing == 3 {
                break;
            }
        }
    }
}
