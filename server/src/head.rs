//! [`RequestHead`]: what both the native listener and the axum path hold an upgrade request's
//! head to before any HTTP library parses it, so the two answer the same request the same way:
//!
//! - **Size.** A head over [`MAX_HEAD_BYTES`] gets `431 Request Header Fields Too Large` and the
//!   connection is closed (tungstenite alone dropped it without a word past 64 KiB, and hyper
//!   answered 414: the same request, two answers).
//! - **Time** (axum; the native listener times its whole handshake itself). A head that has not
//!   arrived whole within the handshake timeout ends the connection, so a client that opens
//!   connections and never finishes a request cannot hold them (and file descriptors) for ever.
//!
//! Once the head (up to its blank line) is in, the connection is neither measured nor timed.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// What ends a request head.
const HEAD_END: &[u8; 4] = b"\r\n\r\n";

/// The largest request head accepted, in bytes (a token of several KiB fits many times over).
pub const MAX_HEAD_BYTES: usize = 32 * 1024;

/// What a head over [`MAX_HEAD_BYTES`] is answered.
const TOO_LARGE: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain\r\ncontent-length: 43\r\nconnection: close\r\n\r\nthe request head is over 32 KiB, the limit\n";

/// A connection whose request head is held to [`MAX_HEAD_BYTES`] and, when given a timeout, to
/// arriving whole within it.
#[derive(Debug)]
pub struct RequestHead<S> {
    inner: S,
    /// Until the head is in (none: not timed).
    deadline: Option<Pin<Box<Sleep>>>,
    /// Head bytes read so far.
    read: usize,
    /// The head is in: nothing more is checked.
    done: bool,
    /// How much of [`HEAD_END`] the last bytes read match.
    matched: usize,
}

impl<S> RequestHead<S> {
    /// `inner`, its head held to the size limit and, with `timeout`, to arriving within it.
    pub fn new(inner: S, timeout: Option<Duration>) -> Self {
        Self {
            inner,
            deadline: timeout.map(|t| Box::pin(tokio::time::sleep(t))),
            read: 0,
            done: false,
            matched: 0,
        }
    }

    /// Follows the bytes just read: how many of them belong to the head, when its end is
    /// among them.
    fn head_len(&mut self, bytes: &[u8]) -> Option<usize> {
        for (i, &b) in bytes.iter().enumerate() {
            if b == HEAD_END[self.matched] {
                self.matched += 1;
                if self.matched == HEAD_END.len() {
                    return Some(i + 1);
                }
            } else {
                self.matched = usize::from(b == HEAD_END[0]);
            }
        }
        None
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RequestHead<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.done {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
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
        let new = &buf.filled()[before..];
        let head = match this.head_len(new) {
            Some(n) => {
                this.done = true;
                this.deadline = None;
                n
            }
            None => new.len(),
        };
        this.read += head;
        if this.read > MAX_HEAD_BYTES {
            // Best effort: a small answer fits in the socket's send buffer.
            let _ = Pin::new(&mut this.inner).poll_write(cx, TOO_LARGE);
            let _ = Pin::new(&mut this.inner).poll_flush(cx);
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the request head is over the limit",
            )));
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for RequestHead<S> {
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

    fn fresh() -> RequestHead<()> {
        RequestHead {
            inner: (),
            deadline: None,
            read: 0,
            done: false,
            matched: 0,
        }
    }

    #[test]
    fn the_head_ends_at_the_first_blank_line_however_it_is_split() {
        let mut h = fresh();
        assert_eq!(h.head_len(b"GET / HTTP/1.1\r\nHost: a\r"), None);
        assert_eq!(h.head_len(b"\n\r"), None);
        assert_eq!(h.head_len(b"\nframes"), Some(1));
        let mut h = fresh();
        assert_eq!(h.head_len(b"a\r\n\r\r\n"), None);
        assert_eq!(h.head_len(b"\r\nmore"), Some(2));
    }

    #[test]
    fn the_answer_says_its_length() {
        let text = std::str::from_utf8(TOO_LARGE).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{text}"
        );
    }
}
