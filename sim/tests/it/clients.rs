//! What a client can judge from its own side: refusals, closes it did not ask for, and
//! connects it gave up on. The planted bugs of each kind are caught by the black-box oracle
//! alone; a slow registry that lets go of a connect its client gave up on is never blamed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use wsreg::backend::{Backend, BoxFuture, Connected};
use wsreg::{Error, Position, Registry, Sink, UserContext};
use wsreg_sim::check::trace::What;
use wsreg_sim::generate::config::SimConfig;
use wsreg_sim::generate::oracle::Oracle;
use wsreg_sim::generate::seed::Seed;
use wsreg_sim::run::recorder::Keep;
use wsreg_sim::tooling::campaign::derive;
use wsreg_sim::tooling::target::Target;
use wsreg_sim::zoo::plant::{self, Plant};
use wsreg_sim::zoo::Bug;

use crate::support::campaign_of;

#[test]
fn a_false_refusal_a_dropped_tab_and_a_tab_nobody_holds_are_caught_by_clients_alone() {
    for bug in [Bug::B27, Bug::B28, Bug::B29] {
        let config = SimConfig {
            oracle: Oracle::BlackBox,
            ..SimConfig::default()
        };
        let summary = campaign_of(Target::builtin(Some(bug)), config, 100);
        let first = summary
            .failing
            .first()
            .unwrap_or_else(|| panic!("{bug} was not caught by the black-box oracle"));
        let label = first.outcome.label();
        assert!(bug.caught_as_expected(&label), "{bug}: {label}");
    }
}

/// The core behind a lookup that takes 0 to 60 ms before the connect files the tab, in the
/// caller's own future: a client that gives up drops the lookup, and nothing is filed.
#[derive(Default)]
struct SlowLookup {
    connects: AtomicU64,
}

impl Plant for SlowLookup {
    fn connect<'a>(
        &'a self,
        core: &'a Registry,
        ctx: &'a UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> BoxFuture<'a, Result<Connected, Error>> {
        let n = self.connects.fetch_add(1, Ordering::Relaxed);
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis((n * 23) % 61)).await;
            Backend::connect(core, ctx, sink, resume).await
        })
    }
}

#[test]
fn a_slow_registry_that_lets_go_of_abandoned_connects_passes_while_clients_give_up() {
    let slow = Target::from_factory("slow-lookup", plant::factory(|_| SlowLookup::default()));
    let config = SimConfig {
        connect_timeout_ms: Some(20),
        ..SimConfig::default()
    };
    let summary = campaign_of(slow.clone(), config.clone(), 300);
    assert!(summary.passed(), "{:?}", summary.failures);
    // Clients did give up (and tried again), and the registry was judged on it.
    let (_, plan, runtime_seed) = derive(&config, Seed(0));
    let report = slow
        .run(Arc::new(plan), runtime_seed, Keep::All)
        .expect("runs");
    let gave_up = report
        .trace
        .iter()
        .filter(|s| matches!(s.what, What::GaveUp { .. }))
        .count();
    assert!(gave_up > 10, "only {gave_up} connects given up on");
}
