//! The bug zoo: every bug of the catalogue in the README (B1, B3–B29) planted as a
//! [`Backend`](crate::run::backend::Backend) over the real core, the way a buggy registry would be built, so
//! the core itself stays correct and carries no zoo code. Each measures the harness: it must be
//! caught by one of its expected invariants.

mod abandoned;
mod blocking;
mod check_then_act;
mod cleanup;
mod delivery;
mod limit_outside_lock;
mod lying;
pub mod nodes;
mod orphan;
pub mod plant;
mod refusal;
pub mod rekeyed;
mod sharing;
mod stream;
mod thread_routed;

use std::fmt;
use std::str::FromStr;

pub use abandoned::RegistersAfterGiveUp;
pub use blocking::LockAcrossAwait;
pub use check_then_act::CheckThenAct;
pub use cleanup::{CleanupHitsReconnect, OverBroadCleanup};
pub use delivery::{LostWhileOffline, ReplayedTwice};
pub use limit_outside_lock::LimitOutsideLock;
pub use lying::{DropsThinking, HiddenReplica, ResumeRepeatsEvent, SwapsToolCalls};
pub use orphan::ResumeDropsOtherTabs;
pub use refusal::FalseRefusal;

pub use sharing::{FailOpen, SharedMode, Zombies};
pub use stream::{CatchUpAfterLive, EpochSurvivesReaping, ResumeOffByOne, SilentTrim};
pub use thread_routed::ThreadRouted;

use wsreg::RegistryConfig;

use crate::check::invariant::Invariant;
use crate::run::backend::Factory;

/// The factory of a planted bug: the one place bug ids meet the types that plant them.
pub fn factory(bug: Bug) -> Factory {
    use plant::factory as plant;
    use rekeyed::{BoundedHash, Identity, PerCall, PerRequest, Rekeyed, Sanitised, Singleton};
    fn rekeyed<K: rekeyed::KeyFn>(_: &RegistryConfig) -> Rekeyed<K> {
        Rekeyed::default()
    }
    fn default<P: Default>(_: &RegistryConfig) -> P {
        P::default()
    }
    match bug {
        Bug::B1 => plant(rekeyed::<PerCall>),
        Bug::B3 => plant(default::<CheckThenAct>),
        Bug::B4 => plant(|_| SharedMode),
        Bug::B5 => plant(rekeyed::<BoundedHash>),
        Bug::B6 => plant(rekeyed::<Identity>),
        Bug::B7 => plant(rekeyed::<Sanitised>),
        Bug::B8 => plant(rekeyed::<PerRequest>),
        Bug::B9 => plant(|_| Zombies),
        Bug::B10 => plant(FailOpen::new),
        Bug::B11 => plant(LimitOutsideLock::new),
        Bug::B12 => plant(default::<OverBroadCleanup>),
        Bug::B13 => plant(|_| CleanupHitsReconnect),
        Bug::B14 => plant(|_| LostWhileOffline),
        Bug::B15 => plant(default::<ReplayedTwice>),
        Bug::B16 => plant(default::<ThreadRouted>),
        Bug::B17 => plant(default::<LockAcrossAwait>),
        Bug::B18 => plant(rekeyed::<Singleton>),
        Bug::B19 => plant(|_| ResumeOffByOne),
        Bug::B20 => plant(|_| SilentTrim),
        Bug::B21 => plant(|_| EpochSurvivesReaping),
        Bug::B22 => plant(|_| CatchUpAfterLive),
        Bug::B23 => plant(|_| DropsThinking),
        Bug::B24 => plant(HiddenReplica::new),
        Bug::B25 => plant(|_| SwapsToolCalls),
        Bug::B26 => plant(|_| ResumeRepeatsEvent),
        Bug::B27 => plant(FalseRefusal::new),
        Bug::B28 => plant(|_| ResumeDropsOtherTabs),
        Bug::B29 => plant(default::<RegistersAfterGiveUp>),
    }
}
use Invariant::*;

/// A planted bug, by its catalogue id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[allow(missing_docs)]
pub enum Bug {
    B1,
    B3,
    B4,
    B5,
    B6,
    B7,
    B8,
    B9,
    B10,
    B11,
    B12,
    B13,
    B14,
    B15,
    B16,
    B17,
    B18,
    B19,
    B20,
    B21,
    B22,
    B23,
    B24,
    B25,
    B26,
    B27,
    B28,
    B29,
}

impl Bug {
    /// Every planted bug.
    pub const ALL: [Bug; 28] = [
        Bug::B1,
        Bug::B3,
        Bug::B4,
        Bug::B5,
        Bug::B6,
        Bug::B7,
        Bug::B8,
        Bug::B9,
        Bug::B10,
        Bug::B11,
        Bug::B12,
        Bug::B13,
        Bug::B14,
        Bug::B15,
        Bug::B16,
        Bug::B17,
        Bug::B18,
        Bug::B19,
        Bug::B20,
        Bug::B21,
        Bug::B22,
        Bug::B23,
        Bug::B24,
        Bug::B25,
        Bug::B26,
        Bug::B27,
        Bug::B28,
        Bug::B29,
    ];

    /// The one-line story.
    pub fn story(self) -> &'static str {
        match self {
            Bug::B1 => "manager per call: the factory builds a new manager per request; sockets hang off one, events go through another",
            Bug::B3 => "check-then-act: two connects miss the registry, both create, the second insert wins; the first tab hangs off an orphan manager",
            Bug::B4 => "shared mode cell: every manager reads one mode value, so one user's change flips everyone's",
            Bug::B5 => "bounded hash key: key = hash(user) mod 16, so users collide and share a manager",
            Bug::B6 => "identity-derived key: the key is an object address; one user gets new keys, a later user inherits an old one",
            Bug::B7 => "namespace collision: sanitising maps `team|1` and `team_1` to one key",
            Bug::B8 => "per-request keys: key = thread id + request id, so one user accumulates managers",
            Bug::B9 => "zombie managers: nothing deregisters a manager, so idle ones live forever",
            Bug::B10 => "fail-open fallback: a connect that fails validation is registered with the last good context, another user's",
            Bug::B11 => "limit outside the lock: concurrent connects all read a count under the limit, then all insert",
            Bug::B12 => "over-broad cleanup: closing one tab strips all of the user's connections from an index",
            Bug::B13 => "cleanup vs reconnect: a deferred cleanup of a failed socket removes the healthy reconnected one",
            Bug::B14 => "lost across reconnect: messages for a user with no live connection are dropped and reported sent",
            Bug::B15 => "replayed twice: messages sent while offline are replayed by a second drain",
            Bug::B16 => "thread id as user id: events are routed to whoever last connected with the emitter's thread id",
            Bug::B17 => "blocking lock across await: once two connects overlap, every user's connect and close stalls",
            Bug::B18 => "singleton manager: one manager for all users; delivery and cleanup cross users",
            Bug::B19 => "resume off by one: a resume replays the client's last message again",
            Bug::B20 => "silent trim: the history is trimmed but no gap marker reaches the client",
            Bug::B21 => "epoch survives reaping: a position from a reaped stream is taken as valid in the new one",
            Bug::B22 => "catch-up after live: a resume's catch-up from history is sent after the first live message",
            Bug::B23 => "lying writer: the socket writer drops every thinking step and reports it written, so the registry reports it delivered",
            Bug::B24 => "hidden replica: an unreported second registry takes every second tab of a user; everything observable shows one manager, and those tabs never see the user's messages",
            Bug::B25 => "swapped tool call: the socket writer writes each tool_executing after the event that follows it",
            Bug::B26 => "resume repeats an event: a resumed connection writes the first agent event of its catch-up twice",
            Bug::B27 => "false refusal: the per-user limit counts the tab being opened twice, so a user is refused one tab early, with an error naming the limit",
            Bug::B28 => "resume drops other tabs: a resume closes every other tab of the user without a word; their clients still hold them and are told they do not exist",
            Bug::B29 => "registers after give-up: a connect runs on a background task, so one its client gave up on is registered anyway, a tab nobody holds",
        }
    }

    /// The invariants expected to catch it (the README's bug table), plus I3 where the planted key function is
    /// itself what breaks (B10 and B18 file a user under another's key, which the harness sees
    /// at the connect, before any message is misdelivered).
    pub fn expected(self) -> &'static [Invariant] {
        match self {
            Bug::B1 => &[I2, I8],
            Bug::B3 => &[I2],
            Bug::B4 => &[I4],
            Bug::B5 => &[I1, I3],
            Bug::B6 => &[I2, I3],
            Bug::B7 => &[I3, I1],
            Bug::B8 => &[I2, I6],
            Bug::B9 => &[I9],
            Bug::B10 => &[I1, I4, I3],
            Bug::B11 => &[I6],
            Bug::B12 => &[I5],
            Bug::B13 => &[I5, I8],
            Bug::B14 => &[I8],
            Bug::B15 => &[I7],
            Bug::B16 => &[I1],
            Bug::B17 => &[I10],
            Bug::B18 => &[I1, I4, I3],
            Bug::B19 => &[I7],
            Bug::B20 => &[I8],
            Bug::B21 => &[I8],
            Bug::B22 => &[I7, I8],
            Bug::B23 => &[I8],
            Bug::B24 => &[I2, I5, I8],
            Bug::B25 => &[I7, I8],
            Bug::B26 => &[I7],
            Bug::B27 => &[I6],
            Bug::B28 => &[I5, I8, I6],
            Bug::B29 => &[I5, I6, I9],
        }
    }

    /// Whether a failure label (an [`Outcome::label`](crate::check::outcome::Outcome::label)) is one of the
    /// expected invariants.
    pub fn caught_as_expected(self, label: &str) -> bool {
        self.expected()
            .iter()
            .any(|i| label.starts_with(&format!("{i:?} ")))
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
