//! [`Plant`]: a planted bug is the real core with some calls replaced. Every method defaults to
//! the core's; a bug overrides the ones it breaks, and [`AnyPlant`] makes it a [`Backend`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use wsreg::{
    AgentEvent, ConnectionHandle, Error, Mode, Position, RegistryConfig, RegistryView, Sink,
    UserContext, UserKey,
};

use crate::backend::{
    connected, probe_registry, registry, Backend, Capabilities, Connected, CoreBackend, Factory,
    Probe,
};

/// A planted bug over the real core.
pub trait Plant: Send + Sync + Sized + 'static {
    /// Builds the bug around `core`, the real core that [`Planted`] built for the run's
    /// `config` (as changed by [`Plant::core_config`]).
    fn plant(core: CoreBackend, config: &RegistryConfig) -> Self;

    /// The config the core underneath is built with: the run's, unless the bug replaces one of
    /// the core's own guarantees (a limit it checks itself, a TTL it enforces itself).
    fn core_config(config: RegistryConfig) -> RegistryConfig {
        config
    }

    /// The core underneath.
    fn core(&self) -> &CoreBackend;

    /// The sink the core writes a connection's stream to: `sink` itself, unless the bug sits
    /// between the registry and the socket. `resume` is what the connection asked for.
    fn wrap_sink(&self, sink: Box<dyn Sink>, resume: Option<Position>) -> Box<dyn Sink> {
        let _ = resume;
        sink
    }

    /// See [`Backend::connect`].
    fn connect(
        &self,
        ctx: &UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> impl Future<Output = Result<Connected<ConnectionHandle>, Error>> + Send {
        self.core()
            .connect(ctx, self.wrap_sink(sink, resume), resume)
    }

    /// See [`Backend::close`].
    fn close(&self, handle: &ConnectionHandle) -> impl Future<Output = Result<(), Error>> + Send {
        self.core().close(handle)
    }

    /// See [`Backend::emit`].
    fn emit(&self, ctx: &UserContext, event: AgentEvent) -> Result<Position, Error> {
        self.core().emit(ctx, event)
    }

    /// See [`Backend::send_text`].
    fn send_text(&self, ctx: &UserContext, text: &str) -> Result<Position, Error> {
        self.core().send_text(ctx, text)
    }

    /// See [`Backend::set_mode`].
    fn set_mode(&self, ctx: &UserContext, mode: Mode) -> Result<(), Error> {
        self.core().set_mode(ctx, mode)
    }

    /// See [`Backend::probe`].
    fn probe(&self, ctx: &UserContext) -> Option<Probe> {
        self.core().probe(ctx)
    }
}

/// Any [`Plant`] as a [`Backend`], behind one type: the harness (world, clients, network) is
/// compiled once for the whole zoo rather than once per bug, which keeps the simulator's build
/// minutes shorter. The two calls that return futures box them; nothing else changes, so a bug
/// runs exactly as it would unboxed.
pub struct AnyPlant(Box<dyn Erased>);

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// [`Plant`] with its futures boxed, so it can sit behind a `dyn`.
trait Erased: Send + Sync {
    fn connect<'a>(
        &'a self,
        ctx: &'a UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> Boxed<'a, Result<Connected<ConnectionHandle>, Error>>;
    fn close<'a>(&'a self, handle: &'a ConnectionHandle) -> Boxed<'a, Result<(), Error>>;
    fn emit(&self, ctx: &UserContext, event: AgentEvent) -> Result<Position, Error>;
    fn send_text(&self, ctx: &UserContext, text: &str) -> Result<Position, Error>;
    fn set_mode(&self, ctx: &UserContext, mode: Mode) -> Result<(), Error>;
    fn probe(&self, ctx: &UserContext) -> Option<Probe>;
    fn inspect(&self) -> Option<RegistryView>;
}

impl<P: Plant> Erased for P {
    fn connect<'a>(
        &'a self,
        ctx: &'a UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> Boxed<'a, Result<Connected<ConnectionHandle>, Error>> {
        Box::pin(Plant::connect(self, ctx, sink, resume))
    }

    fn close<'a>(&'a self, handle: &'a ConnectionHandle) -> Boxed<'a, Result<(), Error>> {
        Box::pin(Plant::close(self, handle))
    }

    fn emit(&self, ctx: &UserContext, event: AgentEvent) -> Result<Position, Error> {
        Plant::emit(self, ctx, event)
    }

    fn send_text(&self, ctx: &UserContext, text: &str) -> Result<Position, Error> {
        Plant::send_text(self, ctx, text)
    }

    fn set_mode(&self, ctx: &UserContext, mode: Mode) -> Result<(), Error> {
        Plant::set_mode(self, ctx, mode)
    }

    fn probe(&self, ctx: &UserContext) -> Option<Probe> {
        Plant::probe(self, ctx)
    }

    fn inspect(&self) -> Option<RegistryView> {
        self.core().inspect()
    }
}

impl AnyPlant {
    /// The factory of the bug `P`: the real core built with `P`'s config, `P` planted in it.
    pub fn factory<P: Plant>() -> Factory<AnyPlant> {
        Arc::new(|config: RegistryConfig, observer| {
            let core = CoreBackend::new(registry(P::core_config(config.clone()), observer));
            AnyPlant(Box::new(P::plant(core, &config)))
        })
    }
}

impl Backend for AnyPlant {
    type Handle = ConnectionHandle;

    async fn connect(
        &self,
        ctx: &UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> Result<Connected<ConnectionHandle>, Error> {
        self.0.connect(ctx, sink, resume).await
    }

    async fn close(&self, handle: &ConnectionHandle) -> Result<(), Error> {
        self.0.close(handle).await
    }

    fn emit(&self, ctx: &UserContext, event: AgentEvent) -> Result<Position, Error> {
        self.0.emit(ctx, event)
    }

    fn send_text(&self, ctx: &UserContext, text: &str) -> Result<Position, Error> {
        self.0.send_text(ctx, text)
    }

    fn set_mode(&self, ctx: &UserContext, mode: Mode) -> Result<(), Error> {
        self.0.set_mode(ctx, mode)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }

    fn probe(&self, ctx: &UserContext) -> Option<Probe> {
        self.0.probe(ctx)
    }

    fn inspect(&self) -> Option<RegistryView> {
        self.0.inspect()
    }
}

/// Connects `ctx`'s socket under another key (how the key-derivation bugs file users).
pub fn connect_as(
    core: &CoreBackend,
    key: &str,
    sink: Box<dyn Sink>,
    resume: Option<Position>,
) -> Result<Connected<ConnectionHandle>, Error> {
    let filed = UserContext::new(key)?;
    core.registry().resume(&filed, sink, resume).map(connected)
}

/// A probe of the manager under `key`.
pub fn probe_key(core: &CoreBackend, key: &str) -> Option<Probe> {
    probe_registry(core.registry(), &UserKey::new(key).ok()?)
}
