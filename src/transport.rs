//! The transport seam: a connection's outbound [`Sink`], and an in-memory [`ChannelSink`].

use std::future::Future;
use std::pin::Pin;

use thiserror::Error;
use tokio::sync::mpsc;

use crate::event::Envelope;

/// The future a [`Sink`] returns.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + 'a>>;

/// The transport failed; the connection is closed by the core.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("transport closed: {0}")]
pub struct SinkError(pub String);

/// Where one connection's messages go: a WebSocket in production, a channel in tests and in the
/// simulator. The core calls `send` from one task per connection, one message at a time, so a slow
/// sink applies backpressure to that connection's queue only.
///
/// `send` must be cancel-safe: the core may drop the future when the connection is closed, and a
/// dropped send must not have delivered the message.
pub trait Sink: Send + 'static {
    /// Delivers one message. An error closes the connection.
    fn send(&mut self, envelope: Envelope) -> SendFuture<'_>;
}

impl<S: Sink + ?Sized> Sink for Box<S> {
    fn send(&mut self, envelope: Envelope) -> SendFuture<'_> {
        (**self).send(envelope)
    }
}

/// A [`Sink`] over a bounded tokio channel.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), wsreg::Error> {
/// use wsreg::{channel_sink, Registry, UserContext};
/// let registry = Registry::default();
/// let ctx = UserContext::new("alice")?;
/// let (sink, mut inbox) = channel_sink(16);
/// registry.connect(&ctx, sink)?;
/// registry.send_text(ctx.key(), "hello")?;
/// assert_eq!(inbox.recv().await.unwrap().seq(), 1);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ChannelSink {
    tx: mpsc::Sender<Envelope>,
}

/// A [`ChannelSink`] and the receiving end, with room for `capacity` messages (at least 1).
pub fn channel_sink(capacity: usize) -> (ChannelSink, mpsc::Receiver<Envelope>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (ChannelSink { tx }, rx)
}

impl Sink for ChannelSink {
    fn send(&mut self, envelope: Envelope) -> SendFuture<'_> {
        Box::pin(async move {
            self.tx
                .send(envelope)
                .await
                .map_err(|_| SinkError("the receiver is gone".into()))
        })
    }
}
