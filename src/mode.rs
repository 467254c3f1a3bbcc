//! [`Mode`]: how one user's manager delivers.

use serde::{Deserialize, Serialize};

/// How one manager delivers. Each manager owns its own `Mode` value (it is `Copy`), so changing
/// one user's mode never touches another user.
///
/// | mode | live delivery | with no live connection |
/// |---|---|---|
/// | `Unified` (default) | every message to every live connection of the user | recovery queue |
/// | `Isolated` | every message to the user's newest live connection only | recovery queue |
/// | `Emergency` | agent events as `Unified`; text messages dropped (reason `suppressed`) | agent events to recovery |
/// | `Degraded` | nothing live: every message goes to the recovery queue | recovery queue |
///
/// Leaving `Degraded` flushes the recovery queue, in order, to the live connections.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Fan out to every live connection.
    #[default]
    Unified,
    /// Deliver to the newest live connection only.
    Isolated,
    /// Deliver agent events only.
    Emergency,
    /// Hold everything in the recovery queue.
    Degraded,
}

impl Mode {
    /// The lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Unified => "unified",
            Mode::Isolated => "isolated",
            Mode::Emergency => "emergency",
            Mode::Degraded => "degraded",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
