//! The [`Observer`] hook: every state change of the registry and its managers, as it happens.

use std::fmt;

use crate::event::Payload;
use crate::identity::UserKey;
use crate::mode::Mode;

/// Identifies one manager instance within its registry. Never reused by that registry, so two
/// managers of one user (which the registry never allows at once) would show distinct ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ManagerId(pub(crate) u64);

impl ManagerId {
    /// The number, as displayed (`m<n>`).
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ManagerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m{}", self.0)
    }
}

/// Why a connection went away.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The application closed it.
    Closed,
    /// Its sink failed (the peer went away).
    TransportFailed,
    /// The registry shut down.
    Shutdown,
}

/// Why a manager went away.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RemoveReason {
    /// It had no connection for the idle TTL.
    Idle,
    /// The registry shut down.
    Shutdown,
}

/// Why a message was not delivered somewhere. Every drop is reported; nothing is lost silently.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The connection's outbound queue was full (a slow consumer).
    QueueFull,
    /// The recovery queue was full.
    RecoveryFull,
    /// The connection closed while others of the user stayed live; they got the message.
    ConnectionClosed,
    /// The mode suppresses this kind of message.
    Suppressed,
    /// The manager was reaped or shut down with the message still in its recovery queue.
    ManagerRemoved,
}

impl DropReason {
    /// The snake-case name.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::RecoveryFull => "recovery_full",
            DropReason::ConnectionClosed => "connection_closed",
            DropReason::Suppressed => "suppressed",
            DropReason::ManagerRemoved => "manager_removed",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One state change. Borrowed, so reporting costs no allocation.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Observation<'a> {
    /// A manager was created and registered.
    ManagerCreated {
        /// Its user.
        user: &'a UserKey,
        /// It.
        manager: ManagerId,
    },
    /// A manager was deregistered and shut down.
    ManagerRemoved {
        /// Its user.
        user: &'a UserKey,
        /// It.
        manager: ManagerId,
        /// Why.
        reason: RemoveReason,
    },
    /// A connection was added to a manager.
    ConnectionAdded {
        /// The user.
        user: &'a UserKey,
        /// The manager.
        manager: ManagerId,
        /// The connection.
        conn: crate::ConnectionId,
        /// Live connections of the user afterwards.
        live: usize,
    },
    /// A connection was removed from a manager.
    ConnectionRemoved {
        /// The user.
        user: &'a UserKey,
        /// The manager.
        manager: ManagerId,
        /// The connection.
        conn: crate::ConnectionId,
        /// Why.
        reason: CloseReason,
        /// Live connections of the user afterwards.
        live: usize,
    },
    /// A message was accepted for a user and numbered.
    Accepted {
        /// The user.
        user: &'a UserKey,
        /// The manager.
        manager: ManagerId,
        /// Its sequence number.
        seq: u64,
        /// What it carries.
        payload: &'a Payload,
    },
    /// A message was queued for one connection (`replay`: from the recovery queue).
    Enqueued {
        /// The user.
        user: &'a UserKey,
        /// The manager.
        manager: ManagerId,
        /// The connection.
        conn: crate::ConnectionId,
        /// The message.
        seq: u64,
        /// Whether it came from the recovery queue.
        replay: bool,
    },
    /// A message queued for a connection that closed before sending it was taken back; what
    /// happens to it next (recovery queue, another connection, or a drop) follows.
    Requeued {
        /// The user.
        user: &'a UserKey,
        /// The manager.
        manager: ManagerId,
        /// The closed connection.
        conn: crate::ConnectionId,
        /// The message.
        seq: u64,
    },
    /// A message was kept in the recovery queue.
    Buffered {
        /// The user.
        user: &'a UserKey,
        /// The manager.
        manager: ManagerId,
        /// The message.
        seq: u64,
    },
    /// A connection's sink accepted a message.
    Delivered {
        /// The user.
        user: &'a UserKey,
        /// The manager.
        manager: ManagerId,
        /// The connection.
        conn: crate::ConnectionId,
        /// The message.
        seq: u64,
    },
    /// A message was dropped, for one connection or (with `conn: None`) for the whole user.
    Dropped {
        /// The user.
        user: &'a UserKey,
        /// The manager.
        manager: ManagerId,
        /// The connection, if the drop was for one.
        conn: Option<crate::ConnectionId>,
        /// The message.
        seq: u64,
        /// Why.
        reason: DropReason,
    },
    /// A manager's mode changed.
    ModeChanged {
        /// The user.
        user: &'a UserKey,
        /// The manager.
        manager: ManagerId,
        /// The old mode.
        from: Mode,
        /// The new mode.
        to: Mode,
    },
}

/// Receives every [`Observation`], synchronously, in the order the changes happened.
///
/// It is called while the registry or a manager holds its lock, which is what makes the stream a
/// faithful linear history; so it must be quick and must not call back into the registry.
/// With no observer installed, nothing is built or called.
pub trait Observer: Send + Sync + 'static {
    /// One state change.
    fn observe(&self, observation: &Observation<'_>);
}
