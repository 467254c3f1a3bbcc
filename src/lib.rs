//! wsreg: per-user WebSocket connection managers and the registry that hands them out.
//!
//! A chat or agent backend uses it to push the five agent events (`agent_started`,
//! `agent_thinking`, `tool_executing`, `tool_completed`, `agent_completed`) to the right user's
//! sockets, with the isolation guarantees its predecessors lacked: one manager per user under any
//! concurrency, collision-free deterministic keys, no shared per-user state, atomic limits,
//! owner-only in-order delivery that survives reconnects, and idle managers reaped.
//!
//! Nothing is lost silently: every message of a user has a position `(epoch, seq)` in the
//! user's stream, every connection reads that stream from a bounded history (resuming from the
//! last position its client saw), and whatever it can no longer get is announced by a gap
//! marker.
//!
//! Modules, one concept each:
//! - [`backend`]: the [`Backend`] seam every driver of a registry uses (the server, the
//!   simulator, a team's own registry); [`Registry`] implements it.
//! - [`identity`](UserContext): [`UserContext`] validation and the injective [`UserKey`].
//! - [`registry`](Registry): [`Registry`], the only way to get a manager.
//! - [`manager`](UserManager): [`UserManager`], one user's connections, stream and mode.
//! - `stream`: [`Epoch`], [`Position`] and [`GapReason`]: the delivery contract.
//! - `connection`: [`ConnectionId`] and [`ConnectionHandle`].
//! - `event`: [`AgentEvent`], its lifecycle, [`Envelope`] and [`Payload`].
//! - `mode`: [`Mode`] and what each does to delivery.
//! - `observer`: the [`Observer`] hook and its [`Observation`]s.
//! - `transport`: the [`Sink`] seam and the in-memory [`ChannelSink`].
//! - `config`: [`RegistryConfig`]; `view`: [`RegistryView`]; `error`: the typed errors.
//!
//! The crate uses tokio through `madsim-tokio`, so the same code runs on tokio in production and
//! deterministically under `--cfg madsim` in the simulator. It spawns tasks (one writer per
//! connection, one timer per idle period) and so must be used inside a tokio runtime.

pub mod backend;
mod config;
mod connection;
mod core;
mod error;
mod event;
mod identity;
mod lock_order;
mod manager;
mod mode;
mod node;
mod observer;
mod registry;
pub mod store;
mod stream;
mod transport;
mod view;

pub use backend::Backend;
pub use config::RegistryConfig;
pub use connection::{ConnectionHandle, ConnectionId};
pub use error::{ContextError, Error, LifecycleError};
pub use event::{AgentEvent, Envelope, LifecycleReason, Payload};
pub use identity::{ContextField, UserContext, UserKey, MAX_ID_LEN};
pub use manager::UserManager;
pub use mode::Mode;
pub use node::{Node, NodeConfig};
pub use observer::{CloseReason, ManagerId, Observation, Observer, RemoveReason};
pub use registry::Registry;
pub use stream::{Epoch, EpochParseError, GapReason, Position};
pub use transport::{channel_sink, ChannelSink, SendFuture, Sink, SinkError};
pub use view::{ConnectionView, ManagerView, RegistryView};

/// The README's example, compiled and run as a doctest so the front door stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
