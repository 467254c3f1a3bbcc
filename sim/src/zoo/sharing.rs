//! State that leaks between users or outlives them: B4 a shared mode cell, B9 managers never
//! deregistered, B10 a failed check that falls back to another user's context.

use std::sync::Mutex;
use std::time::Duration;

use wsreg::{Error, Mode, Position, Registry, RegistryConfig, Sink, UserContext};

use super::plant::Plant;
use crate::run::backend::{Backend, BoxFuture, Connected};

/// B4: every manager reads one mode cell, so one user's change is everyone's.
pub struct SharedMode;

impl Plant for SharedMode {
    fn set_mode(&self, core: &Registry, ctx: &UserContext, mode: Mode) -> Result<(), Error> {
        Backend::set_mode(core, ctx, mode)?;
        for m in core.inspect().managers {
            core.set_mode(&m.user, mode)?;
        }
        Ok(())
    }
}

/// B9: nothing ever deregisters a manager.
pub struct Zombies;

impl Plant for Zombies {
    /// Nothing deregisters: the core's own reaping is switched off.
    fn core_config(config: RegistryConfig) -> RegistryConfig {
        RegistryConfig {
            idle_ttl: Duration::from_secs(365 * 24 * 3600),
            ..config
        }
    }
}

/// B10: when a connect fails validation (here: the user is at its connection limit), the
/// request "falls open" and registers the socket with the last context that passed: another
/// user's.
pub struct FailOpen {
    limit: usize,
    last_good: Mutex<Option<UserContext>>,
}

impl FailOpen {
    /// Validates against the run's per-user limit.
    pub fn new(config: &RegistryConfig) -> Self {
        Self {
            limit: config.max_connections_per_user,
            last_good: Mutex::new(None),
        }
    }
}

impl Plant for FailOpen {
    fn connect<'a>(
        &'a self,
        core: &'a Registry,
        ctx: &'a UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> BoxFuture<'a, Result<Connected, Error>> {
        Box::pin(async move {
            let invalid = Backend::probe(core, ctx).is_some_and(|p| p.connections >= self.limit);
            let fallback = self.last_good.lock().expect("last").clone();
            let filed = match fallback {
                Some(other) if invalid && other.user_id() != ctx.user_id() => other,
                _ => ctx.clone(),
            };
            let handle = core.resume(&filed, sink, resume)?;
            if !invalid {
                *self.last_good.lock().expect("last") = Some(ctx.clone());
            }
            Ok(wsreg::backend::connected(handle))
        })
    }
}
