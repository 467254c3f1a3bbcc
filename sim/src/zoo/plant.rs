//! [`Plant`]: a planted bug is the real core with some operations replaced. Every operation
//! defaults to the core's and is handed the core, so a bug overrides only the operation it
//! breaks and holds only the state of its own; [`factory`] makes it a [`Backend`].

use std::borrow::Cow;
use std::sync::Arc;

use wsreg::backend::{connected, probe_key as probe_core};
use wsreg::{
    AgentEvent, ConnectionHandle, Error, Mode, Position, Registry, RegistryConfig, Sink,
    UserContext, UserKey,
};

use crate::run::backend::{
    registry, Backend, BoxFuture, Capabilities, Connected, Factory, Handle, Probe,
};

/// A planted bug over the real core (`core`, in every operation).
pub trait Plant: Send + Sync + 'static {
    /// The config the core underneath is built with: the run's, unless the bug replaces one of
    /// the core's own guarantees (a limit it checks itself, a TTL it enforces itself).
    fn core_config(config: RegistryConfig) -> RegistryConfig
    where
        Self: Sized,
    {
        config
    }

    /// The sink the core writes a connection's stream to: `sink` itself, unless the bug sits
    /// between the registry and the socket. `resume` is what the connection asked for.
    fn wrap_sink(&self, sink: Box<dyn Sink>, resume: Option<Position>) -> Box<dyn Sink> {
        let _ = resume;
        sink
    }

    /// See [`Backend::connect`].
    fn connect<'a>(
        &'a self,
        core: &'a Registry,
        ctx: &'a UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> BoxFuture<'a, Result<Connected, Error>> {
        let sink = self.wrap_sink(sink, resume);
        Backend::connect(core, ctx, sink, resume)
    }

    /// See [`Backend::close`].
    fn close<'a>(
        &'a self,
        core: &'a Registry,
        handle: &'a Handle,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Backend::close(core, handle)
    }

    /// The key a user's calls (emit, send, mode) go to: the user's own, unless the bug files
    /// users elsewhere.
    fn key_for_calls<'a>(
        &self,
        core: &Registry,
        ctx: &'a UserContext,
    ) -> Result<Cow<'a, UserKey>, Error> {
        let _ = core;
        Ok(Cow::Borrowed(ctx.key()))
    }

    /// See [`Backend::emit`].
    fn emit(
        &self,
        core: &Registry,
        ctx: &UserContext,
        event: AgentEvent,
    ) -> Result<Position, Error> {
        core.emit(&*self.key_for_calls(core, ctx)?, event)
    }

    /// See [`Backend::send_text`].
    fn send_text(&self, core: &Registry, ctx: &UserContext, text: &str) -> Result<Position, Error> {
        core.send_text(&*self.key_for_calls(core, ctx)?, text)
    }

    /// See [`Backend::set_mode`].
    fn set_mode(&self, core: &Registry, ctx: &UserContext, mode: Mode) -> Result<(), Error> {
        core.set_mode(&*self.key_for_calls(core, ctx)?, mode)
    }

    /// See [`Backend::probe`].
    fn probe(&self, core: &Registry, ctx: &UserContext) -> Option<Probe> {
        Backend::probe(core, ctx)
    }
}

/// A plant in the core it was planted in.
struct Planted<P> {
    core: Registry,
    plant: P,
}

/// The factory of a bug: the real core, built with `P`'s config and reporting to the run's
/// observer, with the plant `make` builds from the run's config planted in it.
pub fn factory<P: Plant>(make: fn(&RegistryConfig) -> P) -> Factory {
    Arc::new(move |config: RegistryConfig, observer| {
        let core = registry(P::core_config(config.clone()), observer);
        Arc::new(Planted {
            core,
            plant: make(&config),
        })
    })
}

impl<P: Plant> Backend for Planted<P> {
    fn connect<'a>(
        &'a self,
        ctx: &'a UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> BoxFuture<'a, Result<Connected, Error>> {
        self.plant.connect(&self.core, ctx, sink, resume)
    }

    fn close<'a>(&'a self, handle: &'a Handle) -> BoxFuture<'a, Result<(), Error>> {
        self.plant.close(&self.core, handle)
    }

    fn emit<'a>(
        &'a self,
        ctx: &'a UserContext,
        event: AgentEvent,
    ) -> BoxFuture<'a, Result<Position, Error>> {
        Box::pin(std::future::ready(self.plant.emit(&self.core, ctx, event)))
    }

    fn send_text<'a>(
        &'a self,
        ctx: &'a UserContext,
        text: &'a str,
    ) -> BoxFuture<'a, Result<Position, Error>> {
        Box::pin(std::future::ready(
            self.plant.send_text(&self.core, ctx, text),
        ))
    }

    fn set_mode(&self, ctx: &UserContext, mode: Mode) -> Result<(), Error> {
        self.plant.set_mode(&self.core, ctx, mode)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }

    fn probe(&self, ctx: &UserContext) -> Option<Probe> {
        self.plant.probe(&self.core, ctx)
    }

    fn inspect(&self) -> Option<wsreg::RegistryView> {
        Some(self.core.inspect())
    }
}

/// Connects `ctx`'s socket under another key (how the key-derivation bugs file users).
pub fn connect_as(
    core: &Registry,
    key: &str,
    sink: Box<dyn Sink>,
    resume: Option<Position>,
) -> Result<Connected, Error> {
    let filed = UserContext::new(key)?;
    core.resume(&filed, sink, resume).map(connected)
}

/// A probe of the manager under `key`.
pub fn probe_key(core: &Registry, key: &str) -> Option<Probe> {
    probe_core(core, &UserKey::new(key).ok()?)
}

/// The core's connection behind a handle the core made.
pub fn conn(handle: &Handle) -> Result<&ConnectionHandle, Error> {
    handle.own::<ConnectionHandle>()
}
