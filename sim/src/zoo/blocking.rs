//! B17: a blocking lock held across an await. On a single-threaded runtime the second task to
//! reach the lock blocks the thread, and with it every user. Blocking the simulator's thread
//! for real would hang the harness, so the plant wedges instead: once two connects overlap,
//! every later connect and close waits forever, which is what users of such a server see.

use std::sync::atomic::{AtomicBool, Ordering};

use wsreg::{ConnectionHandle, Error, Position, RegistryConfig, Sink, UserContext};

use super::plant::Plant;
use crate::backend::{Backend, Connected, CoreBackend};

/// The planted B17.
pub struct LockAcrossAwait {
    core: CoreBackend,
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
    fn plant(core: CoreBackend, _: &RegistryConfig) -> Self {
        Self {
            core,
            held: AtomicBool::new(false),
            wedged: AtomicBool::new(false),
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
        self.stall_if_wedged().await;
        if self.held.swap(true, Ordering::Relaxed) {
            self.wedged.store(true, Ordering::Relaxed);
            self.stall_if_wedged().await;
        }
        tokio::task::yield_now().await; // the await under the lock
        let result = self.core.connect(ctx, sink, resume).await;
        self.held.store(false, Ordering::Relaxed);
        result
    }
    async fn close(&self, handle: &ConnectionHandle) -> Result<(), Error> {
        self.stall_if_wedged().await;
        handle.close()
    }
}
