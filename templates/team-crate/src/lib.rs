//! A team's WebSocket gateway: the wsreg core keeps each user's managers and streams, and the
//! gateway adds a rule of its own product, a cap on each user's open tabs kept in its own
//! session table. It is a `wsreg::Backend`, so the server can serve it and `wsreg-sim` can fuzz
//! it (`src/bin/fuzz.rs`).
//!
//! [`Release::OnlyIfClosed`] is the kind of bug this template exists to show being caught: a
//! session slot is given back only when the core's close succeeds, so a tab whose socket the
//! core had already dropped (a crashed client, noticed by a failed send) keeps its slot for
//! ever, and the user is refused below the cap.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use wsreg::backend::{Backend, BoxFuture, Capabilities, Connected, Handle, Probe};
use wsreg::{
    AgentEvent, Error, Mode, Observer, Position, Registry, RegistryConfig, RegistryView, Sink,
    UserContext,
};

/// When a tab's session slot is given back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    /// Whenever the tab is closed, whatever the core answers (the tab is gone either way).
    Always,
    /// Only when the core's close succeeds (the bug).
    OnlyIfClosed,
}

/// The gateway.
pub struct Gateway {
    core: Registry,
    cap: usize,
    release: Release,
    /// Open tabs per user id: the session table.
    sessions: Mutex<BTreeMap<String, usize>>,
}

/// What the gateway hands out for a tab: the core's handle, and whose tab it is.
struct Session {
    user: String,
    core: Handle,
}

impl Gateway {
    /// A gateway capping each user at `config.max_connections_per_user` tabs itself, over a
    /// core (reporting to `observer`) that leaves that cap to it.
    pub fn new(
        release: Release,
        config: RegistryConfig,
        observer: Option<Arc<dyn Observer>>,
    ) -> Self {
        let cap = config.max_connections_per_user;
        let config = RegistryConfig {
            max_connections_per_user: usize::MAX,
            ..config
        };
        let core = match observer {
            Some(observer) => Registry::with_observer(config, observer),
            None => Registry::new(config),
        };
        Self {
            core,
            cap,
            release,
            sessions: Mutex::new(BTreeMap::new()),
        }
    }

    fn sessions(&self) -> MutexGuard<'_, BTreeMap<String, usize>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes one of `user`'s slots, or refuses at the cap (checked and taken under one lock).
    fn take_slot(&self, user: &str) -> Result<(), Error> {
        let mut sessions = self.sessions();
        let open = sessions.entry(user.to_owned()).or_insert(0);
        if *open >= self.cap {
            return Err(Error::UserConnectionLimit {
                user: user.to_owned(),
                max: self.cap,
            });
        }
        *open += 1;
        Ok(())
    }

    fn give_back(&self, user: &str) {
        let mut sessions = self.sessions();
        if let Some(open) = sessions.get_mut(user) {
            *open -= 1;
            if *open == 0 {
                sessions.remove(user);
            }
        }
    }
}

impl Backend for Gateway {
    fn connect<'a>(
        &'a self,
        ctx: &'a UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> BoxFuture<'a, Result<Connected, Error>> {
        Box::pin(async move {
            self.take_slot(ctx.user_id())?;
            match Backend::connect(&self.core, ctx, sink, resume).await {
                Ok(mut connected) => {
                    let core = std::mem::replace(&mut connected.handle, Handle::new(()));
                    let user = ctx.user_id().to_owned();
                    connected.handle = Handle::new(Session { user, core });
                    Ok(connected)
                }
                Err(e) => {
                    self.give_back(ctx.user_id());
                    Err(e)
                }
            }
        })
    }

    fn close<'a>(&'a self, handle: &'a Handle) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let session = handle.own::<Session>()?;
            let closed = Backend::close(&self.core, &session.core).await;
            if closed.is_ok() || self.release == Release::Always {
                self.give_back(&session.user);
            }
            closed
        })
    }

    fn emit<'a>(
        &'a self,
        ctx: &'a UserContext,
        event: AgentEvent,
    ) -> BoxFuture<'a, Result<Position, Error>> {
        Backend::emit(&self.core, ctx, event)
    }

    fn send_text<'a>(
        &'a self,
        ctx: &'a UserContext,
        text: &'a str,
    ) -> BoxFuture<'a, Result<Position, Error>> {
        Backend::send_text(&self.core, ctx, text)
    }

    fn set_mode(&self, ctx: &UserContext, mode: Mode) -> Result<(), Error> {
        Backend::set_mode(&self.core, ctx, mode)
    }

    fn capabilities(&self) -> Capabilities {
        Backend::capabilities(&self.core)
    }

    fn probe(&self, ctx: &UserContext) -> Option<Probe> {
        Backend::probe(&self.core, ctx)
    }

    fn inspect(&self) -> Option<RegistryView> {
        Backend::inspect(&self.core)
    }
}
