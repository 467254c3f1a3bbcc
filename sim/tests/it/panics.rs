//! A panic names who raised it and keeps the trace up to it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use wsreg::{Error, Position, Registry, UserContext};
use wsreg_sim::check::outcome::Outcome;
use wsreg_sim::generate::config::SimConfig;
use wsreg_sim::generate::seed::Seed;
use wsreg_sim::run::recorder::Keep;
use wsreg_sim::run::runtime::run_plan;
use wsreg_sim::tooling::campaign::derive;
use wsreg_sim::zoo::plant::{self, Plant};

/// The core, but its third text send panics.
#[derive(Default)]
struct ThirdSendPanics {
    sends: AtomicU32,
}

impl Plant for ThirdSendPanics {
    fn send_text(&self, core: &Registry, ctx: &UserContext, text: &str) -> Result<Position, Error> {
        if self.sends.fetch_add(1, Ordering::Relaxed) == 2 {
            panic!("the third send");
        }
        core.send_text(ctx.key(), text)
    }
}

#[test]
fn a_backend_panic_is_the_system_under_test_and_keeps_its_trace() {
    let (_, plan, runtime_seed) = derive(&SimConfig::default(), Seed(1));
    let report = run_plan(
        plant::factory(|_| ThirdSendPanics::default()),
        Arc::new(plan),
        runtime_seed.0,
        Keep::All,
    )
    .expect("runs");
    let Outcome::Panic { message, by, at } = &report.outcome else {
        panic!("expected a panic, got {:?}", report.outcome);
    };
    assert_eq!(message, "the third send");
    assert_eq!(by, "the system under test");
    assert!(
        at.as_deref().is_some_and(|a| a.contains("panics.rs")),
        "{at:?}"
    );
    assert!(
        report.trace.len() > 3 && report.steps as usize >= report.trace.len(),
        "the trace up to the panic is kept: {} steps",
        report.trace.len()
    );
    let verdict = wsreg_sim::tooling::report::verdict(&report);
    assert!(
        verdict.starts_with("verdict: PANIC in the system under test at "),
        "{verdict}"
    );
}

/// A registry built on real tokio, as a team's crate that depends on `tokio = "1"` is.
struct OnRealTokio;

impl Plant for OnRealTokio {
    fn send_text(&self, core: &Registry, ctx: &UserContext, text: &str) -> Result<Position, Error> {
        drop(tokio_real::spawn(async {}));
        core.send_text(ctx.key(), text)
    }
}

#[test]
fn a_registry_on_real_tokio_is_told_what_to_change_once() {
    let opts = wsreg_sim::tooling::campaign::CampaignOptions {
        jobs: 1,
        target: wsreg_sim::tooling::target::Target::from_factory(
            "on-real-tokio",
            plant::factory(|_| OnRealTokio),
        ),
        ..wsreg_sim::tooling::campaign::CampaignOptions::new(wsreg_sim::generate::seed::SeedRange {
            start: 0,
            end: 5,
        })
    };
    let summary = wsreg_sim::tooling::campaign::run_campaign(&opts, &|_, _, _| {}).expect("runs");
    // Every seed that sends a text panics in the system under test.
    let panics = summary.failures.get("PANIC").map_or(0, |g| g.count);
    assert!(panics >= 2, "{:?}", summary.failures);
    let printed = wsreg_sim::tooling::report::campaign(&summary);
    assert_eq!(printed.matches("what to change:").count(), 1, "{printed}");
    assert!(printed.contains("package = \"madsim-tokio\""), "{printed}");
    let said = printed.find("what to change:").unwrap();
    assert!(
        said < printed.find("failures:").unwrap(),
        "said before the failures"
    );
}
