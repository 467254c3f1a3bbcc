//! A read-only picture of a registry, for observers, tests and dashboards.

use crate::connection::ConnectionId;
use crate::identity::UserKey;
use crate::mode::Mode;
use crate::observer::ManagerId;

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
    /// Its mode.
    pub mode: Mode,
    /// Its live connections in id order, each with its outbound queue depth.
    pub connections: Vec<(ConnectionId, usize)>,
    /// Messages waiting in its recovery queue.
    pub recovery: usize,
    /// Agent runs started and not yet completed.
    pub open_runs: usize,
    /// Messages accepted so far (the last sequence number).
    pub accepted: u64,
}

impl RegistryView {
    /// Messages waiting in connections' outbound queues, over every user (what a graceful
    /// shutdown waits to drain; recovery queues are not counted).
    pub fn queued(&self) -> usize {
        self.managers
            .iter()
            .flat_map(|m| m.connections.iter().map(|c| c.1))
            .sum()
    }
}
