//! [`RegistryConfig`]: the limits and timings of a registry, documented in one place.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Limits and timings. Every limit is enforced atomically; hitting one is a typed error that
/// changes nothing.
///
/// ```
/// let config = wsreg::RegistryConfig { max_connections_per_user: 3, ..Default::default() };
/// assert_eq!(config.max_managers, 10_000);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RegistryConfig {
    /// Most managers (users) the registry holds at once. A new user past it evicts the manager
    /// idle longest (one without connections) and is refused only when every manager has a
    /// connection. Default 10,000.
    pub max_managers: usize,
    /// Most connections across all users. Default 100,000.
    pub max_connections: usize,
    /// Most connections one user holds at once. Default 8.
    pub max_connections_per_user: usize,
    /// Messages each user's history retains, live connections or not. Every connection reads
    /// its user's stream from the history, so a connection (a slow reader, or a client
    /// resuming) that falls further behind gets a gap marker for what was let go. Default 256.
    pub history_capacity: usize,
    /// How long a message stays in the history: messages older than this are let go when the
    /// user's next message is accepted or a connection of theirs opens (a reader already
    /// reading never loses what it is about to read to the clock). Default 5 minutes.
    pub history_ttl: Duration,
    /// Messages retained over every user's history together. Past it, a user's new message
    /// lets go of that user's own oldest one, so the total stays under this plus one message
    /// per manager. Default 1,000,000.
    pub max_history_messages: usize,
    /// How long a manager with no connection lives before it is reaped (its history goes with
    /// it, and the user's next manager starts a new epoch). Default 30 s.
    pub idle_ttl: Duration,
    /// Names this registry's process in every stream epoch, so that a position from an earlier
    /// process is never taken as valid. `None` (the default) draws a random value when the
    /// registry is built; set it when several registries must not collide by construction, or
    /// when a run must be reproducible.
    pub boot: Option<u64>,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            max_managers: 10_000,
            max_connections: 100_000,
            max_connections_per_user: 8,
            history_capacity: 256,
            history_ttl: Duration::from_secs(300),
            max_history_messages: 1_000_000,
            idle_ttl: Duration::from_secs(30),
            boot: None,
        }
    }
}
