//! Typed errors. Every error leaves the registry and its managers exactly as they were.

use thiserror::Error;

use crate::event::LifecycleReason;
use crate::identity::ContextField;
use crate::mode::Mode;
use crate::stream::Position;

/// A [`UserContext`](crate::UserContext) built from bad input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ContextError {
    /// No user id was supplied.
    #[error("the request carries no user_id")]
    MissingUserId,
    /// An id was empty.
    #[error("{field} is empty")]
    Empty {
        /// Which id.
        field: ContextField,
    },
    /// An id was only white space.
    #[error("{field} is blank")]
    Blank {
        /// Which id.
        field: ContextField,
    },
    /// An id was longer than [`MAX_ID_LEN`](crate::MAX_ID_LEN).
    #[error("{field} is {len} bytes long; at most {max} are accepted")]
    TooLong {
        /// Which id.
        field: ContextField,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An id contained a control character.
    #[error("{field} has a control character at position {at}")]
    ControlCharacter {
        /// Which id.
        field: ContextField,
        /// Its position, in characters.
        at: usize,
    },
}

/// An agent event emitted out of its run's lifecycle order. Nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{event} for run {run_id:?} is out of lifecycle order: {reason}")]
pub struct LifecycleError {
    /// The run.
    pub run_id: String,
    /// The event's wire name.
    pub event: &'static str,
    /// What was wrong.
    pub reason: LifecycleReason,
}

/// Why a registry or manager call was refused. A refused call changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// The caller's context was invalid.
    #[error(transparent)]
    Context(#[from] ContextError),
    /// The registry already holds its maximum number of managers.
    #[error("the registry holds {max} managers, its limit")]
    ManagerLimit {
        /// The configured limit.
        max: usize,
    },
    /// The registry already holds its maximum number of connections.
    #[error("the registry holds {max} connections, its limit")]
    ConnectionLimit {
        /// The configured limit.
        max: usize,
    },
    /// The user already has its maximum number of connections.
    #[error("user {user} already has {max} connections, its limit")]
    UserConnectionLimit {
        /// The user.
        user: String,
        /// The configured limit.
        max: usize,
    },
    /// The manager was reaped or shut down; ask the registry for the current one.
    #[error("the manager of user {user} is shut down")]
    ManagerClosed {
        /// The user.
        user: String,
    },
    /// The registry has no manager for this user (never connected, or reaped after its TTL).
    #[error("no manager for user {user}")]
    UnknownUser {
        /// The user.
        user: String,
    },
    /// The connection is not (or no longer) one of this user's connections.
    #[error("connection {conn} is not a connection of user {user}")]
    UnknownConnection {
        /// The user.
        user: String,
        /// The connection, as displayed.
        conn: String,
    },
    /// An agent event was out of lifecycle order.
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    /// The registry is shutting down.
    #[error("the registry is shutting down")]
    ShuttingDown,
    /// The user's mode refuses this kind of message (texts in `emergency`); nothing was sent.
    #[error("user {user} is in {mode} mode, which refuses text messages")]
    Suppressed {
        /// The user.
        user: String,
        /// The mode.
        mode: Mode,
    },
    /// A client asked to resume from a position its stream has not reached: it never saw it.
    #[error("user {user} asked to resume after {asked}, but the stream only reached {head}")]
    ResumeAhead {
        /// The user.
        user: String,
        /// The position asked for.
        asked: Position,
        /// The stream's last position.
        head: Position,
    },
    /// The shared stream store failed (a [`Node`](crate::Node)'s): nothing was stored unless
    /// the message says it may have been.
    #[error("{0}")]
    Store(String),
}
