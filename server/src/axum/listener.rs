//! [`HandshakeListener`]: a TCP listener for `axum::serve` that holds every connection's request
//! head to what the native listener holds it to (see [`crate::head`]): its size, and the
//! handshake timeout, which axum alone does not have.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use crate::head::RequestHead;

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
    type Io = RequestHead<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        let _ = stream.set_nodelay(true);
        (RequestHead::new(stream, Some(self.timeout)), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}
