//! B29: a connect is handed to a background task (it looks the user up first, which takes a
//! few milliseconds), and the caller waits for its answer. A client that gives up waiting drops
//! only the wait: the task registers the connection anyway, a tab nobody holds, which takes a
//! slot of the user's and receives the user's messages for ever.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::oneshot;
use wsreg::{Error, Position, Registry, Sink, UserContext};

use super::plant::Plant;
use crate::run::backend::{Backend, BoxFuture, Connected};

/// The planted B29.
#[derive(Default)]
pub struct RegistersAfterGiveUp {
    connects: AtomicU64,
}

impl Plant for RegistersAfterGiveUp {
    fn connect<'a>(
        &'a self,
        core: &'a Registry,
        ctx: &'a UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> BoxFuture<'a, Result<Connected, Error>> {
        // The lookup's time: 0 to 60 ms, varying from one connect to the next.
        let n = self.connects.fetch_add(1, Ordering::Relaxed);
        let lookup = Duration::from_millis((n * 23) % 61);
        let (core, ctx) = (core.clone(), ctx.clone());
        let (answer, answered) = oneshot::channel();
        tokio::spawn(async move {
            tokio::time::sleep(lookup).await;
            let _ = answer.send(Backend::connect(&core, &ctx, sink, resume).await);
        });
        Box::pin(async move {
            answered.await.unwrap_or_else(|_| {
                Err(Error::ShuttingDown) // the task died with the runtime
            })
        })
    }
}
