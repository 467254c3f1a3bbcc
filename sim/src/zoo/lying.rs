//! Bugs whose self-report lies, and bugs only a client sees. The registry underneath reports
//! its own state truthfully; what goes wrong happens where it cannot look (between the
//! registry and the socket, or in a registry it does not know about), so an oracle that
//! believes the backend's account misses them, and only what the tabs read shows them:
//! B23 a socket writer that drops thinking steps and reports them written, B24 a second,
//! unreported registry that every other tab of a user is filed in, B25 a writer that swaps a
//! tool call with the event after it, B26 a resume that writes its first agent event twice.

use std::collections::BTreeMap;
use std::sync::Mutex;

use wsreg::{
    Envelope, Error, Payload, Position, Registry, RegistryConfig, SendFuture, Sink, UserContext,
};

use super::plant::Plant;
use crate::run::backend::{registry, Backend, BoxFuture, Connected};

/// Whether an envelope carries an agent event of this kind (`agent_thinking`, ...).
fn is_event(envelope: &Envelope, kind: &str) -> bool {
    matches!(envelope.payload(), Payload::Agent(event) if event.kind() == kind)
}

/// B23: the socket writer drops every thinking step and says it wrote it; the registry, told
/// the write succeeded, reports the message delivered.
pub struct DropsThinking;

struct WithoutThinking(Box<dyn Sink>);

impl Sink for WithoutThinking {
    fn send(&mut self, envelope: Envelope) -> SendFuture<'_> {
        if is_event(&envelope, "agent_thinking") {
            return Box::pin(async { Ok(()) });
        }
        self.0.send(envelope)
    }
}

impl Plant for DropsThinking {
    fn wrap_sink(&self, sink: Box<dyn Sink>, _: Option<Position>) -> Box<dyn Sink> {
        Box::new(WithoutThinking(sink))
    }
}

/// B24: a "replica" registry nobody reports on takes every second connection of each user
/// (a load balancer's idea, say). Everything observable shows one manager per user; the
/// user's messages all go through the first registry, and the tabs filed in the replica never
/// see them.
pub struct HiddenReplica {
    replica: Registry,
    connects: Mutex<BTreeMap<String, u64>>,
}

impl HiddenReplica {
    /// The replica is built with the run's limits, and reports to nobody.
    pub fn new(config: &RegistryConfig) -> Self {
        Self {
            replica: registry(config.clone(), None),
            connects: Mutex::default(),
        }
    }
}

impl Plant for HiddenReplica {
    fn connect<'a>(
        &'a self,
        core: &'a Registry,
        ctx: &'a UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> BoxFuture<'a, Result<Connected, Error>> {
        Box::pin(async move {
            let n = {
                let mut connects = self.connects.lock().unwrap_or_else(|e| e.into_inner());
                let n = connects.entry(ctx.user_id().to_owned()).or_insert(0);
                *n += 1;
                *n
            };
            let target = if n % 2 == 0 { &self.replica } else { core };
            Backend::connect(target, ctx, sink, resume).await
        })
    }
}

/// B25: the socket writer holds each `tool_executing` back and writes it after the event that
/// follows it, so a client sees the tool complete before it started.
pub struct SwapsToolCalls;

struct Swapping {
    inner: Box<dyn Sink>,
    held: Option<Envelope>,
}

impl Sink for Swapping {
    fn send(&mut self, envelope: Envelope) -> SendFuture<'_> {
        Box::pin(async move {
            if self.held.is_none() && is_event(&envelope, "tool_executing") {
                self.held = Some(envelope);
                return Ok(());
            }
            self.inner.send(envelope).await?;
            match self.held.take() {
                Some(held) => self.inner.send(held).await,
                None => Ok(()),
            }
        })
    }
}

impl Plant for SwapsToolCalls {
    fn wrap_sink(&self, sink: Box<dyn Sink>, _: Option<Position>) -> Box<dyn Sink> {
        Box::new(Swapping {
            inner: sink,
            held: None,
        })
    }
}

/// B26: a resumed connection writes the first agent event of its catch-up twice (a retry
/// after a write the writer wrongly thought had failed).
pub struct ResumeRepeatsEvent;

struct RepeatFirstEvent {
    inner: Box<dyn Sink>,
    repeated: bool,
}

impl Sink for RepeatFirstEvent {
    fn send(&mut self, envelope: Envelope) -> SendFuture<'_> {
        Box::pin(async move {
            let again = !self.repeated && matches!(envelope.payload(), Payload::Agent(_));
            if again {
                self.repeated = true;
                self.inner.send(envelope.clone()).await?;
            }
            self.inner.send(envelope).await
        })
    }
}

impl Plant for ResumeRepeatsEvent {
    fn wrap_sink(&self, sink: Box<dyn Sink>, resume: Option<Position>) -> Box<dyn Sink> {
        match resume {
            Some(_) => Box::new(RepeatFirstEvent {
                inner: sink,
                repeated: false,
            }),
            None => sink,
        }
    }
}
