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
    /// Most managers (users) the registry holds at once. Default 10,000.
    pub max_managers: usize,
    /// Most connections across all users. Default 100,000.
    pub max_connections: usize,
    /// Most connections one user holds at once. Default 8.
    pub max_connections_per_user: usize,
    /// Messages queued per connection before new ones are dropped for it (reason `queue_full`).
    /// Default 64.
    pub outbound_capacity: usize,
    /// Messages kept per user while it has no live connection; newer ones beyond this are dropped
    /// (reason `recovery_full`), so a reconnecting client always sees a gap-free prefix. Default 256.
    pub recovery_capacity: usize,
    /// How long a manager with no connection lives before it is reaped. Default 30 s.
    pub idle_ttl: Duration,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            max_managers: 10_000,
            max_connections: 100_000,
            max_connections_per_user: 8,
            outbound_capacity: 64,
            recovery_capacity: 256,
            idle_ttl: Duration::from_secs(30),
        }
    }
}
