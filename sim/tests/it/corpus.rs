//! The regression corpus: every snapshot under `snapshots/` is replayed, and its re-derived
//! trace and diagram are asserted through insta, so any change of behaviour on a known scenario
//! shows up as a snapshot diff to review. CI sets INSTA_UPDATE=no, so it never writes them.

use std::sync::Arc;

use wsreg_sim::run::recorder::Keep;
use wsreg_sim::tooling::snapshot::{dir, Expect, Snapshot};
use wsreg_sim::tooling::target::Targets;

#[test]
fn every_snapshot_replays_as_recorded() {
    let dir = dir();
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("snapshots/ exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "snap"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 2, "the corpus is missing: {paths:?}");
    let targets = Targets::builtin();
    for path in paths {
        let snap = Snapshot::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let hash = wsreg_sim::tooling::snapshot::plan_hash(&snap.plan, &snap.target);
        assert!(
            snap.name.ends_with(&format!("-{hash}")),
            "{}: its name does not match its plan and target (hash {hash}): was it edited?",
            snap.name
        );
        let target = targets.get(&snap.target).unwrap_or_else(|e| panic!("{e}"));
        let report = target
            .run(Arc::new(snap.plan.clone()), snap.runtime_seed, Keep::All)
            .expect("runs");
        match snap.expect {
            Expect::Pass => assert!(
                report.outcome.passed(),
                "{}: a fixed core bug is back: {:?}",
                snap.name,
                report.outcome
            ),
            Expect::Fail => {
                assert!(!report.outcome.passed(), "{} no longer fails", snap.name);
                assert!(
                    report.trace.len() < 150,
                    "{}: trace too long to read",
                    snap.name
                );
                let mut settings = insta::Settings::clone_current();
                settings.set_snapshot_path(&dir);
                settings.set_prepend_module_to_snapshot(false);
                // Verdict and story re-derived from this run, not copied from the file.
                let now = snap.rederived(&report);
                settings.bind(|| insta::assert_snapshot!(snap.name.clone(), now.body(&report)));
            }
        }
    }
}

#[test]
fn every_zoo_bug_has_a_snapshot() {
    let mut covered = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(dir()).expect("snapshots/ exists") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "snap") {
            let snap = Snapshot::load(&path).unwrap_or_else(|e| panic!("{e}"));
            covered.extend(snap.target.parse::<wsreg_sim::zoo::Bug>().ok());
        }
    }
    let missing: Vec<_> = wsreg_sim::zoo::Bug::ALL
        .iter()
        .filter(|b| !covered.contains(b))
        .collect();
    assert!(
        missing.is_empty(),
        "zoo bugs without a snapshot (shrink one: cargo sim shrink --seed N --bug Bn): {missing:?}"
    );
    let mut targets = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(dir()).expect("snapshots/ exists") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "snap") {
            targets.insert(
                Snapshot::load(&path)
                    .unwrap_or_else(|e| panic!("{e}"))
                    .target,
            );
        }
    }
    let missing: Vec<String> = wsreg_sim::zoo::nodes::NodeBug::ALL
        .iter()
        .map(ToString::to_string)
        .filter(|b| !targets.contains(b))
        .collect();
    assert!(
        missing.is_empty(),
        "bugs of many nodes without a snapshot (cargo sim shrink --seed N --bug Nn --net --nodes 3): {missing:?}"
    );
}

#[test]
fn snapshots_holds_only_reviewed_snapshots() {
    let stray: Vec<String> = std::fs::read_dir(dir())
        .expect("snapshots/ exists")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| match name.strip_suffix(".html") {
            // A snapshot's report page (written beside it by `shrink`; not committed).
            Some(stem) => !dir().join(format!("{stem}.snap")).exists(),
            None => !name.ends_with(".snap") || name.ends_with(".snap.new"),
        })
        .collect();
    assert!(
        stray.is_empty(),
        "unreviewed or unreferenced files in snapshots/ (review them, then commit or delete): {stray:?}"
    );
}

#[test]
fn a_hand_edited_snapshot_is_a_clear_error() {
    let text = "---\nsource: x\n---\nverdict: PASS\ntarget: core\nexpect: fail\nruntime seed: 0x1\nplan:\n{\"version\": 1, \"users\": [], \"ops\": [{\"at_ms\": 0}]}\ntrace (\n";
    let err = Snapshot::parse(text, std::path::Path::new("edited.snap"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("edited.snap") && err.contains("plan"), "{err}");
}
