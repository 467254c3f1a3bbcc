//! B16: managers are keyed correctly, but events are routed by the emitter's thread id to
//! whichever user last connected with that thread id, as if the thread id were a user id.

use std::collections::BTreeMap;
use std::sync::Mutex;

use wsreg::{AgentEvent, Error, Position, Registry, Sink, UserContext, UserKey};

use super::plant::Plant;
use crate::run::backend::{Backend, BoxFuture, Connected};

/// The planted B16.
#[derive(Default)]
pub struct ThreadRouted {
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
    fn connect<'a>(
        &'a self,
        core: &'a Registry,
        ctx: &'a UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> BoxFuture<'a, Result<Connected, Error>> {
        Box::pin(async move {
            let c = Backend::connect(core, ctx, sink, resume).await?;
            if let Some(thread) = ctx.thread_id() {
                let mut owners = self.owner_of_thread.lock().expect("map");
                owners.insert(thread.to_owned(), ctx.key().clone());
            }
            Ok(c)
        })
    }

    fn emit(
        &self,
        core: &Registry,
        ctx: &UserContext,
        event: AgentEvent,
    ) -> Result<Position, Error> {
        core.emit(&self.route(ctx), event)
    }

    fn send_text(&self, core: &Registry, ctx: &UserContext, text: &str) -> Result<Position, Error> {
        core.send_text(&self.route(ctx), text)
    }
}
