//! [`Hub`]: what the server needs from a registry of per-user managers. The real core
//! ([`wsreg::Registry`]) is one; the simulator puts any of its backends behind the server
//! through it (the planted bugs of its zoo included), so the same server code is tested end to
//! end through real WebSocket frames.

use std::future::Future;

use wsreg::{AgentEvent, ConnectionHandle, Error, Position, Registry, Sink, UserContext, UserKey};

/// A socket registered with a hub: what the server keeps, and what it tells the client.
#[derive(Debug)]
pub struct Registered<C> {
    /// What [`Hub::disconnect`] needs.
    pub conn: C,
    /// The connection's displayed number.
    pub id: u64,
    /// The displayed number of the manager it hangs off.
    pub manager: u64,
    /// The key the user was filed under.
    pub key: UserKey,
    /// The socket's stream continues after this position.
    pub from: Position,
    /// Whether a resume position was honoured in full (nothing missing after it).
    pub recovered: bool,
}

/// A registry of per-user managers, as the server drives it.
pub trait Hub: Send + Sync + 'static {
    /// What a registered socket is.
    type Conn: Send + Sync + 'static;

    /// Registers a socket for the user; its stream goes to `sink`, resuming after `resume`
    /// (the last position the client saw) or fresh.
    fn connect(
        &self,
        ctx: &UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> impl Future<Output = Result<Registered<Self::Conn>, Error>> + Send;

    /// Removes a socket (the client left or went away).
    fn disconnect(&self, conn: &Self::Conn) -> impl Future<Output = Result<(), Error>> + Send;

    /// Emits an agent event to the user; returns its position.
    fn emit(&self, ctx: &UserContext, event: AgentEvent) -> Result<Position, Error>;

    /// Messages queued and not yet handed to a socket, over every user.
    fn queued(&self) -> usize;

    /// Closes everything (after a graceful shutdown drained the queues).
    fn shutdown(&self);
}

impl Hub for Registry {
    type Conn = ConnectionHandle;

    async fn connect(
        &self,
        ctx: &UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> Result<Registered<ConnectionHandle>, Error> {
        let conn = Registry::resume(self, ctx, sink, resume)?;
        Ok(Registered {
            id: conn.id().get(),
            manager: conn.manager().id().get(),
            key: conn.user().clone(),
            from: conn.continues_after(),
            recovered: conn.recovered(),
            conn,
        })
    }

    async fn disconnect(&self, conn: &ConnectionHandle) -> Result<(), Error> {
        conn.close()
    }

    fn emit(&self, ctx: &UserContext, event: AgentEvent) -> Result<Position, Error> {
        Registry::emit(self, ctx.key(), event)
    }

    fn queued(&self) -> usize {
        self.inspect().queued()
    }

    fn shutdown(&self) {
        Registry::shutdown(self);
    }
}
