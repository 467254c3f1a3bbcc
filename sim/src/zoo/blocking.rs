//! B17: a blocking lock held across an await. On a single-threaded runtime the second task to
//! reach the lock blocks the thread, and with it every user. Blocking the simulator's thread
//! for real would hang the harness, so the plant wedges instead: once two connects overlap,
//! every later connect and close waits forever, which is what users of such a server see.

use std::sync::atomic::{AtomicBool, Ordering};

use wsreg::{Error, Position, Registry, Sink, UserContext};

use super::plant::{conn, Plant};
use crate::run::backend::{Backend, BoxFuture, Connected, Handle};

/// The planted B17.
#[derive(Default)]
pub struct LockAcrossAwait {
    held: AtomicBool,
    wedged: AtomicBool,
}

impl LockAcrossAwait {
    async fn stall_if_wedged(&self) {
        if self.wedged.load(Ordering::Relaxed) {
            std::future::pending::<()>().await;
        }
    }
}

impl Plant for LockAcrossAwait {
    fn connect<'a>(
        &'a self,
        core: &'a Registry,
        ctx: &'a UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> BoxFuture<'a, Result<Connected, Error>> {
        Box::pin(async move {
            self.stall_if_wedged().await;
            if self.held.swap(true, Ordering::Relaxed) {
                self.wedged.store(true, Ordering::Relaxed);
                self.stall_if_wedged().await;
            }
            tokio::task::yield_now().await; // the await under the lock
            let result = Backend::connect(core, ctx, sink, resume).await;
            self.held.store(false, Ordering::Relaxed);
            result
        })
    }

    fn close<'a>(
        &'a self,
        _: &'a Registry,
        handle: &'a Handle,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            self.stall_if_wedged().await;
            conn(handle)?.close()
        })
    }
}
