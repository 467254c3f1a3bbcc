//! [`ConnectionId`] and the [`ConnectionHandle`] a caller holds for an open connection.

use std::fmt;

use crate::error::Error;
use crate::identity::UserKey;
use crate::manager::UserManager;

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

    /// Closes this connection (only this one). Messages still queued for it go to the user's
    /// recovery queue if it was the user's last connection.
    pub fn close(&self) -> Result<(), Error> {
        self.manager.remove_connection(self.id)
    }
}
