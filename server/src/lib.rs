//! wsreg-server: wsreg behind a real WebSocket endpoint (tokio-tungstenite over TCP).
//!
//! - [`auth`]: HMAC-signed tokens naming a user id and an expiry.
//! - [`protocol`]: the JSON frames both ways.
//! - The registry it serves is any [`wsreg::Backend`] ([`wsreg::Registry`] by default).
//! - [`handshake`]: what an upgrade request asks for, checked before anything is registered.
//! - [`head`]: the size (and, for axum, the time) an upgrade request's head is held to.
//! - [`server`]: the listener, the demo agent, graceful shutdown; each socket's protocol
//!   (heartbeats, budgets, timeouts) lives in a private `session` module.
//! - [`rate`]: the per-socket message budget.
//! - [`metrics`]: Prometheus metrics and `tracing` events, fed by the core as an observer.
//! - `axum` (real tokio only): the same endpoint as an axum handler, with `/metrics` and
//!   `/healthz`.
//! - [`client`]: a small client, used by the CLI, the tests and the load benchmark.

pub mod auth;
#[cfg(not(madsim))]
pub mod axum;
pub mod client;
pub mod handshake;
pub mod head;
pub mod metrics;
pub mod protocol;
pub mod rate;
pub mod server;
mod session;

pub use server::{Server, ServerConfig};
