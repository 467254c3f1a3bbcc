//! [`ConnectionId`] and the [`ConnectionHandle`] a caller holds for an open connection.

use std::fmt;

use crate::error::Error;
use crate::identity::UserKey;
use crate::manager::UserManager;
use crate::stream::Position;

/// One connection. Minted by the registry from a counter that only goes up, and tagged with the
/// registry instance, so an id is never reused within a process and a stale cleanup can never
/// remove a newer connection. Displayed as `c<n>` (the per-registry number, which is
/// deterministic for a deterministic schedule).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnectionId {
    pub(crate) registry: u64,
    pub(crate) n: u64,
}

impl ConnectionId {
    /// A connection id with this number, for registries that are not
    /// [`Registry`](crate::Registry) and number their connections themselves. It compares equal
    /// only to ids made by this function with the same number, never to one a `Registry` minted.
    ///
    /// ```
    /// use wsreg::ConnectionId;
    /// assert_eq!(ConnectionId::new(3), ConnectionId::new(3));
    /// assert_eq!(ConnectionId::new(3).to_string(), "c3");
    /// ```
    pub const fn new(n: u64) -> Self {
        Self { registry: 0, n }
    }

    /// The per-registry number, as displayed.
    pub fn get(self) -> u64 {
        self.n
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.n)
    }
}

/// An open connection, as returned by [`Registry::connect`](crate::Registry::connect).
/// Dropping the handle leaves the connection open; call [`ConnectionHandle::close`].
#[derive(Clone, Debug)]
pub struct ConnectionHandle {
    pub(crate) manager: UserManager,
    pub(crate) id: ConnectionId,
    pub(crate) from: Position,
    pub(crate) recovered: bool,
}

impl ConnectionHandle {
    /// The connection's id.
    pub fn id(&self) -> ConnectionId {
        self.id
    }

    /// The user it belongs to.
    pub fn user(&self) -> &UserKey {
        self.manager.key()
    }

    /// The manager it lives on.
    pub fn manager(&self) -> &UserManager {
        &self.manager
    }

    /// Where this connection's stream continues from: the first item it receives is the next
    /// position, or a gap marker that starts there.
    pub fn continues_after(&self) -> Position {
        self.from
    }

    /// Whether the connection resumed from a client's position and the history still held
    /// everything after it (false for a fresh connect, and when a gap marker comes first).
    pub fn recovered(&self) -> bool {
        self.recovered
    }

    /// Closes this connection (only this one). What it had not sent stays in the history, for
    /// the client to resume from its last position.
    pub fn close(&self) -> Result<(), Error> {
        self.manager.remove_connection(self.id)
    }
}
