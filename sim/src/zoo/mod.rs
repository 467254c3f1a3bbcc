//! The bug zoo: bugs of the modelled system (DESIGN section 5), planted as [`Backend`]s that
//! wrap the real core the way a buggy registry would, so the core itself stays correct and free
//! of zoo code. Each measures the harness: it must be caught by its expected invariant.

mod check_then_act;
mod limit_outside_lock;
mod thread_routed;

use std::fmt;
use std::str::FromStr;

pub use check_then_act::CheckThenAct;
pub use limit_outside_lock::LimitOutsideLock;
pub use thread_routed::ThreadRouted;

use crate::invariant::Invariant;

/// A planted bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Bug {
    /// Check-then-act creation.
    B3,
    /// The per-user limit checked outside the lock.
    B11,
    /// Routing by thread id.
    B16,
}

impl Bug {
    /// Every planted bug.
    pub const ALL: [Bug; 3] = [Bug::B3, Bug::B11, Bug::B16];

    /// The one-line story.
    pub fn story(self) -> &'static str {
        match self {
            Bug::B3 => "check-then-act: two connects miss the registry, both create, the second insert wins; the first tab hangs off an orphan manager",
            Bug::B11 => "limit outside the lock: concurrent connects all read a count under the limit, then all insert",
            Bug::B16 => "thread id as user id: events are routed to whoever last connected with the emitter's thread id",
        }
    }

    /// The invariant expected to catch it.
    pub fn expected(self) -> Invariant {
        match self {
            Bug::B3 => Invariant::I2,
            Bug::B11 => Invariant::I6,
            Bug::B16 => Invariant::I1,
        }
    }
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

/// A bug id that is not in the zoo.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown bug {0:?}; the zoo has: {list}", list = Bug::ALL.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(", "))]
pub struct UnknownBug(pub String);

impl FromStr for Bug {
    type Err = UnknownBug;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Bug::ALL
            .into_iter()
            .find(|b| b.to_string().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownBug(s.to_owned()))
    }
}
