//! Cleanup that removes too much or the wrong thing: B12 closing one tab strips the user's other
//! connections from an index, B13 a deferred cleanup removes the healthy reconnected socket.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use wsreg::{ConnectionHandle, Error, Position, RegistryConfig, Sink, UserContext};

use super::plant::Plant;
use crate::backend::{Backend, Connected, CoreBackend, Probe};

/// B12: a second index (user → connection ids) that a close empties for the whole user.
pub struct OverBroadCleanup {
    core: CoreBackend,
    index: Mutex<BTreeMap<String, BTreeSet<u64>>>,
}

impl Plant for OverBroadCleanup {
    fn plant(core: CoreBackend, _: &RegistryConfig) -> Self {
        Self {
            core,
            index: Mutex::new(BTreeMap::new()),
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
        let mut index = self.index.lock().expect("index");
        index
            .entry(ctx.user_id().to_owned())
            .or_default()
            .insert(c.conn);
        Ok(c)
    }
    async fn close(&self, handle: &ConnectionHandle) -> Result<(), Error> {
        self.index
            .lock()
            .expect("index")
            .remove(handle.user().as_str());
        handle.close()
    }
    fn probe(&self, ctx: &UserContext) -> Option<Probe> {
        let mut p = self.core.probe(ctx)?;
        p.connections = self
            .index
            .lock()
            .expect("index")
            .get(ctx.user_id())
            .map_or(0, BTreeSet::len);
        Some(p)
    }
}

/// B13: closing a connection looks the user's socket up again and removes the newest one, which
/// after a reconnect is the healthy one, not the failed one.
pub struct CleanupHitsReconnect(CoreBackend);

impl Plant for CleanupHitsReconnect {
    fn plant(core: CoreBackend, _: &RegistryConfig) -> Self {
        Self(core)
    }
    fn core(&self) -> &CoreBackend {
        &self.0
    }
    async fn close(&self, handle: &ConnectionHandle) -> Result<(), Error> {
        let manager = handle.manager();
        let newest = manager.view().connections.last().map(|c| c.id);
        match newest {
            Some(id) => manager.remove_connection(id),
            None => handle.close(),
        }
    }
}
