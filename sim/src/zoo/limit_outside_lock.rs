//! B11: the per-user connection limit is checked, then the registry is awaited (a real system
//! would look something up), then the connection is added, outside any lock. Concurrent connects
//! all read a count under the limit and all insert.

use wsreg::{ConnectionHandle, Error, Position, RegistryConfig, Sink, UserContext};

use super::plant::Plant;
use crate::backend::{Backend, Connected, CoreBackend};

/// The planted B11.
pub struct LimitOutsideLock {
    core: CoreBackend,
    limit: usize,
}

impl Plant for LimitOutsideLock {
    fn plant(core: CoreBackend, config: &RegistryConfig) -> Self {
        Self {
            core,
            limit: config.max_connections_per_user,
        }
    }

    /// The registry's own (atomic) check is what this variant replaces, so it is lifted.
    fn core_config(config: RegistryConfig) -> RegistryConfig {
        RegistryConfig {
            max_connections_per_user: usize::MAX,
            ..config
        }
    }

    fn core(&self) -> &CoreBackend {
        &self.core
    }

    async fn connect(
        &self,
        ctx: &UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> Result<Connected<ConnectionHandle>, Error> {
        let count = self.core.probe(ctx).map_or(0, |p| p.connections);
        if count >= self.limit {
            return Err(Error::UserConnectionLimit {
                user: ctx.user_id().to_owned(),
                max: self.limit,
            });
        }
        tokio::task::yield_now().await; // the check and the insert are not atomic
        self.core.connect(ctx, sink, resume).await
    }
}
