//! wsreg-server: wsreg behind a real WebSocket endpoint (tokio-tungstenite over TCP).
//!
//! - [`auth`]: HMAC-signed tokens naming a user id and an expiry.
//! - [`protocol`]: the JSON frames both ways.
//! - [`hub`]: what the server needs from a registry ([`wsreg::Registry`] is one).
//! - [`server`]: the listener, per-socket handling, the demo agent, graceful shutdown.
//! - [`client`]: a small client, used by the CLI, the tests and the load benchmark.

pub mod auth;
pub mod client;
pub mod hub;
pub mod protocol;
pub mod server;

pub use hub::{Hub, Registered};
pub use server::{Server, ServerConfig};
