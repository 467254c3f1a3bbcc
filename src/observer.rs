//! The [`Observer`] hook: every state change of the registry and its managers, as it happens.

use std::fmt;

use crate::event::{Envelope, Payload};
use crate::identity::UserKey;
use crate::mode::Mode;
use crate::stream::{Epoch, Position};

/// Identifies one manager instance within its registry. Never reused by that registry, so two
/// managers of one user (which the registry never allows at once) would show distinct ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ManagerId(pub(crate) u64);

impl ManagerId {
    /// A manager id with this number: for registries that are not [`Registry`](crate::Registry)
    /// (a team's own, reporting to an [`Observer`]), which number their managers themselves.
    ///
    /// ```
    /// assert_eq!(wsreg::ManagerId::new(7).to_string(), "m7");
    /// ```
    pub const fn new(n: u64) -> Self {
        Self(n)
    }

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
    /// It had no connection, the registry was at its manager limit, and a new user asked for
    /// one: the manager idle longest made room (its user's next manager starts a new epoch, as
    /// after an idle reap).
    Evicted,
    /// The registry shut down.
    Shutdown,
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
        /// Its stream's epoch.
        epoch: Epoch,
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
        /// Its stream continues after this position.
        from: Position,
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
        /// Its position.
        at: Position,
        /// What it carries.
        payload: &'a Payload,
    },
    /// A connection's sink took a message or a gap marker.
    Delivered {
        /// The user.
        user: &'a UserKey,
        /// The manager.
        manager: ManagerId,
        /// The connection.
        conn: crate::ConnectionId,
        /// What it took.
        envelope: &'a Envelope,
    },
    /// The history let go of messages `from..=to` (over its count, age or global bound): a
    /// connection that has not sent them yet, or a client resuming from before them, gets a gap
    /// marker instead.
    Trimmed {
        /// The user.
        user: &'a UserKey,
        /// The manager.
        manager: ManagerId,
        /// The stream.
        epoch: Epoch,
        /// The first message let go.
        from: u64,
        /// The last.
        to: u64,
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
