//! [`HandshakeListener`]: a TCP listener for `axum::serve` that gives every connection the
//! native listener's handshake timeout. axum serves a connection for as long as its request
//! takes to arrive, so a client that opens connections and never finishes a request holds each
//! one (and a file descriptor) for ever; here, a connection whose request head has not arrived
//! whole within the timeout is dropped. Once the head is in, the connection is not timed again.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;

/// What ends a request head.
const HEAD_END: &[u8; 4] = b"\r\n\r\n";

/// A listener whose connections must send their request head within `timeout`.
///
/// ```ignore
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// let listener = wsreg_server::axum::HandshakeListener::new(listener, &server);
/// axum::serve(listener, app).await
/// ```
#[derive(Debug)]
pub struct HandshakeListener {
    inner: TcpListener,
    timeout: Duration,
}

impl HandshakeListener {
    /// `inner`, with `server`'s handshake timeout.
    pub fn new(inner: TcpListener, server: &crate::server::Server) -> Self {
        Self::with_timeout(inner, server.config().handshake_timeout)
    }

    /// `inner`, with this timeout.
    pub fn with_timeout(inner: TcpListener, timeout: Duration) -> Self {
        Self { inner, timeout }
    }
}

impl axum::serve::Listener for HandshakeListener {
    type Io = HeadDeadline<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        let _ = stream.set_nodelay(true);
        (HeadDeadline::new(stream, self.timeout), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection whose reads fail with `TimedOut` once `timeout` has passed without a whole
/// request head (up to the first blank line) having arrived.
#[derive(Debug)]
pub struct HeadDeadline<S> {
    inner: S,
    /// Until the head is in.
    deadline: Option<Pin<Box<Sleep>>>,
    /// How much of [`HEAD_END`] the last bytes read match.
    matched: usize,
}

impl<S> HeadDeadline<S> {
    fn new(inner: S, timeout: Duration) -> Self {
        Self {
            inner,
            deadline: Some(Box::pin(tokio::time::sleep(timeout))),
            matched: 0,
        }
    }

    /// Follows the bytes just read; true once the head's end went by.
    fn head_ends_in(&mut self, bytes: &[u8]) -> bool {
        for &b in bytes {
            if b == HEAD_END[self.matched] {
                self.matched += 1;
                if self.matched == HEAD_END.len() {
                    return true;
                }
            } else {
                self.matched = usize::from(b == HEAD_END[0]);
            }
        }
        false
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for HeadDeadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(deadline) = this.deadline.as_mut() {
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the request head did not arrive within the handshake timeout",
                )));
            }
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        if this.deadline.is_some() {
            let new = buf.filled()[before..].to_vec();
            if this.head_ends_in(&new) {
                this.deadline = None;
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for HeadDeadline<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_ends_at_the_first_blank_line_however_it_is_split() {
        let mut d = HeadDeadline {
            inner: (),
            deadline: None,
            matched: 0,
        };
        assert!(!d.head_ends_in(b"GET / HTTP/1.1\r\nHost: a\r"));
        assert!(!d.head_ends_in(b"\n\r"));
        assert!(d.head_ends_in(b"\n"));
        let mut d = HeadDeadline {
            inner: (),
            deadline: None,
            matched: 0,
        };
        assert!(!d.head_ends_in(b"a\r\n\r\r\n"));
        assert!(d.head_ends_in(b"\r\n"));
    }
}
