//! The axum path: wsreg inside an axum application.
//!
//! [`upgrade`] is an axum handler. It checks the upgrade request exactly as the server's own
//! listener does (the same token in `?token=`, the same `thread`, `since` and `epoch`, the same
//! 401 and 400 refusals, counted in the same metrics), then hands the socket to the same
//! per-socket protocol: welcome, stream frames, gap markers, heartbeats, budgets, timeouts.
//! [`router`] mounts it at `/ws` beside `/metrics` and `/healthz`; [`ops_router`] is just the
//! latter two (what `wsreg-server serve --metrics-addr` serves).
//!
//! This is `examples/axum_app.rs`, which `tests/axum.rs` runs with real clients (not compiled
//! here: doctests also build under the simulator, where this module does not exist):
//!
//! ```ignore
//! # async fn run() -> std::io::Result<()> {
//! use wsreg_server::{Server, ServerConfig};
//!
//! let server = Server::new(ServerConfig::new(b"a real secret", || 0));
//! let app = axum::Router::new()
//!     .route("/", axum::routing::get(|| async { "my app" }))
//!     .merge(wsreg_server::axum::router(server.clone()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! // The native listener's handshake timeout, for connections axum would otherwise hold for ever.
//! let listener = wsreg_server::axum::HandshakeListener::new(listener, &server);
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! axum reports a broken frame as an opaque error, so a socket served this way closes without
//! the specific 1002/1007/1009 code the server's own listener sends; everything else is the same.
//! Only for real tokio: inside the simulator the server runs on its own listener.

use std::io;
use std::sync::Arc;

use axum::extract::ws::{self, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::{future, SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::handshake::{authenticate, Handshake};
use crate::server::Server;

mod listener;
pub use listener::HandshakeListener;

/// `/ws` (the WebSocket endpoint), `/metrics` and `/healthz`, over one server.
pub fn router(server: Arc<Server>) -> Router {
    Router::new()
        .route("/ws", get(upgrade))
        .merge(ops_router(Arc::clone(&server)))
        .with_state(server)
}

/// `/metrics` (Prometheus's text format) and `/healthz` (200 `ok` while serving, 503 once the
/// server is shutting down).
pub fn ops_router<S: Clone + Send + Sync + 'static>(server: Arc<Server>) -> Router<S> {
    let metrics = Arc::clone(&server);
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let body = metrics.render_metrics();
                future::ready(
                    (
                        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
                        body,
                    )
                        .into_response(),
                )
            }),
        )
        .route(
            "/healthz",
            get(move || {
                future::ready(if server.is_closing() {
                    (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
                } else {
                    (StatusCode::OK, "ok\n").into_response()
                })
            }),
        )
}

/// The WebSocket handler: authenticates the upgrade request, then serves the socket.
pub async fn upgrade(
    State(server): State<Arc<Server>>,
    RawQuery(query): RawQuery,
    ws: WebSocketUpgrade,
) -> Response {
    let config = server.config();
    match authenticate(query.as_deref(), &config.secret, (config.now_ms)()) {
        Err(refused) => {
            server.metrics().refused(refused.reason);
            let status = StatusCode::from_u16(refused.status).unwrap_or(StatusCode::BAD_REQUEST);
            (status, refused.why).into_response()
        }
        Ok(asked) if !server.may_connect(asked.ctx.user_id()) => {
            server
                .metrics()
                .refused(crate::metrics::Refusal::TooManyConnects);
            let body = crate::server::TOO_MANY_CONNECTS;
            (StatusCode::TOO_MANY_REQUESTS, body).into_response()
        }
        // The native listener's small read buffer, not tungstenite's 128 KiB default.
        Ok(asked) => ws
            .read_buffer_size(crate::server::READ_BUFFER_BYTES)
            .max_frame_size(config.max_frame_bytes)
            .max_message_size(config.max_frame_bytes)
            .on_upgrade(move |socket| serve_socket(server, asked, socket)),
    }
}

async fn serve_socket(server: Arc<Server>, asked: Handshake, socket: WebSocket) {
    let (write, read) = socket.split();
    let write = write
        .sink_map_err(opaque)
        .with(|m: Message| future::ready(Ok::<_, WsError>(to_axum(m))));
    let read = read.map(|r| r.map(from_axum).map_err(opaque));
    server.session(asked, Box::pin(write), read).await;
}

fn opaque(e: axum::Error) -> WsError {
    WsError::Io(io::Error::other(e))
}

fn to_axum(m: Message) -> ws::Message {
    match m {
        Message::Text(t) => ws::Message::Text(t.as_str().into()),
        Message::Binary(b) => ws::Message::Binary(b),
        Message::Ping(b) => ws::Message::Ping(b),
        Message::Pong(b) => ws::Message::Pong(b),
        Message::Close(f) => ws::Message::Close(f.map(|f| ws::CloseFrame {
            code: f.code.into(),
            reason: f.reason.as_str().into(),
        })),
        // Raw frames are never written by the server.
        Message::Frame(_) => ws::Message::Binary(Default::default()),
    }
}

fn from_axum(m: ws::Message) -> Message {
    match m {
        ws::Message::Text(t) => Message::text(t.as_str()),
        ws::Message::Binary(b) => Message::Binary(b),
        ws::Message::Ping(b) => Message::Ping(b),
        ws::Message::Pong(b) => Message::Pong(b),
        ws::Message::Close(f) => Message::Close(f.map(|f| CloseFrame {
            code: f.code.into(),
            reason: f.reason.as_str().into(),
        })),
    }
}
