//! B16: managers are keyed correctly, but events are routed by the emitter's thread id to
//! whichever user last connected with that thread id, as if the thread id were a user id.

use std::collections::BTreeMap;
use std::sync::Mutex;

use wsreg::{
    AgentEvent, ConnectionHandle, Error, Position, RegistryConfig, Sink, UserContext, UserKey,
};

use super::plant::Plant;
use crate::backend::{Backend, Connected, CoreBackend};

/// The planted B16.
pub struct ThreadRouted {
    core: CoreBackend,
    owner_of_thread: Mutex<BTreeMap<String, UserKey>>,
}

impl ThreadRouted {
    fn route(&self, ctx: &UserContext) -> UserKey {
        let owners = self.owner_of_thread.lock().expect("map");
        ctx.thread_id()
            .and_then(|t| owners.get(t).cloned())
            .unwrap_or_else(|| ctx.key().clone())
    }
}

impl Plant for ThreadRouted {
    fn plant(core: CoreBackend, _: &RegistryConfig) -> Self {
        Self {
            core,
            owner_of_thread: Mutex::new(BTreeMap::new()),
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
        let c = self.core.connect(ctx, sink, resume).await?;
        if let Some(thread) = ctx.thread_id() {
            let mut owners = self.owner_of_thread.lock().expect("map");
            owners.insert(thread.to_owned(), ctx.key().clone());
        }
        Ok(c)
    }

    fn emit(&self, ctx: &UserContext, event: AgentEvent) -> Result<Position, Error> {
        self.core.registry().emit(&self.route(ctx), event)
    }

    fn send_text(&self, ctx: &UserContext, text: &str) -> Result<Position, Error> {
        self.core.registry().send_text(&self.route(ctx), text)
    }
}
