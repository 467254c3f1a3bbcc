//! B27: the per-user limit is checked against the user's tabs plus the one being opened, and
//! the one being opened is counted again: a user is refused one tab before its limit, with an
//! error that names the limit. A registry that reports its own count truthfully still passes
//! every check of its account; only a client that counts its own tabs sees the refusal is false.

use wsreg::{Error, Position, Registry, RegistryConfig, Sink, UserContext};

use super::plant::Plant;
use crate::run::backend::{Backend, BoxFuture, Connected};

/// The planted B27.
pub struct FalseRefusal {
    limit: usize,
}

impl FalseRefusal {
    /// Checks the run's per-user limit itself.
    pub fn new(config: &RegistryConfig) -> Self {
        Self {
            limit: config.max_connections_per_user,
        }
    }
}

impl Plant for FalseRefusal {
    fn connect<'a>(
        &'a self,
        core: &'a Registry,
        ctx: &'a UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> BoxFuture<'a, Result<Connected, Error>> {
        Box::pin(async move {
            let open = Backend::probe(core, ctx).map_or(0, |p| p.connections);
            let counted = open + 1; // the tab being opened...
            if counted + 1 > self.limit {
                // ...counted a second time
                return Err(Error::UserConnectionLimit {
                    user: ctx.user_id().to_owned(),
                    max: self.limit,
                });
            }
            Backend::connect(core, ctx, sink, resume).await
        })
    }
}
