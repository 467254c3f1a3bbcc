//! Report pages: one for every snapshot of the corpus, the page of a run record, a page of hostile
//! ids and a page of a long run. Each is written to `target/report-pages/`, where
//! `scripts/browser-check` opens them in a real browser.

use std::path::PathBuf;
use std::sync::Arc;

use wsreg_sim::generate::config::SimConfig;
use wsreg_sim::generate::plan::Plan;
use wsreg_sim::generate::seed::Seed;
use wsreg_sim::run::recorder::Keep;
use wsreg_sim::tooling::campaign;
use wsreg_sim::tooling::page::{self, PageSource, MAX_BYTES, MAX_STEPS};
use wsreg_sim::tooling::snapshot;
use wsreg_sim::tooling::target::Targets;

use crate::support::{sim, stdout, temp};

fn pages_dir() -> PathBuf {
    let dir = snapshot::dir()
        .parent()
        .expect("snapshots/ has a parent")
        .join("target/report-pages");
    std::fs::create_dir_all(&dir).expect("target/report-pages");
    dir
}

/// The JSON document a page carries.
fn data_of(page: &str) -> serde_json::Value {
    let start = page
        .find("<script type=\"application/json\" id=\"data\">")
        .expect("the page carries its data")
        + "<script type=\"application/json\" id=\"data\">".len();
    let end = start + page[start..].find("</script>").expect("data closes");
    serde_json::from_str(&page[start..end]).expect("the data is JSON")
}

fn page_of(source: &PageSource) -> (String, wsreg_sim::run::world::RunReport) {
    let target = Targets::builtin()
        .get(&source.target)
        .expect("a built-in target")
        .clone();
    let report = target
        .run(
            Arc::new(source.plan.clone()),
            source.runtime_seed,
            Keep::All,
        )
        .expect("runs");
    (page::render(source, &report), report)
}

#[test]
fn every_snapshot_has_a_page_that_shows_its_violation() {
    let mut paths: Vec<_> = std::fs::read_dir(snapshot::dir())
        .expect("snapshots/ exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "snap"))
        .collect();
    paths.sort();
    let out = pages_dir();
    for path in &paths {
        let source = PageSource::load(path).unwrap_or_else(|e| panic!("{e}"));
        let (page, report) = page_of(&source);
        let name = &source.name;
        assert!(page.len() < MAX_BYTES, "{name}: {} bytes", page.len());
        assert!(
            source.mismatch(&report).is_none(),
            "{name} replays differently"
        );
        assert!(!page.contains("class=\"mismatch\""), "{name}");
        let data = data_of(&page);
        let violation = match &report.outcome {
            wsreg_sim::check::outcome::Outcome::Violation(v) => {
                assert!(
                    page.contains(&*quick_xml::escape::escape(v.invariant.promise())),
                    "{name}: no rule"
                );
                serde_json::json!(v.step)
            }
            _ => serde_json::Value::Null,
        };
        assert_eq!(data["violation"], violation, "{name}");
        let steps = data["steps"].as_array().expect("steps");
        assert_eq!(
            steps.len(),
            report.trace.len(),
            "{name}: a snapshot's page holds every step"
        );
        if !violation.is_null() {
            assert!(steps.iter().any(|s| s[0] == violation), "{name}");
        }
        assert!(page.contains(&source.replay), "{name}: no replay command");
        std::fs::write(out.join(format!("{name}.html")), &page).expect("page written");
    }
    assert!(paths.len() >= 25, "the corpus is missing");
}

#[test]
fn report_makes_the_same_page_from_a_run_record_as_run_does() {
    let record = temp("b16.json");
    let (a, b) = (temp("a"), temp("b"));
    std::fs::create_dir_all(&a).expect("dir");
    std::fs::create_dir_all(&b).expect("dir");
    let from_run = a.join("b16.html");
    let out = sim(&[
        "run",
        "--seed",
        "3",
        "--bug",
        "B16",
        "--json",
        record.to_str().expect("utf-8"),
        "--page",
        from_run.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let from_record = b.join("b16.html");
    let out = sim(&[
        "report",
        record.to_str().expect("utf-8"),
        "-o",
        from_record.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("VIOLATION I1"), "{}", stdout(&out));
    let (x, y) = (
        std::fs::read_to_string(&from_run).expect("page"),
        std::fs::read_to_string(&from_record).expect("page"),
    );
    assert!(x == y, "the two pages differ");
    assert!(
        x.contains("run --seed 0x3"),
        "the page names the replay command"
    );
    std::fs::write(pages_dir().join("run-record-B16.html"), &x).expect("page written");
}

#[test]
fn report_refuses_what_is_not_a_snapshot_or_run_record() {
    let summary = temp("summary.json");
    std::fs::write(&summary, "{\"version\": 1, \"seeds\": 10}").expect("write");
    let out = sim(&["report", summary.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    let err = crate::support::stderr(&out);
    assert!(
        err.contains("summary.json") && err.contains("neither a snapshot"),
        "{err}"
    );
    let edited = temp("edited.snap");
    std::fs::write(&edited, "---\nsource: x\n---\nverdict: PASS\n").expect("write");
    let out = sim(&["report", edited.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(crate::support::stderr(&out).contains("edited.snap"));
    assert!(
        !temp("edited.html").exists(),
        "nothing is written for bad input"
    );
}

#[test]
fn hostile_ids_stay_text() {
    let plan = Plan::from_json(
        r#"{"version": 1,
            "users": [{"name": "</script><script>document.title='pwned'</script>", "thread": "t1"},
                      {"name": "{{SCRIPT}}", "thread": "t2"}],
            "ops": [{"at_ms": 0, "user": "</script><script>document.title='pwned'</script>", "op": "connect"},
                    {"at_ms": 0, "user": "{{SCRIPT}}", "op": "connect"},
                    {"at_ms": 5, "user": "{{SCRIPT}}", "op": "run", "tools": 1, "thinking": 1, "step_ms": 1}]}"#,
        "hostile",
    )
    .expect("a valid plan");
    let source = PageSource {
        name: "hostile-ids".into(),
        target: "core".into(),
        runtime_seed: Seed(1),
        plan,
        replay: "cargo sim run --plan hostile.json".into(),
        found: None,
        recorded: page::Recorded::Nothing,
    };
    let (page, _) = page_of(&source);
    assert_eq!(
        page.matches("</script>").count(),
        2,
        "only the page's own scripts close"
    );
    assert_eq!(page.matches("<script").count(), 2);
    let data = data_of(&page);
    let users: Vec<&str> = data["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u.as_str().expect("a name"))
        .collect();
    assert!(users.contains(&"{{SCRIPT}}"), "{users:?}");
    assert!(
        users.iter().any(|u| u.starts_with("</script>")),
        "{users:?}"
    );
    std::fs::write(pages_dir().join("hostile-ids.html"), &page).expect("page written");
}

#[test]
fn a_long_run_fits_the_page_budget() {
    let (_, plan, runtime_seed) = campaign::derive(&SimConfig::default(), Seed(0));
    let source = PageSource {
        name: "long-run".into(),
        target: "core".into(),
        runtime_seed,
        plan,
        replay: "cargo sim run --seed 0x0".into(),
        found: None,
        recorded: page::Recorded::Nothing,
    };
    let (page, report) = page_of(&source);
    assert!(
        report.trace.len() > MAX_STEPS,
        "{} steps",
        report.trace.len()
    );
    assert!(page.len() < MAX_BYTES, "{} bytes", page.len());
    let data = data_of(&page);
    assert_eq!(data["steps"].as_array().expect("steps").len(), MAX_STEPS);
    assert!(
        page.contains("steps shown"),
        "the page says it holds part of the run"
    );
    std::fs::write(pages_dir().join("long-run.html"), &page).expect("page written");
}

/// The ledger's problem columns are judgements a reviewer will trust: on runs of the real core
/// that pass, in process and through the server with partitions and restarts, they stay empty.
#[test]
fn passing_runs_show_no_problem_in_any_ledger() {
    let core = Targets::builtin().get("core").expect("core").clone();
    let net = SimConfig {
        net: Some(wsreg_sim::generate::config::NetConfig::default()),
        ..SimConfig::default()
    };
    let mut tabs = 0;
    let nodes = SimConfig {
        net: Some(wsreg_sim::generate::config::NetConfig {
            nodes: 3,
            store_restarts: 1,
            store_cuts: 1,
            ..Default::default()
        }),
        ..SimConfig::default()
    };
    for (config, seeds) in [(SimConfig::default(), 0..60), (net, 0..12), (nodes, 0..12)] {
        for seed in seeds {
            let (_, plan, runtime_seed) = campaign::derive(&config, Seed(seed));
            let (limits, network) = (plan.limits.clone(), plan.net.is_some());
            let nodes = plan.net.as_ref().map_or(1, |n| n.nodes);
            let report = core
                .run(Arc::new(plan), runtime_seed, Keep::All)
                .expect("runs");
            assert!(report.outcome.passed(), "seed {seed}: {:?}", report.outcome);
            let findings = wsreg_sim::check::ledger::findings(
                &report.trace,
                &report.confirms,
                &report.learned,
                &limits,
                network,
                nodes,
            );
            assert!(findings.is_empty(), "seed {seed}: {findings:?}");
            for t in page::ledgers(&report.trace, &findings) {
                tabs += 1;
                assert!(
                    t.problems() == 0,
                    "seed {seed} (net: {}): {} c{} shows problems: {t:?}",
                    config.net.is_some(),
                    t.user,
                    t.conn
                );
            }
        }
    }
    assert!(tabs > 1000, "only {tabs} tabs looked at");
}
