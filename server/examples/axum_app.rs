//! A team's axum app with wsreg inside it: its own routes, wsreg's WebSocket endpoint at `/ws`,
//! and `/metrics` and `/healthz` beside them.
//!
//! ```sh
//! cargo run -p wsreg-server --example axum_app            # listens on 127.0.0.1:3000
//! cargo run -p wsreg-server -- client --addr 127.0.0.1:3000/ws --user alice --secret dev-secret
//! curl -s 127.0.0.1:3000/metrics | grep wsreg_messages_total
//! ```
//!
//! `tests/axum.rs` runs the same [`app`] with real clients.

#[cfg(not(madsim))]
use std::sync::Arc;

#[cfg(not(madsim))]
use axum::{routing::get, Router};
#[cfg(not(madsim))]
use wsreg_server::{Server, ServerConfig};

/// The app: a route of the team's own, then everything wsreg serves.
#[cfg(not(madsim))]
pub fn app(server: Arc<Server>) -> Router {
    Router::new()
        .route("/", get(|| async { "the team's app\n" }))
        .merge(wsreg_server::axum::router(server))
}

#[cfg(not(madsim))]
#[allow(dead_code)] // `tests/axum.rs` includes this file for `app` alone
#[tokio::main]
async fn main() -> std::io::Result<()> {
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    };
    let server = Server::new(ServerConfig::new(b"dev-secret", now_ms));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    // The native listener's handshake timeout: a connection that never finishes its request is
    // dropped, not held for ever.
    let listener = wsreg_server::axum::HandshakeListener::new(listener, &server);
    eprintln!("listening on http://127.0.0.1:3000 (WebSocket at /ws)");
    axum::serve(listener, app(server)).await
}

#[cfg(madsim)]
fn main() {
    eprintln!("the axum example runs on real tokio: run it without --cfg madsim");
}
