//! Delivery across reconnects: B14 messages for an offline user are dropped silently, B15 the
//! messages sent while offline are replayed twice (from two drains).

use std::collections::BTreeMap;
use std::sync::Mutex;

use wsreg::{AgentEvent, Epoch, Error, Position, Registry, Sink, UserContext};

use super::plant::Plant;
use crate::run::backend::{Backend, BoxFuture, Connected};

fn offline(core: &Registry, ctx: &UserContext) -> bool {
    Backend::probe(core, ctx).is_some_and(|p| p.connections == 0)
}

/// B14: with no live connection, messages are "sent" into nothing and reported as sent, at the
/// position the next message will really take.
pub struct LostWhileOffline;

/// Where the core would put the user's next message.
fn next_position(core: &Registry, ctx: &UserContext) -> Position {
    let view = core.get(ctx.key()).map(|m| m.view());
    view.map_or(Position::new(Epoch::new(0, 0), 1), |v| {
        Position::new(v.epoch, v.accepted + 1)
    })
}

impl Plant for LostWhileOffline {
    fn emit(
        &self,
        core: &Registry,
        ctx: &UserContext,
        event: AgentEvent,
    ) -> Result<Position, Error> {
        if offline(core, ctx) {
            return Ok(next_position(core, ctx));
        }
        core.emit(ctx.key(), event)
    }

    fn send_text(&self, core: &Registry, ctx: &UserContext, text: &str) -> Result<Position, Error> {
        if offline(core, ctx) {
            return Ok(next_position(core, ctx));
        }
        core.send_text(ctx.key(), text)
    }
}

/// B15: texts sent while the user is offline are kept in a second buffer too, and that buffer is
/// drained again after the core's own replay on reconnect.
#[derive(Default)]
pub struct ReplayedTwice {
    held: Mutex<BTreeMap<String, Vec<String>>>,
}

impl Plant for ReplayedTwice {
    fn send_text(&self, core: &Registry, ctx: &UserContext, text: &str) -> Result<Position, Error> {
        if offline(core, ctx) {
            let mut held = self.held.lock().expect("held");
            held.entry(ctx.user_id().to_owned())
                .or_default()
                .push(text.to_owned());
        }
        core.send_text(ctx.key(), text)
    }

    fn connect<'a>(
        &'a self,
        core: &'a Registry,
        ctx: &'a UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> BoxFuture<'a, Result<Connected, Error>> {
        Box::pin(async move {
            let c = Backend::connect(core, ctx, sink, resume).await?;
            let again = self.held.lock().expect("held").remove(ctx.user_id());
            for text in again.unwrap_or_default() {
                core.send_text(ctx.key(), &text)?;
            }
            Ok(c)
        })
    }
}
