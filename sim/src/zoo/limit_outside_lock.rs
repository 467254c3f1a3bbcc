//! B11: the per-user connection limit is checked, then the registry is awaited (a real system
//! would look something up), then the connection is added, outside any lock. Concurrent connects
//! all read a count under the limit and all insert.

use std::sync::Arc;

use wsreg::{ConnectionHandle, Error, Observer, Position, RegistryConfig, Sink, UserContext};

use super::plant::{core, Plant};
use crate::backend::{Backend, Connected, CoreBackend};

/// The planted B11.
pub struct LimitOutsideLock {
    core: CoreBackend,
    limit: usize,
}

impl Plant for LimitOutsideLock {
    fn plant(config: RegistryConfig, observer: Option<Arc<dyn Observer>>) -> Self {
        let limit = config.max_connections_per_user;
        // The registry's own (atomic) check is what this variant replaces, so it is lifted.
        let loose = RegistryConfig {
            max_connections_per_user: usize::MAX,
            ..config
        };
        Self {
            core: core(loose, observer),
            limit,
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
