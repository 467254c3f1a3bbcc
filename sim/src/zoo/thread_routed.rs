//! B16: managers are keyed correctly, but events are routed by the emitter's thread id to
//! whichever user last connected with that thread id, as if the thread id were a user id.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use wsreg::{
    AgentEvent, ConnectionHandle, Error, Mode, Observer, Registry, RegistryConfig, RegistryView,
    Sink, UserContext, UserKey,
};

use crate::backend::{connected, probe_registry, registry, Backend, Connected, Probe};

/// The planted B16.
pub struct ThreadRouted {
    registry: Registry,
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

impl Backend for ThreadRouted {
    type Handle = ConnectionHandle;

    fn build(config: RegistryConfig, observer: Option<Arc<dyn Observer>>) -> Self {
        Self {
            registry: registry(config, observer),
            owner_of_thread: Mutex::new(BTreeMap::new()),
        }
    }

    async fn connect(
        &self,
        ctx: &UserContext,
        sink: Box<dyn Sink>,
    ) -> Result<Connected<ConnectionHandle>, Error> {
        let handle = self.registry.connect(ctx, sink)?;
        if let Some(thread) = ctx.thread_id() {
            let mut owners = self.owner_of_thread.lock().expect("map");
            owners.insert(thread.to_owned(), ctx.key().clone());
        }
        Ok(connected(handle))
    }

    async fn close(&self, handle: &ConnectionHandle) -> Result<(), Error> {
        handle.close()
    }

    fn emit(&self, ctx: &UserContext, event: AgentEvent) -> Result<u64, Error> {
        self.registry.emit(&self.route(ctx), event)
    }

    fn send_text(&self, ctx: &UserContext, text: &str) -> Result<u64, Error> {
        self.registry.send_text(&self.route(ctx), text)
    }

    fn set_mode(&self, ctx: &UserContext, mode: Mode) -> Result<(), Error> {
        self.registry.set_mode(ctx.key(), mode)
    }

    fn probe(&self, ctx: &UserContext) -> Option<Probe> {
        probe_registry(&self.registry, ctx.key())
    }

    fn inspect(&self) -> RegistryView {
        self.registry.inspect()
    }
}
