//! The seam the harness drives: [`Backend`], a registry of per-user managers. The real core
//! implements it ([`CoreBackend`]); so do the planted bugs of the zoo, and so can a team's own
//! WebSocket layer, to be fuzzed by the same harness.

use std::future::Future;
use std::sync::Arc;

use wsreg::{
    AgentEvent, ConnectionHandle, Error, Mode, Observer, Position, Registry, RegistryConfig,
    RegistryView, Sink, UserContext, UserKey,
};

/// A connection as the backend reports it.
#[derive(Clone, Debug)]
pub struct Connected<H> {
    /// The registry key the backend filed the user under.
    pub key: UserKey,
    /// The manager it handed out (its displayed number).
    pub manager: u64,
    /// The connection (its displayed number).
    pub conn: u64,
    /// What [`Backend::close`] needs.
    pub handle: H,
    /// Where the backend says the connection's stream continues: the first item the tab gets
    /// is the next position, or a gap marker that starts there.
    pub from: Position,
    /// Whether the backend says a resume position was honoured in full.
    pub recovered: bool,
}

/// A cheap look at one user's manager, taken before each client action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    /// The manager the registry holds for the user (displayed number).
    pub manager: u64,
    /// Its mode.
    pub mode: Mode,
    /// Its live connections.
    pub connections: usize,
}

/// A registry of per-user managers, as the harness drives it. Implementations must report every
/// state change to the observer given to [`Backend::build`]; that stream is what the
/// invariants are checked against, beside what the simulated clients actually receive.
pub trait Backend: Send + Sync + 'static {
    /// What a connection handle is.
    type Handle: Send + Sync + 'static;

    /// A fresh backend with these limits, reporting to `observer` (none: the benchmark's
    /// unchecked baseline).
    fn build(config: RegistryConfig, observer: Option<Arc<dyn Observer>>) -> Self
    where
        Self: Sized;

    /// Opens a connection for the user, sending its stream to `sink`, resuming after `resume`
    /// (the last position the client saw) or fresh.
    fn connect(
        &self,
        ctx: &UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> impl Future<Output = Result<Connected<Self::Handle>, Error>> + Send;

    /// Closes one connection.
    fn close(&self, handle: &Self::Handle) -> impl Future<Output = Result<(), Error>> + Send;

    /// Emits an agent event to the user; returns its position.
    fn emit(&self, ctx: &UserContext, event: AgentEvent) -> Result<Position, Error>;

    /// Sends the user a text message; returns its position.
    fn send_text(&self, ctx: &UserContext, text: &str) -> Result<Position, Error>;

    /// Sets the user's mode.
    fn set_mode(&self, ctx: &UserContext, mode: Mode) -> Result<(), Error>;

    /// The user's manager, if the registry holds one.
    fn probe(&self, ctx: &UserContext) -> Option<Probe>;

    /// Everything the registry holds.
    fn inspect(&self) -> RegistryView;

    /// A tab's client crashed: its socket is gone without a goodbye. Returns whether the
    /// backend notices by itself, as a server on a real socket does. If not (the default, for
    /// in-process backends), the harness plays the server's cleanup 20 ms later through
    /// [`Backend::close`].
    fn crash(&self, handle: &Self::Handle) -> bool {
        let _ = handle;
        false
    }

    /// The network between the clients and the server, for backends that have one.
    fn network(&self) -> Option<&dyn Network> {
        None
    }
}

/// The faults a backend with a network can suffer. Network backends run the server on a node
/// of its own and every client socket on another.
pub trait Network: Send + Sync {
    /// Cuts the clients off from the server (`true`), or heals the cut (`false`).
    fn partition(&self, cut: bool);

    /// Kills the server node: every socket drops, and the registry with everything it held is
    /// gone. Calls refuse until [`Network::start_server`].
    fn kill_server(&self);

    /// Starts the server node again, over a fresh registry.
    fn start_server(&self);
}

/// The real core.
#[derive(Debug)]
pub struct CoreBackend {
    registry: Registry,
}

impl CoreBackend {
    /// Wraps an existing registry.
    pub fn new(registry: Registry) -> Self {
        Self { registry }
    }

    /// The registry underneath.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

/// A real core registry, observed or not.
pub fn registry(config: RegistryConfig, observer: Option<Arc<dyn Observer>>) -> Registry {
    match observer {
        Some(observer) => Registry::with_observer(config, observer),
        None => Registry::new(config),
    }
}

/// The displayed numbers of a real core connection.
pub fn connected(handle: ConnectionHandle) -> Connected<ConnectionHandle> {
    Connected {
        key: handle.user().clone(),
        manager: handle.manager().id().get(),
        conn: handle.id().get(),
        from: handle.continues_after(),
        recovered: handle.recovered(),
        handle,
    }
}

/// A probe of a real core registry.
pub fn probe_registry(registry: &Registry, key: &UserKey) -> Option<Probe> {
    registry.get(key).map(|m| Probe {
        manager: m.id().get(),
        mode: m.mode(),
        connections: m.connection_count(),
    })
}

impl Backend for CoreBackend {
    type Handle = ConnectionHandle;

    fn build(config: RegistryConfig, observer: Option<Arc<dyn Observer>>) -> Self {
        Self::new(registry(config, observer))
    }

    async fn connect(
        &self,
        ctx: &UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> Result<Connected<ConnectionHandle>, Error> {
        self.registry.resume(ctx, sink, resume).map(connected)
    }

    async fn close(&self, handle: &ConnectionHandle) -> Result<(), Error> {
        handle.close()
    }

    fn emit(&self, ctx: &UserContext, event: AgentEvent) -> Result<Position, Error> {
        self.registry.emit(ctx.key(), event)
    }

    fn send_text(&self, ctx: &UserContext, text: &str) -> Result<Position, Error> {
        self.registry.send_text(ctx.key(), text)
    }

    fn set_mode(&self, ctx: &UserContext, mode: Mode) -> Result<(), Error> {
        self.registry.set_mode(ctx.key(), mode)
    }

    fn probe(&self, ctx: &UserContext) -> Option<Probe> {
        probe_registry(&self.registry, ctx.key())
    }

    fn inspect(&self) -> RegistryView {
        self.registry.inspect()
    }
}
