//! Who judges a run changes the verdict, never the run: the world does the same under every
//! oracle, so a seed means one run however it is judged.

use std::sync::Arc;

use wsreg_sim::check::trace::What;
use wsreg_sim::generate::config::SimConfig;
use wsreg_sim::generate::oracle::Oracle;
use wsreg_sim::generate::seed::Seed;
use wsreg_sim::run::recorder::Keep;
use wsreg_sim::tooling::campaign::derive;
use wsreg_sim::tooling::target::Target;

/// Every receipt of the run (who read what, where, when), and how many came after healing.
fn receipts(
    plan: &wsreg_sim::generate::plan::Plan,
    runtime_seed: Seed,
    oracle: Oracle,
) -> (Vec<String>, usize) {
    let mut plan = plan.clone();
    plan.oracle = oracle;
    let report = Target::builtin(None)
        .run(Arc::new(plan), runtime_seed, Keep::All)
        .expect("runs");
    assert!(report.outcome.passed(), "{oracle:?}: {:?}", report.outcome);
    let healed = report
        .trace
        .iter()
        .position(|s| matches!(s.what, What::Phase("heal")))
        .expect("a heal phase");
    let read: Vec<(usize, String)> = report
        .trace
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s.what, What::Received { .. } | What::Gap { .. }))
        .map(|(i, s)| {
            (
                i,
                format!("{} {} {:?} {:?}", s.t_us, s.user, s.conn, s.what),
            )
        })
        .collect();
    let after = read.iter().filter(|(i, _)| *i > healed).count();
    (read.into_iter().map(|(_, r)| r).collect(), after)
}

#[test]
fn every_oracle_sees_the_same_run() {
    let mut read_after_healing = 0;
    for seed in 0..24 {
        let (_, plan, runtime_seed) = derive(&SimConfig::default(), Seed(seed));
        let both = receipts(&plan, runtime_seed, Oracle::Both);
        let white = receipts(&plan, runtime_seed, Oracle::WhiteBox);
        let black = receipts(&plan, runtime_seed, Oracle::BlackBox);
        assert_eq!(
            both, white,
            "seed {seed}: the white-box run read differently"
        );
        assert_eq!(
            both, black,
            "seed {seed}: the black-box run read differently"
        );
        read_after_healing += both.1;
    }
    // The seeds exercise the heal phase: tabs (slow ones, reconnected ones) still read then.
    assert!(read_after_healing > 0);
}

/// A registry that answers probes but reports nothing to an observer: the core, wrapped.
struct ProbesOnly(wsreg::Registry);

impl wsreg::Backend for ProbesOnly {
    fn connect<'a>(
        &'a self,
        ctx: &'a wsreg::UserContext,
        sink: Box<dyn wsreg::Sink>,
        resume: Option<wsreg::Position>,
    ) -> wsreg::backend::BoxFuture<'a, Result<wsreg::backend::Connected, wsreg::Error>> {
        wsreg::Backend::connect(&self.0, ctx, sink, resume)
    }
    fn close<'a>(
        &'a self,
        handle: &'a wsreg::backend::Handle,
    ) -> wsreg::backend::BoxFuture<'a, Result<(), wsreg::Error>> {
        wsreg::Backend::close(&self.0, handle)
    }
    fn emit<'a>(
        &'a self,
        ctx: &'a wsreg::UserContext,
        event: wsreg::AgentEvent,
    ) -> wsreg::backend::BoxFuture<'a, Result<wsreg::Position, wsreg::Error>> {
        wsreg::Backend::emit(&self.0, ctx, event)
    }
    fn send_text<'a>(
        &'a self,
        ctx: &'a wsreg::UserContext,
        text: &'a str,
    ) -> wsreg::backend::BoxFuture<'a, Result<wsreg::Position, wsreg::Error>> {
        wsreg::Backend::send_text(&self.0, ctx, text)
    }
    fn set_mode(&self, ctx: &wsreg::UserContext, mode: wsreg::Mode) -> Result<(), wsreg::Error> {
        wsreg::Backend::set_mode(&self.0, ctx, mode)
    }
    fn capabilities(&self) -> wsreg::backend::Capabilities {
        wsreg::backend::Capabilities {
            probes: true,
            ..Default::default()
        }
    }
    fn probe(&self, ctx: &wsreg::UserContext) -> Option<wsreg::backend::Probe> {
        wsreg::Backend::probe(&self.0, ctx)
    }
}

/// What a backend declares decides which checks apply, never whether a correct one passes: one
/// that answers probes but reports nothing has no history to compare them with.
#[test]
fn a_backend_that_probes_without_observing_is_not_held_to_a_history_it_never_reported() {
    let target = Target::new("probes-only", |config, _observer| {
        ProbesOnly(wsreg::Registry::new(config))
    });
    for seed in 0..20 {
        let (_, plan, runtime_seed) = derive(&SimConfig::default(), Seed(seed));
        let report = target
            .run(Arc::new(plan), runtime_seed, Keep::Tail(1))
            .expect("runs");
        assert!(report.outcome.passed(), "seed {seed}: {:?}", report.outcome);
    }
}
