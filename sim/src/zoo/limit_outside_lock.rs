//! B11: the per-user connection limit is checked, then the registry is awaited (a real system
//! would look something up), then the connection is added, outside any lock. Concurrent connects
//! all read a count under the limit and all insert.

use wsreg::{Error, Position, Registry, RegistryConfig, Sink, UserContext};

use super::plant::Plant;
use crate::run::backend::{Backend, BoxFuture, Connected};

/// The planted B11.
pub struct LimitOutsideLock {
    limit: usize,
}

impl LimitOutsideLock {
    /// Checks the run's per-user limit itself.
    pub fn new(config: &RegistryConfig) -> Self {
        Self {
            limit: config.max_connections_per_user,
        }
    }
}

impl Plant for LimitOutsideLock {
    /// The registry's own (atomic) check is what this variant replaces, so it is lifted.
    fn core_config(config: RegistryConfig) -> RegistryConfig {
        RegistryConfig {
            max_connections_per_user: usize::MAX,
            ..config
        }
    }

    fn connect<'a>(
        &'a self,
        core: &'a Registry,
        ctx: &'a UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> BoxFuture<'a, Result<Connected, Error>> {
        Box::pin(async move {
            let count = Backend::probe(core, ctx).map_or(0, |p| p.connections);
            if count >= self.limit {
                return Err(Error::UserConnectionLimit {
                    user: ctx.user_id().to_owned(),
                    max: self.limit,
                });
            }
            tokio::task::yield_now().await; // the check and the insert are not atomic
            Backend::connect(core, ctx, sink, resume).await
        })
    }
}
