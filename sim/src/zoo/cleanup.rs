//! Cleanup that removes too much or the wrong thing: B12 closing one tab strips the user's other
//! connections from an index, B13 a deferred cleanup removes the healthy reconnected socket.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use wsreg::{Error, Position, Registry, Sink, UserContext};

use super::plant::{conn, Plant};
use crate::run::backend::{Backend, BoxFuture, Connected, Handle, Probe};

/// B12: a second index (user → connection ids) that a close empties for the whole user.
#[derive(Default)]
pub struct OverBroadCleanup {
    index: Mutex<BTreeMap<String, BTreeSet<u64>>>,
}

impl Plant for OverBroadCleanup {
    fn connect<'a>(
        &'a self,
        core: &'a Registry,
        ctx: &'a UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> BoxFuture<'a, Result<Connected, Error>> {
        Box::pin(async move {
            let c = Backend::connect(core, ctx, sink, resume).await?;
            let mut index = self.index.lock().expect("index");
            index
                .entry(ctx.user_id().to_owned())
                .or_default()
                .insert(c.conn);
            Ok(c)
        })
    }

    fn close<'a>(
        &'a self,
        _: &'a Registry,
        handle: &'a Handle,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let handle = conn(handle)?;
            self.index
                .lock()
                .expect("index")
                .remove(handle.user().as_str());
            handle.close()
        })
    }

    fn probe(&self, core: &Registry, ctx: &UserContext) -> Option<Probe> {
        let mut p = Backend::probe(core, ctx)?;
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
pub struct CleanupHitsReconnect;

impl Plant for CleanupHitsReconnect {
    fn close<'a>(
        &'a self,
        _: &'a Registry,
        handle: &'a Handle,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let handle = conn(handle)?;
            let manager = handle.manager();
            let newest = manager.view().connections.last().map(|c| c.id);
            match newest {
                Some(id) => manager.remove_connection(id),
                None => handle.close(),
            }
        })
    }
}
