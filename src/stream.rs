//! Each user's stream: [`Epoch`], [`Position`], the [`GapReason`]s a connection can be told
//! about, and the bounded history every connection reads from.
//!
//! The delivery contract: every accepted message of a user gets a position `(epoch, seq)`, `seq`
//! contiguous from 1 within an epoch. Every connection receives a contiguous run of positions,
//! interrupted only by explicit gap markers ([`Payload::Gap`](crate::Payload::Gap)) that name
//! what it will never get and why; it never receives a position twice.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::time::Instant;

use crate::event::Envelope;

/// One incarnation of a user's stream. It changes whenever the stream's history may have been
/// lost: a new manager after the old one was reaped, or a new process (each registry draws a
/// boot id, see [`RegistryConfig::boot`](crate::RegistryConfig::boot)). A position from another
/// epoch is never taken as valid in this one.
///
/// Opaque to clients; shown and parsed as `<boot>.<n>`.
///
/// ```
/// let e = wsreg::Epoch::new(7, 3);
/// assert_eq!(e.to_string(), "7.3");
/// assert_eq!("7.3".parse::<wsreg::Epoch>(), Ok(e));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Epoch {
    boot: u64,
    n: u64,
}

impl Epoch {
    /// The epoch of stream `n` of the registry booted as `boot`. Registries number their
    /// streams so that no two of one registry share an epoch; other backends may use any scheme
    /// with that property.
    pub const fn new(boot: u64, n: u64) -> Self {
        Self { boot, n }
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.boot, self.n)
    }
}

/// A string that is not an [`Epoch`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0:?} is not an epoch (expected <boot>.<n>, two decimal numbers)")]
pub struct EpochParseError(pub String);

impl FromStr for Epoch {
    type Err = EpochParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || EpochParseError(s.chars().take(64).collect());
        let (boot, n) = s.split_once('.').ok_or_else(bad)?;
        let digits = |p: &str| {
            (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .then(|| p.parse::<u64>().ok())
                .flatten()
        };
        Ok(Epoch {
            boot: digits(boot).ok_or_else(bad)?,
            n: digits(n).ok_or_else(bad)?,
        })
    }
}

impl Serialize for Epoch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Epoch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A place in a user's stream: the message numbered `seq` in `epoch`. `seq` 0 is the place
/// before the first message. A client resumes from the last position it saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Position {
    /// The stream.
    pub epoch: Epoch,
    /// The message's number in it (1-based; 0: before the first).
    pub seq: u64,
}

impl Position {
    /// The position `seq` of `epoch`.
    pub const fn new(epoch: Epoch, seq: u64) -> Self {
        Self { epoch, seq }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.epoch, self.seq)
    }
}

/// Why a connection will never receive part of its stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapReason {
    /// The history no longer holds those messages: it is bounded by count, by age and globally,
    /// and the connection (a slow reader, or a client resuming late) fell further behind.
    Trimmed,
    /// The client resumed from a position of another epoch: the stream it knew is gone (its
    /// manager was reaped, or the process restarted). The gap names what the current epoch no
    /// longer holds (nothing, `to < from`, when it still holds all of it); the connection then
    /// reads the current epoch from its oldest retained message.
    EpochChanged,
}

impl GapReason {
    /// The snake-case name, as on the wire.
    pub fn name(self) -> &'static str {
        match self {
            GapReason::Trimmed => "trimmed",
            GapReason::EpochChanged => "epoch_changed",
        }
    }
}

impl fmt::Display for GapReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One user's stream: its epoch, the last number handed out, and the retained tail of it.
/// The history is contiguous: it holds `first()..=head` (empty when `first() > head`).
pub(crate) struct History {
    epoch: Epoch,
    head: u64,
    entries: VecDeque<(Envelope, Instant)>,
}

impl History {
    pub(crate) fn new(epoch: Epoch) -> Self {
        Self {
            epoch,
            head: 0,
            entries: VecDeque::new(),
        }
    }

    pub(crate) fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// The number of the last accepted message (0: none yet).
    pub(crate) fn head(&self) -> u64 {
        self.head
    }

    /// The oldest retained number (`head + 1` when nothing is retained).
    pub(crate) fn first(&self) -> u64 {
        self.head + 1 - self.entries.len() as u64
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The next number to hand out.
    pub(crate) fn next_position(&self) -> Position {
        Position::new(self.epoch, self.head + 1)
    }

    /// Appends the message numbered `head + 1`.
    pub(crate) fn push(&mut self, env: Envelope, now: Instant) {
        debug_assert_eq!(env.seq(), self.head + 1);
        self.head += 1;
        self.entries.push_back((env, now));
    }

    /// The retained message numbered `seq`.
    pub(crate) fn get(&self, seq: u64) -> Option<&Envelope> {
        let first = self.first();
        if seq < first || seq > self.head {
            return None;
        }
        self.entries.get((seq - first) as usize).map(|(e, _)| e)
    }

    /// Drops the oldest message; returns its number.
    pub(crate) fn pop_oldest(&mut self) -> Option<u64> {
        let first = self.first();
        self.entries.pop_front().map(|_| first)
    }

    /// Lets go of everything and continues `epoch` after `head` (a mirror that learned of a new
    /// epoch, or of messages its store let go before it mirrored them). Returns how many
    /// messages it let go of.
    pub(crate) fn restart(&mut self, epoch: Epoch, head: u64) -> usize {
        let dropped = self.entries.len();
        self.entries.clear();
        self.epoch = epoch;
        self.head = head;
        dropped
    }

    /// Whether the oldest retained message was accepted before `cutoff`.
    pub(crate) fn oldest_before(&self, cutoff: Instant) -> bool {
        self.entries.front().is_some_and(|(_, at)| *at < cutoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Payload;
    use crate::identity::UserKey;

    #[test]
    fn epochs_round_trip_and_bad_ones_are_typed_errors() {
        for e in [Epoch::new(0, 0), Epoch::new(u64::MAX, 12)] {
            assert_eq!(e.to_string().parse::<Epoch>(), Ok(e));
        }
        for bad in [
            "",
            "7",
            "7.",
            ".3",
            "7.3.1",
            "a.b",
            "-1.2",
            "+1.2",
            "1.99999999999999999999",
        ] {
            assert!(bad.parse::<Epoch>().is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn history_is_contiguous_and_trims_from_the_front() {
        let key = UserKey::new("u").unwrap();
        let mut h = History::new(Epoch::new(1, 1));
        assert_eq!((h.first(), h.head(), h.len()), (1, 0, 0));
        let now = Instant::now();
        for seq in 1..=3 {
            let env = Envelope::new(
                key.clone(),
                Position::new(h.epoch(), seq),
                Payload::Text {
                    text: format!("m{seq}"),
                },
            );
            h.push(env, now);
        }
        assert_eq!((h.first(), h.head()), (1, 3));
        assert_eq!(h.pop_oldest(), Some(1));
        assert_eq!(h.first(), 2);
        assert!(h.get(1).is_none());
        assert_eq!(h.get(3).unwrap().seq(), 3);
        assert_eq!(h.next_position(), Position::new(Epoch::new(1, 1), 4));
    }
}
