//! Delivery across reconnects: B14 messages for an offline user are dropped silently, B15 the
//! messages sent while offline are replayed twice (from two drains).

use std::collections::BTreeMap;
use std::sync::Mutex;

use wsreg::{
    AgentEvent, ConnectionHandle, Epoch, Error, Position, RegistryConfig, Sink, UserContext,
};

use super::plant::Plant;
use crate::backend::{Backend, Connected, CoreBackend};

fn offline(core: &CoreBackend, ctx: &UserContext) -> bool {
    core.probe(ctx).is_some_and(|p| p.connections == 0)
}

/// B14: with no live connection, messages are "sent" into nothing and reported as sent, at the
/// position the next message will really take.
pub struct LostWhileOffline(CoreBackend);

impl LostWhileOffline {
    /// Where the core would put the user's next message.
    fn next_position(&self, ctx: &UserContext) -> Position {
        let view = self.0.registry().get(ctx.key()).map(|m| m.view());
        view.map_or(Position::new(Epoch::new(0, 0), 1), |v| {
            Position::new(v.epoch, v.accepted + 1)
        })
    }
}

impl Plant for LostWhileOffline {
    fn plant(core: CoreBackend, _: &RegistryConfig) -> Self {
        Self(core)
    }
    fn core(&self) -> &CoreBackend {
        &self.0
    }
    fn emit(&self, ctx: &UserContext, event: AgentEvent) -> Result<Position, Error> {
        if offline(&self.0, ctx) {
            return Ok(self.next_position(ctx));
        }
        self.0.emit(ctx, event)
    }
    fn send_text(&self, ctx: &UserContext, text: &str) -> Result<Position, Error> {
        if offline(&self.0, ctx) {
            return Ok(self.next_position(ctx));
        }
        self.0.send_text(ctx, text)
    }
}

/// B15: texts sent while the user is offline are kept in a second buffer too, and that buffer is
/// drained again after the core's own replay on reconnect.
pub struct ReplayedTwice {
    core: CoreBackend,
    held: Mutex<BTreeMap<String, Vec<String>>>,
}

impl Plant for ReplayedTwice {
    fn plant(core: CoreBackend, _: &RegistryConfig) -> Self {
        Self {
            core,
            held: Mutex::new(BTreeMap::new()),
        }
    }
    fn core(&self) -> &CoreBackend {
        &self.core
    }
    fn send_text(&self, ctx: &UserContext, text: &str) -> Result<Position, Error> {
        if offline(&self.core, ctx) {
            let mut held = self.held.lock().expect("held");
            held.entry(ctx.user_id().to_owned())
                .or_default()
                .push(text.to_owned());
        }
        self.core.send_text(ctx, text)
    }
    async fn connect(
        &self,
        ctx: &UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> Result<Connected<ConnectionHandle>, Error> {
        let c = self.core.connect(ctx, sink, resume).await?;
        let again = self.held.lock().expect("held").remove(ctx.user_id());
        for text in again.unwrap_or_default() {
            self.core.send_text(ctx, &text)?;
        }
        Ok(c)
    }
}
