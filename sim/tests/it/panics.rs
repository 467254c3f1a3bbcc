//! A panic names who raised it and keeps the trace up to it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use wsreg::{
    AgentEvent, Error, Mode, Observer, Position, RegistryConfig, RegistryView, Sink, UserContext,
};
use wsreg_sim::backend::{factory, Backend, Build, Capabilities, Connected, Probe};
use wsreg_sim::campaign::derive;
use wsreg_sim::recorder::Keep;
use wsreg_sim::{run_plan, CoreBackend, Outcome, Seed, SimConfig};

/// The core, but its third text send panics.
struct ThirdSendPanics {
    core: CoreBackend,
    sends: AtomicU32,
}

impl Build for ThirdSendPanics {
    fn build(config: RegistryConfig, observer: Option<Arc<dyn Observer>>) -> Self {
        Self {
            core: CoreBackend::build(config, observer),
            sends: AtomicU32::new(0),
        }
    }
}

impl Backend for ThirdSendPanics {
    type Handle = <CoreBackend as Backend>::Handle;

    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }

    async fn connect(
        &self,
        ctx: &UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> Result<Connected<Self::Handle>, Error> {
        self.core.connect(ctx, sink, resume).await
    }

    async fn close(&self, handle: &Self::Handle) -> Result<(), Error> {
        self.core.close(handle).await
    }

    fn emit(&self, ctx: &UserContext, event: AgentEvent) -> Result<Position, Error> {
        self.core.emit(ctx, event)
    }

    fn send_text(&self, ctx: &UserContext, text: &str) -> Result<Position, Error> {
        if self.sends.fetch_add(1, Ordering::Relaxed) == 2 {
            panic!("the third send");
        }
        self.core.send_text(ctx, text)
    }

    fn set_mode(&self, ctx: &UserContext, mode: Mode) -> Result<(), Error> {
        self.core.set_mode(ctx, mode)
    }

    fn probe(&self, ctx: &UserContext) -> Option<Probe> {
        self.core.probe(ctx)
    }

    fn inspect(&self) -> Option<RegistryView> {
        self.core.inspect()
    }
}

#[test]
fn a_backend_panic_is_the_system_under_test_and_keeps_its_trace() {
    let (_, plan, runtime_seed) = derive(&SimConfig::default(), Seed(1));
    let report = run_plan(
        factory::<ThirdSendPanics>(),
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
    let verdict = wsreg_sim::report::verdict(&report);
    assert!(
        verdict.starts_with("verdict: PANIC in the system under test at "),
        "{verdict}"
    );
}
