//! [`Backend`]: the one seam between a registry of per-user managers and whatever drives it.
//! The WebSocket server registers its sockets through it, the simulator's world drives its
//! simulated users through it, the simulator's planted bugs are backends, and so is a team's
//! own registry: all of them are checked, served and fuzzed the same way.
//!
//! The trait is object-safe (`Arc<dyn Backend>`): the two operations that may wait return a
//! boxed future, and a connection is held as an opaque [`Handle`] that only the backend that
//! made it looks into. [`Registry`] is the reference implementation.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::{
    AgentEvent, ConnectionHandle, Error, Mode, Position, Registry, RegistryView, Sink, UserContext,
    UserKey,
};

/// A boxed future, as the waiting operations of a [`Backend`] return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A registered connection as its registrar keeps it: whatever the backend needs to close it,
/// behind a type only that backend knows.
pub struct Handle(Box<dyn Any + Send + Sync>);

impl Handle {
    /// Wraps a backend's own connection value.
    pub fn new<T: Any + Send + Sync>(inner: T) -> Self {
        Self(Box::new(inner))
    }

    /// The backend's own value, if it is a `T`.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }

    /// The backend's own value, or the answer to a handle it did not make:
    /// [`Error::UnknownConnection`].
    pub fn own<T: Any>(&self) -> Result<&T, Error> {
        self.get().ok_or_else(|| Error::UnknownConnection {
            user: "?".to_owned(),
            conn: "(a handle another backend made)".to_owned(),
        })
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Handle(..)")
    }
}

/// A connection a backend registered: what the caller keeps, and what it tells the client.
#[derive(Debug)]
pub struct Connected {
    /// The registry key the backend filed the user under.
    pub key: UserKey,
    /// The manager it hangs off (its displayed number).
    pub manager: u64,
    /// The connection (its displayed number).
    pub conn: u64,
    /// Where the connection's stream continues: the first item the client gets is the next
    /// position, or a gap marker that starts there.
    pub from: Position,
    /// Whether a resume position was honoured in full (nothing missing after it).
    pub recovered: bool,
    /// What [`Backend::close`] needs.
    pub handle: Handle,
}

/// A cheap look at one user's manager.
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
/// declares. Everything defaults to off: a backend that offers only the operations is judged by
/// what its callers see alone (in the simulator, the black-box oracle). Each capability lets a
/// checker use more of the backend's own account.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Reports every state change to the observer it was built with.
    pub observes: bool,
    /// [`Backend::probe`] answers (the user's manager, its mode, its connection count).
    pub probes: bool,
    /// Connection and manager numbers are never reused within one registry, so a number seen
    /// again is a bug. A registry that recycles ids leaves this off.
    pub unique_ids: bool,
    /// Each message is accepted (numbered) once, so a second acceptance of one is a duplicate.
    /// A registry with its own retry queue that re-submits leaves this off.
    pub accepts_once: bool,
}

impl Capabilities {
    /// Nothing beyond the operations.
    pub const NONE: Capabilities = Capabilities {
        observes: false,
        probes: false,
        unique_ids: false,
        accepts_once: false,
    };

    /// Everything on: the real core and every backend built on it.
    pub const ALL: Capabilities = Capabilities {
        observes: true,
        probes: true,
        unique_ids: true,
        accepts_once: true,
    };
}

/// A registry of per-user managers, as a server or a simulated world drives it. The five
/// operations are required; [`Backend::capabilities`], [`Backend::probe`],
/// [`Backend::inspect`] and [`Backend::shutdown`] are optional.
///
/// ```
/// use std::sync::Arc;
/// use wsreg::backend::{Backend, BoxFuture, Connected, Handle};
/// use wsreg::{AgentEvent, Error, Mode, Position, Registry, Sink, UserContext};
///
/// // The real core is a backend; anything that drives one takes `Arc<dyn Backend>`.
/// let core: Arc<dyn Backend> = Arc::new(Registry::default());
///
/// // A registry of one's own implements the same five operations.
/// struct Mine {/* its own maps, ids, histories */}
///
/// impl Backend for Mine {
///     fn connect<'a>(
///         &'a self,
///         ctx: &'a UserContext,
///         sink: Box<dyn Sink>,
///         resume: Option<Position>,
///     ) -> BoxFuture<'a, Result<Connected, Error>> {
///         Box::pin(async move { todo!("file the tab, start its writer, say where it continues") })
///     }
///     fn close<'a>(&'a self, handle: &'a Handle) -> BoxFuture<'a, Result<(), Error>> {
///         Box::pin(async move { todo!("handle.own::<MyConnection>()?, then close it") })
///     }
///     fn emit<'a>(
///         &'a self,
///         ctx: &'a UserContext,
///         event: AgentEvent,
///     ) -> BoxFuture<'a, Result<Position, Error>> {
///         Box::pin(async move { todo!("number it, keep it for resumes, hand it to the tabs") })
///     }
///     fn send_text<'a>(
///         &'a self,
///         ctx: &'a UserContext,
///         text: &'a str,
///     ) -> BoxFuture<'a, Result<Position, Error>> {
///         Box::pin(async move { todo!() })
///     }
///     fn set_mode(&self, ctx: &UserContext, mode: Mode) -> Result<(), Error> {
///         todo!()
///     }
/// }
/// let mine: Arc<dyn Backend> = Arc::new(Mine {});
/// assert!(mine.inspect().is_none() && core.inspect().is_some());
/// ```
pub trait Backend: Send + Sync + 'static {
    /// Registers a connection for the user, sending its stream to `sink`, resuming after
    /// `resume` (the last position the client saw) or fresh. A refusal at a limit
    /// ([`Error::UserConnectionLimit`], [`Error::ConnectionLimit`]) is for a limit really
    /// reached. A client may give up and drop the future before it completes: then nothing may
    /// stay registered, and nothing may be sent to `sink`.
    fn connect<'a>(
        &'a self,
        ctx: &'a UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> BoxFuture<'a, Result<Connected, Error>>;

    /// Closes one connection (the client left or went away). Once the future completes, the
    /// connection counts against no limit: a connect after it is never refused for it.
    fn close<'a>(&'a self, handle: &'a Handle) -> BoxFuture<'a, Result<(), Error>>;

    /// Emits an agent event to the user; returns its position once the event is stored (a
    /// registry in memory stores it at once; a node over a shared store waits for the store).
    fn emit<'a>(
        &'a self,
        ctx: &'a UserContext,
        event: AgentEvent,
    ) -> BoxFuture<'a, Result<Position, Error>>;

    /// Sends the user a text message; returns its position once the message is stored.
    fn send_text<'a>(
        &'a self,
        ctx: &'a UserContext,
        text: &'a str,
    ) -> BoxFuture<'a, Result<Position, Error>>;

    /// Sets the user's mode.
    fn set_mode(&self, ctx: &UserContext, mode: Mode) -> Result<(), Error>;

    /// What the backend offers beyond the operations (default: nothing).
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
    }

    /// The user's manager, if the registry holds one (with [`Capabilities::probes`]).
    fn probe(&self, ctx: &UserContext) -> Option<Probe> {
        let _ = ctx;
        None
    }

    /// Everything the registry holds, if it can say (default: `None`).
    fn inspect(&self) -> Option<RegistryView> {
        None
    }

    /// Closes everything, after a graceful shutdown drained what it could (default: nothing).
    fn shutdown(&self) {}
}

/// What a [`Registry`] connection reports about itself.
pub fn connected(handle: ConnectionHandle) -> Connected {
    Connected {
        key: handle.user().clone(),
        manager: handle.manager().id().get(),
        conn: handle.id().get(),
        from: handle.continues_after(),
        recovered: handle.recovered(),
        handle: Handle::new(handle),
    }
}

/// The probe of the manager a [`Registry`] holds under `key`.
pub fn probe_key(registry: &Registry, key: &UserKey) -> Option<Probe> {
    registry.get(key).map(|m| Probe {
        manager: m.id().get(),
        mode: m.mode(),
        connections: m.connection_count(),
    })
}

/// Closes a handle a [`Registry`] made.
pub fn close_core(handle: &Handle) -> Result<(), Error> {
    handle.own::<ConnectionHandle>()?.close()
}

impl Backend for Registry {
    fn connect<'a>(
        &'a self,
        ctx: &'a UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> BoxFuture<'a, Result<Connected, Error>> {
        Box::pin(async move { self.resume(ctx, sink, resume).map(connected) })
    }

    fn close<'a>(&'a self, handle: &'a Handle) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move { close_core(handle) })
    }

    fn emit<'a>(
        &'a self,
        ctx: &'a UserContext,
        event: AgentEvent,
    ) -> BoxFuture<'a, Result<Position, Error>> {
        Box::pin(std::future::ready(Registry::emit(self, ctx.key(), event)))
    }

    fn send_text<'a>(
        &'a self,
        ctx: &'a UserContext,
        text: &'a str,
    ) -> BoxFuture<'a, Result<Position, Error>> {
        Box::pin(std::future::ready(Registry::send_text(
            self,
            ctx.key(),
            text,
        )))
    }

    fn set_mode(&self, ctx: &UserContext, mode: Mode) -> Result<(), Error> {
        Registry::set_mode(self, ctx.key(), mode)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }

    fn probe(&self, ctx: &UserContext) -> Option<Probe> {
        probe_key(self, ctx.key())
    }

    fn inspect(&self) -> Option<RegistryView> {
        Some(Registry::inspect(self))
    }

    fn shutdown(&self) {
        Registry::shutdown(self);
    }
}

/// A shared backend is a backend (so `Arc<dyn Backend>` can be passed where one is taken).
impl<B: Backend + ?Sized> Backend for std::sync::Arc<B> {
    fn connect<'a>(
        &'a self,
        ctx: &'a UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> BoxFuture<'a, Result<Connected, Error>> {
        (**self).connect(ctx, sink, resume)
    }

    fn close<'a>(&'a self, handle: &'a Handle) -> BoxFuture<'a, Result<(), Error>> {
        (**self).close(handle)
    }

    fn emit<'a>(
        &'a self,
        ctx: &'a UserContext,
        event: AgentEvent,
    ) -> BoxFuture<'a, Result<Position, Error>> {
        (**self).emit(ctx, event)
    }

    fn send_text<'a>(
        &'a self,
        ctx: &'a UserContext,
        text: &'a str,
    ) -> BoxFuture<'a, Result<Position, Error>> {
        (**self).send_text(ctx, text)
    }

    fn set_mode(&self, ctx: &UserContext, mode: Mode) -> Result<(), Error> {
        (**self).set_mode(ctx, mode)
    }

    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }

    fn probe(&self, ctx: &UserContext) -> Option<Probe> {
        (**self).probe(ctx)
    }

    fn inspect(&self) -> Option<RegistryView> {
        (**self).inspect()
    }

    fn shutdown(&self) {
        (**self).shutdown();
    }
}
