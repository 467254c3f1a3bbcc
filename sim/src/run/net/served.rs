//! The two adapters that put a harness backend behind the real server: [`Served`], a backend
//! as the server's [`Hub`], and [`Gate`], an observer that can be shut when the server process
//! dies, so a dead registry's late timers never reach the checker.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use wsreg::{AgentEvent, Error, Observation, Observer, Position, Sink, UserContext};
use wsreg_server::{Hub, Registered};

use crate::backend::Backend;

/// A backend (the real core, a planted bug, a team's own) as the server's hub.
pub(crate) struct Served<B>(pub(crate) Arc<B>);

impl<B: Backend> Hub for Served<B> {
    type Conn = B::Handle;

    async fn connect(
        &self,
        ctx: &UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> Result<Registered<B::Handle>, Error> {
        let c = self.0.connect(ctx, sink, resume).await?;
        Ok(Registered {
            conn: c.handle,
            id: c.conn,
            manager: c.manager,
            key: c.key,
            from: c.from,
            recovered: c.recovered,
        })
    }

    async fn disconnect(&self, conn: &B::Handle) -> Result<(), Error> {
        self.0.close(conn).await
    }

    fn emit(&self, ctx: &UserContext, event: AgentEvent) -> Result<Position, Error> {
        self.0.emit(ctx, event)
    }

    fn queued(&self) -> usize {
        self.0.inspect().map_or(0, |v| v.queued())
    }

    /// Nothing: the harness ends a run by closing every tab, and kills the node to restart it.
    fn shutdown(&self) {}
}

/// Passes observations on while open.
pub(crate) struct Gate {
    pub(crate) open: AtomicBool,
    pub(crate) inner: Arc<dyn Observer>,
}

impl Observer for Gate {
    fn observe(&self, observation: &Observation<'_>) {
        if self.open.load(Ordering::Relaxed) {
            self.inner.observe(observation);
        }
    }
}
