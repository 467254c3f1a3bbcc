//! A read-only picture of a registry, for observers, tests and dashboards.

use crate::connection::ConnectionId;
use crate::identity::UserKey;
use crate::mode::Mode;
use crate::observer::ManagerId;
use crate::stream::Epoch;

/// Every manager the registry holds, in key order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryView {
    /// One entry per registered manager, ordered by user key.
    pub managers: Vec<ManagerView>,
    /// Connections across all users.
    pub connections: usize,
}

/// One manager's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagerView {
    /// Its user.
    pub user: UserKey,
    /// Its identity.
    pub manager: ManagerId,
    /// Its stream's epoch.
    pub epoch: Epoch,
    /// Its mode.
    pub mode: Mode,
    /// Its live connections in id order.
    pub connections: Vec<ConnectionView>,
    /// Messages its history retains.
    pub history: usize,
    /// Agent runs started and not yet completed.
    pub open_runs: usize,
    /// Messages accepted so far in its epoch (the last sequence number).
    pub accepted: u64,
}

/// One connection's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionView {
    /// The connection.
    pub id: ConnectionId,
    /// Items of its stream not yet handed to its sink.
    pub backlog: usize,
    /// Whether the user's mode holds it back (`degraded`, or `isolated` and not the newest).
    pub paused: bool,
}

impl RegistryView {
    /// Items not yet handed to the sinks of connections that are reading, over every user
    /// (what a graceful shutdown waits to drain; paused connections are not counted).
    pub fn queued(&self) -> usize {
        self.managers
            .iter()
            .flat_map(|m| m.connections.iter())
            .filter(|c| !c.paused)
            .map(|c| c.backlog)
            .sum()
    }
}
