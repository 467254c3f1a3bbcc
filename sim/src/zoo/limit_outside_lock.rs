//! B11: the per-user connection limit is checked, then the registry is awaited (a real system
//! would look something up), then the connection is added, outside any lock. Concurrent connects
//! all read a count under the limit and all insert.

use std::sync::Arc;

use wsreg::{
    AgentEvent, ConnectionHandle, Error, Mode, Observer, RegistryConfig, RegistryView, Sink,
    UserContext,
};

use crate::backend::{registry, Backend, Connected, CoreBackend, Probe};

/// The planted B11.
pub struct LimitOutsideLock {
    core: CoreBackend,
    limit: usize,
}

impl Backend for LimitOutsideLock {
    type Handle = ConnectionHandle;

    fn build(config: RegistryConfig, observer: Option<Arc<dyn Observer>>) -> Self {
        let limit = config.max_connections_per_user;
        // The registry's own (atomic) check is what this variant replaces, so it is lifted.
        let loose = RegistryConfig {
            max_connections_per_user: usize::MAX,
            ..config
        };
        Self {
            core: CoreBackend::new(registry(loose, observer)),
            limit,
        }
    }

    async fn connect(
        &self,
        ctx: &UserContext,
        sink: Box<dyn Sink>,
    ) -> Result<Connected<ConnectionHandle>, Error> {
        let count = self.core.probe(ctx).map_or(0, |p| p.connections);
        if count >= self.limit {
            return Err(Error::UserConnectionLimit {
                user: ctx.user_id().to_owned(),
                max: self.limit,
            });
        }
        tokio::task::yield_now().await; // the check and the insert are not atomic
        self.core.connect(ctx, sink).await
    }

    async fn close(&self, handle: &ConnectionHandle) -> Result<(), Error> {
        self.core.close(handle).await
    }

    fn emit(&self, ctx: &UserContext, event: AgentEvent) -> Result<u64, Error> {
        self.core.emit(ctx, event)
    }

    fn send_text(&self, ctx: &UserContext, text: &str) -> Result<u64, Error> {
        self.core.send_text(ctx, text)
    }

    fn set_mode(&self, ctx: &UserContext, mode: Mode) -> Result<(), Error> {
        self.core.set_mode(ctx, mode)
    }

    fn probe(&self, ctx: &UserContext) -> Option<Probe> {
        self.core.probe(ctx)
    }

    fn inspect(&self) -> RegistryView {
        self.core.inspect()
    }
}
