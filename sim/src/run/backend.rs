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

/// What a backend offers beyond the operations, and which of wsreg's own design choices it
/// declares. Everything defaults to off: a backend that offers only the operations is checked
/// by the black-box oracle alone, from what the harness did, what its calls returned and what
/// each simulated tab read. Each capability switches on the white-box checks that need it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Reports every state change to the observer its factory was given. The white-box oracle
    /// then checks that account: one manager per user, ownership indexes, limits as counted
    /// by the backend, modes.
    pub observes: bool,
    /// [`Backend::probe`] answers (the user's manager, its mode, its connection count).
    pub probes: bool,
    /// Declares that connection and manager numbers are never reused within one registry, so
    /// a number seen again is a bug. A registry that recycles ids leaves this off.
    pub unique_ids: bool,
    /// Declares that each message is accepted (numbered) once, so a second acceptance of one
    /// is a duplicate. A registry with its own retry queue that re-submits leaves this off;
    /// the tabs are still checked for duplicates either way.
    pub accepts_once: bool,
}

impl Capabilities {
    /// Everything on: the real core and every backend built on it.
    pub const ALL: Capabilities = Capabilities {
        observes: true,
        probes: true,
        unique_ids: true,
        accepts_once: true,
    };
}

/// A registry of per-user managers, as the harness drives it: the five operations are all a
/// backend must offer. [`Backend::probe`], [`Backend::inspect`] and the observer its factory is
/// handed are optional; [`Backend::capabilities`] says which it offers. A backend is built by
/// a factory (see [`Target::new`](crate::target::Target::new)), so it can take parameters.
///
/// A complete registry written from scratch, plugged in, fuzzed, shrunk and replayed, is in
/// `sim/examples/from_scratch/`. In outline:
///
/// ```
/// use wsreg::{AgentEvent, Error, Mode, Position, Sink, UserContext};
/// use wsreg_sim::backend::{Backend, Connected};
/// use wsreg_sim::target::{Target, Targets};
///
/// struct Mine {/* its own maps, ids, queues */}
///
/// impl Backend for Mine {
///     type Handle = u64;
///
///     async fn connect(
///         &self,
///         ctx: &UserContext,
///         sink: Box<dyn Sink>,
///         resume: Option<Position>,
///     ) -> Result<Connected<u64>, Error> {
///         todo!("file the tab, start its writer, say where its stream continues")
///     }
///     async fn close(&self, conn: &u64) -> Result<(), Error> {
///         todo!()
///     }
///     fn emit(&self, ctx: &UserContext, event: AgentEvent) -> Result<Position, Error> {
///         todo!("number it, keep it for resumes, hand it to the user's tabs")
///     }
///     fn send_text(&self, ctx: &UserContext, text: &str) -> Result<Position, Error> {
///         todo!()
///     }
///     fn set_mode(&self, ctx: &UserContext, mode: Mode) -> Result<(), Error> {
///         todo!()
///     }
/// }
///
/// // Registered by name: campaigns, shrinking, snapshots and replay all find it so.
/// let targets = Targets::builtin().with(Target::new("mine", |_config, _observer| Mine {}));
/// assert!(targets.get("mine").is_ok());
/// // A team's binary then runs the whole command line: `wsreg_sim::cli::main_with(targets)`.
/// ```
pub trait Backend: Send + Sync + 'static {
    /// What a connection handle is.
    type Handle: Send + Sync + 'static;

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

    /// What the backend offers beyond the operations (default: nothing).
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    /// The user's manager, if the registry holds one (with [`Capabilities::probes`]).
    fn probe(&self, ctx: &UserContext) -> Option<Probe> {
        let _ = ctx;
        None
    }

    /// Everything the registry holds, if it can say (default: `None`). Offered, it lets the
    /// harness check at the end of a run that idle users' managers are gone (I9).
    fn inspect(&self) -> Option<RegistryView> {
        None
    }

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

/// How a backend is made from a run's limits and an observer to report to (`None`: nobody
/// listens, as in the benchmark's unchecked baseline or under the black-box oracle alone).
pub type Factory<B> = Arc<dyn Fn(RegistryConfig, Option<Arc<dyn Observer>>) -> B + Send + Sync>;

/// A backend with a standard way to build it: the core and the zoo's planted bugs.
pub trait Build: Backend + Sized {
    /// A fresh backend with these limits, reporting to `observer`.
    fn build(config: RegistryConfig, observer: Option<Arc<dyn Observer>>) -> Self;
}

/// The factory of a [`Build`] backend.
pub fn factory<B: Build>() -> Factory<B> {
    Arc::new(B::build)
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

impl Build for CoreBackend {
    fn build(config: RegistryConfig, observer: Option<Arc<dyn Observer>>) -> Self {
        Self::new(registry(config, observer))
    }
}

impl Backend for CoreBackend {
    type Handle = ConnectionHandle;

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

    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }

    fn probe(&self, ctx: &UserContext) -> Option<Probe> {
        probe_registry(&self.registry, ctx.key())
    }

    fn inspect(&self) -> Option<RegistryView> {
        Some(self.registry.inspect())
    }
}
