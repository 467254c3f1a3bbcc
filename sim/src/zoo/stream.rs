//! Bugs of the stream contract, each one way a realtime server gets resume and catch-up wrong:
//! B19 a resume that replays one message too many, B20 history trimmed without a gap marker,
//! B21 an epoch that survives reaping, B22 catch-up interleaved with live delivery.

use wsreg::{Envelope, Error, Position, Registry, SendFuture, Sink, UserContext};

use super::plant::Plant;
use crate::run::backend::{Backend, BoxFuture, Connected};

/// B19: resuming after `p` starts the replay at `p` itself, while telling the client it
/// continues after `p`: the client's last message arrives twice.
pub struct ResumeOffByOne;

impl Plant for ResumeOffByOne {
    fn connect<'a>(
        &'a self,
        core: &'a Registry,
        ctx: &'a UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> BoxFuture<'a, Result<Connected, Error>> {
        Box::pin(async move {
            let from = resume.map(|p| Position::new(p.epoch, p.seq.saturating_sub(1)));
            let mut c = Backend::connect(core, ctx, sink, from).await?;
            if let Some(asked) = resume.filter(|p| p.epoch == c.from.epoch) {
                c.from = asked;
            }
            Ok(c)
        })
    }
}

/// B20: the history is trimmed as usual, but the gap marker that should announce it is never
/// written to the socket.
pub struct SilentTrim;

struct WithoutGaps(Box<dyn Sink>);

impl Sink for WithoutGaps {
    fn send(&mut self, envelope: Envelope) -> SendFuture<'_> {
        if envelope.payload().is_gap() {
            return Box::pin(async { Ok(()) });
        }
        self.0.send(envelope)
    }
}

impl Plant for SilentTrim {
    fn wrap_sink(&self, sink: Box<dyn Sink>, _: Option<Position>) -> Box<dyn Sink> {
        Box::new(WithoutGaps(sink))
    }
}

/// B21: a position from a reaped manager's stream is taken as a position in the new one, so a
/// client resuming after a reaping skips what the new stream already holds and is told it
/// recovered everything.
pub struct EpochSurvivesReaping;

impl Plant for EpochSurvivesReaping {
    fn connect<'a>(
        &'a self,
        core: &'a Registry,
        ctx: &'a UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> BoxFuture<'a, Result<Connected, Error>> {
        Box::pin(async move {
            let current = core.get_or_create(ctx)?.view();
            let resume = resume.map(|p| Position::new(current.epoch, p.seq.min(current.accepted)));
            Backend::connect(core, ctx, sink, resume).await
        })
    }
}

/// B22: on a resume, the catch-up from history is held back until the first live message has
/// gone out, so the client sees the newest message before the ones it missed.
pub struct CatchUpAfterLive;

struct LiveFirst {
    inner: Box<dyn Sink>,
    /// The stream's last number when the connection resumed: anything up to it is catch-up.
    caught_up_at: u64,
    held: Vec<Envelope>,
}

impl Sink for LiveFirst {
    fn send(&mut self, envelope: Envelope) -> SendFuture<'_> {
        Box::pin(async move {
            if envelope.seq() <= self.caught_up_at {
                self.held.push(envelope);
                return Ok(());
            }
            self.inner.send(envelope).await?;
            for held in std::mem::take(&mut self.held) {
                self.inner.send(held).await?;
            }
            self.caught_up_at = 0;
            Ok(())
        })
    }
}

impl Plant for CatchUpAfterLive {
    fn connect<'a>(
        &'a self,
        core: &'a Registry,
        ctx: &'a UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> BoxFuture<'a, Result<Connected, Error>> {
        Box::pin(async move {
            let head = core.get(ctx.key()).map(|m| m.view().accepted);
            let caught_up_at = match (resume, head) {
                (Some(_), Some(head)) => head,
                _ => 0,
            };
            let sink = LiveFirst {
                inner: sink,
                caught_up_at,
                held: Vec::new(),
            };
            Backend::connect(core, ctx, Box::new(sink), resume).await
        })
    }
}
