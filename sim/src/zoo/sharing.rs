//! State that leaks between users or outlives them: B4 a shared mode cell, B9 managers never
//! deregistered, B10 a failed check that falls back to another user's context.

use std::sync::Mutex;
use std::time::Duration;

use wsreg::{ConnectionHandle, Error, Mode, Position, RegistryConfig, Sink, UserContext};

use super::plant::Plant;
use crate::backend::{Backend, Connected, CoreBackend};

/// B4: every manager reads one mode cell, so one user's change is everyone's.
pub struct SharedMode(CoreBackend);

impl Plant for SharedMode {
    fn plant(core: CoreBackend, _: &RegistryConfig) -> Self {
        Self(core)
    }
    fn core(&self) -> &CoreBackend {
        &self.0
    }
    fn set_mode(&self, ctx: &UserContext, mode: Mode) -> Result<(), Error> {
        self.0.set_mode(ctx, mode)?;
        for m in self.0.registry().inspect().managers {
            self.0.registry().set_mode(&m.user, mode)?;
        }
        Ok(())
    }
}

/// B9: nothing ever deregisters a manager.
pub struct Zombies(CoreBackend);

impl Plant for Zombies {
    fn plant(core: CoreBackend, _: &RegistryConfig) -> Self {
        Self(core)
    }
    /// Nothing deregisters: the core's own reaping is switched off.
    fn core_config(config: RegistryConfig) -> RegistryConfig {
        RegistryConfig {
            idle_ttl: Duration::from_secs(365 * 24 * 3600),
            ..config
        }
    }
    fn core(&self) -> &CoreBackend {
        &self.0
    }
}

/// B10: when a connect fails validation (here: the user is at its connection limit), the
/// request "falls open" and registers the socket with the last context that passed: another
/// user's.
pub struct FailOpen {
    core: CoreBackend,
    limit: usize,
    last_good: Mutex<Option<UserContext>>,
}

impl Plant for FailOpen {
    fn plant(core: CoreBackend, config: &RegistryConfig) -> Self {
        Self {
            limit: config.max_connections_per_user,
            core,
            last_good: Mutex::new(None),
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
        let invalid = self
            .core
            .probe(ctx)
            .is_some_and(|p| p.connections >= self.limit);
        let fallback = self.last_good.lock().expect("last").clone();
        let filed = match fallback {
            Some(other) if invalid && other.user_id() != ctx.user_id() => other,
            _ => ctx.clone(),
        };
        let handle = self.core.registry().resume(&filed, sink, resume)?;
        if !invalid {
            *self.last_good.lock().expect("last") = Some(ctx.clone());
        }
        Ok(crate::backend::connected(handle))
    }
}
