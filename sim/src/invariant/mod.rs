//! The checker: a small model of what the core should hold, fed every [`Step`], and the named
//! invariants of DESIGN section 3 checked against it after every step. Every check is a few
//! ordered-map operations on the keys the step names, so the per-step cost does not grow with the
//! number of users. Each group of invariants lives in its own file.

mod connections;
mod delivery;
mod managers;
mod sharing;

use std::collections::{BTreeMap, BTreeSet};

use fnv::{FnvHashMap, FnvHashSet};
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use wsreg::Mode;

use crate::config::Limits;
use crate::coverage::Coverage;
use crate::trace::{MsgTag, Step, What};

/// The invariants of DESIGN section 3.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Invariant {
    /// Every message delivered to a connection was addressed to that connection's user.
    I1,
    /// At most one live manager per user; every handed-out manager is the registry's.
    I2,
    /// Distinct user ids never share a key; one user id always maps to one key.
    I3,
    /// No per-user state is reachable from two users' managers.
    I4,
    /// Registry, managers and connections describe the same ownership.
    I5,
    /// Connection and manager limits hold.
    I6,
    /// Per connection, messages arrive in order, without duplicates.
    I7,
    /// Every message is delivered, held for recovery, or dropped with a recorded reason.
    I8,
    /// No manager without connections outlives its TTL; none is handed out after removal.
    I9,
    /// After healing, queues drain and clients finish within the bound.
    I10,
}

impl Invariant {
    /// The short name, e.g. `one-manager-per-user`.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::I1 => "owner-only-delivery",
            Invariant::I2 => "one-manager-per-user",
            Invariant::I3 => "key-injective-and-stable",
            Invariant::I4 => "nothing-shared",
            Invariant::I5 => "indexes-agree",
            Invariant::I6 => "limits-hold",
            Invariant::I7 => "lifecycle-order",
            Invariant::I8 => "nothing-lost-silently",
            Invariant::I9 => "no-zombies",
            Invariant::I10 => "liveness",
        }
    }

    /// All of them, in order.
    pub const ALL: [Invariant; 10] = [
        Invariant::I1,
        Invariant::I2,
        Invariant::I3,
        Invariant::I4,
        Invariant::I5,
        Invariant::I6,
        Invariant::I7,
        Invariant::I8,
        Invariant::I9,
        Invariant::I10,
    ];
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?} {}", self.name())
    }
}

/// A broken invariant: which, at which step, and what it means for a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Which invariant.
    pub invariant: Invariant,
    /// The step after which it was found.
    pub step: u64,
    /// What happened, in a user's words.
    pub message: String,
}

pub(crate) type Key = Arc<str>;

/// What the checker knows about one connection.
#[derive(Clone, Debug)]
struct ConnModel {
    key: Key,
    open: bool,
    /// The simulated user holding it, once the client learned its id.
    owner: Option<Key>,
}

/// A message queued for a connection: queued, then both delivered (the sink took it) and
/// received (the client read it), in either order. It keeps what the core accepted under its
/// number, because a client may read it after its manager is gone (a frame still crossing the
/// network when the tab closed and the idle manager was reaped).
#[derive(Clone, Debug)]
struct Flight {
    msg: MsgTag,
    delivered: bool,
    received: bool,
}

/// How often one harness message was accepted by the core and confirmed to its sender.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    accepted: u32,
    confirmed: u32,
}

/// One key's messages, by sequence number (a new manager of the key starts them afresh).
#[derive(Debug, Default)]
struct Messages {
    /// Every message accepted, with what it carried.
    accepted: BTreeMap<u64, MsgTag>,
    /// Accepted and not yet queued, held or dropped anywhere.
    unrouted: BTreeSet<u64>,
    /// In the recovery queue, or taken back from a closed connection and not yet placed.
    held: BTreeSet<u64>,
}

/// The model the invariants are checked against. Maps keyed by strings are FNV hash maps
/// (deterministic hashing, constant-time lookups at 10,000 users); they are only ever looked up,
/// never iterated where the order could reach a verdict.
#[derive(Debug)]
pub struct Checker {
    limits: Limits,
    coverage: Coverage,
    // managers and keys
    live_mgr: FnvHashMap<Key, u64>,
    removed_mgr: FnvHashSet<(Key, u64)>,
    key_of_user: FnvHashMap<Key, Key>,
    user_of_key: FnvHashMap<Key, Key>,
    mode_of_key: FnvHashMap<Key, Mode>,
    // connections
    conns: BTreeMap<u64, ConnModel>,
    live_by_key: FnvHashMap<Key, usize>,
    live_total: usize,
    // requests the clients made, to tell asked-for changes from unasked ones
    closing: FnvHashSet<u64>,
    /// Crashed connections not yet removed: the server may close them on its own, and whatever
    /// was on its way to them when they crashed is lost with the socket.
    crashed: FnvHashSet<u64>,
    mode_request: Option<Key>,
    // messages
    msgs: FnvHashMap<Key, Messages>,
    /// Per harness message (kind, tag): how often the core accepted it, how often a sender was
    /// told it was accepted.
    tallies: FnvHashMap<(&'static str, Key), Tally>,
    flights: BTreeMap<(u64, u64), Flight>,
    /// Handed to a socket that crashed and was removed before its client read them: the client
    /// may still read them from its buffer, or never.
    adrift: BTreeMap<(u64, u64), MsgTag>,
    last_received: BTreeMap<u64, u64>,
}

/// The result of one check.
pub(crate) type Checked = Result<(), (Invariant, String)>;

pub(crate) fn fail(invariant: Invariant, message: String) -> Checked {
    Err((invariant, message))
}

impl Checker {
    /// A checker for a run with these limits.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            coverage: Coverage::default(),
            live_mgr: FnvHashMap::default(),
            removed_mgr: FnvHashSet::default(),
            key_of_user: FnvHashMap::default(),
            user_of_key: FnvHashMap::default(),
            mode_of_key: FnvHashMap::default(),
            conns: BTreeMap::new(),
            live_by_key: FnvHashMap::default(),
            live_total: 0,
            closing: FnvHashSet::default(),
            crashed: FnvHashSet::default(),
            mode_request: None,
            msgs: FnvHashMap::default(),
            tallies: FnvHashMap::default(),
            flights: BTreeMap::new(),
            adrift: BTreeMap::new(),
            last_received: BTreeMap::new(),
        }
    }

    /// The same checker, counting the network coverage points too.
    pub fn over_network(mut self) -> Self {
        self.coverage = Coverage::network();
        self
    }

    /// The coverage points hit so far.
    pub fn coverage(&self) -> &Coverage {
        &self.coverage
    }

    /// Checks one step and updates the model.
    pub fn on_step(&mut self, s: &Step) -> Result<(), Violation> {
        self.coverage.on_step(s);
        let key = &s.user;
        let conn = s.conn.unwrap_or(0);
        let result = match &s.what {
            What::ManagerCreated => self.manager_created(key, s.mgr.unwrap_or(0)),
            What::ManagerRemoved(_) => self.manager_removed(key, s.mgr.unwrap_or(0)),
            What::Connected { key: filed } => self.connected(key, filed, s.mgr.unwrap_or(0), conn),
            What::ConnAdded { live } => self.conn_added(key, s.mgr.unwrap_or(0), conn, *live),
            What::ConnRemoved { live, reason } => self.conn_removed(key, conn, *reason, *live),
            What::Close | What::Cleanup => {
                self.closing.insert(conn);
                Ok(())
            }
            What::Crash => {
                self.closing.insert(conn);
                self.crashed.insert(conn);
                Ok(())
            }
            What::ServerDown => {
                self.server_lost();
                Ok(())
            }
            What::SetMode(_) => {
                self.mode_request = Some(key.clone());
                Ok(())
            }
            What::ModeChanged { from, to } => self.mode_changed(key, *from, *to),
            What::Accepted { seq, msg } => self.accepted(key, *seq, msg),
            What::Enqueued { seq, replay } => self.enqueued(key, conn, *seq, *replay),
            What::Requeued { seq } => self.requeued(key, conn, *seq),
            What::Buffered { seq } => self.buffered(key, *seq),
            What::Delivered { seq } => self.delivered(key, conn, *seq),
            What::Dropped { seq, .. } => self.dropped(key, s.conn, *seq),
            What::Received { seq, msg, .. } => self.received(key, conn, *seq, msg),
            _ => Ok(()),
        };
        result.map_err(|(invariant, message)| Violation {
            invariant,
            step: s.n,
            message,
        })
    }

    /// The server process died: every manager, connection and queued message went with it. What
    /// carries over is what must hold across restarts: the key each user is filed under, and
    /// which messages were accepted and confirmed (a replay of one after the restart is still a
    /// duplicate). Every id the new registry hands out starts afresh.
    fn server_lost(&mut self) {
        let fresh = Checker::new(self.limits.clone());
        let keep = std::mem::replace(self, fresh);
        self.coverage = keep.coverage;
        self.key_of_user = keep.key_of_user;
        self.user_of_key = keep.user_of_key;
        self.tallies = keep.tallies;
    }

    /// Checks that a message its sender was told is accepted really was.
    pub fn on_confirm(&mut self, user: &Key, msg: &MsgTag, step: u64) -> Result<(), Violation> {
        self.confirmed(user, msg)
            .map_err(|(invariant, message)| Violation {
                invariant,
                step,
                message,
            })
    }

    /// Messages queued for a connection and not yet both delivered and received.
    pub fn in_flight(&self) -> usize {
        self.flights.len()
    }

    /// Users (by key) with messages in flight, and how many each.
    pub fn in_flight_by_key(&self) -> BTreeMap<Key, usize> {
        let mut out = BTreeMap::new();
        for (conn, _) in self.flights.keys() {
            if let Some(c) = self.conns.get(conn) {
                *out.entry(c.key.clone()).or_insert(0) += 1;
            }
        }
        out
    }

    /// The end-of-run history checks (after everything drained and idle managers were reaped).
    pub fn finish(&self, last_step: u64) -> Result<(), Violation> {
        self.history().map_err(|(invariant, message)| Violation {
            invariant,
            step: last_step,
            message,
        })
    }

    /// The smallest (key, seq) for which `pick` finds something: order-independent, so the
    /// verdict does not depend on hash-map order.
    fn first_msg(&self, pick: fn(&Messages) -> Option<&u64>) -> Option<(Key, u64)> {
        self.msgs
            .iter()
            .filter_map(|(k, m)| pick(m).map(|s| (k.clone(), *s)))
            .min()
    }

    fn history(&self) -> Checked {
        if let Some((key, seq)) = self.first_msg(|m| m.unrouted.first()) {
            return fail(
                Invariant::I8,
                format!("{key}'s message #{seq} was accepted but never queued, held or dropped"),
            );
        }
        if let Some((key, seq)) = self.first_msg(|m| m.held.first()) {
            return fail(
                Invariant::I8,
                format!("{key}'s message #{seq} is still held after its manager should be gone"),
            );
        }
        if let Some(((conn, seq), f)) = self.flights.first_key_value() {
            return fail(
                Invariant::I8,
                format!(
                    "message #{seq} queued for c{conn} ended neither delivered and received nor dropped (delivered: {}, received: {})",
                    f.delivered, f.received
                ),
            );
        }
        if let Some((key, mgr)) = self.live_mgr.iter().min() {
            return fail(
                Invariant::I9,
                format!("{key}'s manager m{mgr} has no connection and outlived its idle TTL"),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use wsreg::{CloseReason, RemoveReason};

    use super::*;

    /// Feeds steps to a checker; each is (user, conn, mgr, what).
    struct Feed {
        checker: Checker,
        n: u64,
    }

    impl Feed {
        fn new() -> Self {
            Self {
                checker: Checker::new(Limits::default()),
                n: 0,
            }
        }

        fn step(&mut self, user: &str, conn: Option<u64>, mgr: Option<u64>, what: What) -> Checked {
            self.n += 1;
            let step = Step {
                n: self.n,
                t_us: self.n,
                user: user.into(),
                conn,
                mgr,
                what,
            };
            self.checker
                .on_step(&step)
                .map_err(|v| (v.invariant, v.message))
        }

        /// u1 connects c1 on m1 and is sent text #1, which the socket takes.
        fn connected_and_sent(&mut self) {
            let ok = [
                self.step("u1", None, Some(1), What::ManagerCreated),
                self.step("u1", Some(1), Some(1), What::ConnAdded { live: 1 }),
                self.step("u1", Some(1), Some(1), What::Connected { key: "u1".into() }),
                self.step(
                    "u1",
                    None,
                    Some(1),
                    What::Accepted {
                        seq: 1,
                        msg: text("u1/m1"),
                    },
                ),
                self.step(
                    "u1",
                    Some(1),
                    Some(1),
                    What::Enqueued {
                        seq: 1,
                        replay: false,
                    },
                ),
                self.step("u1", Some(1), Some(1), What::Delivered { seq: 1 }),
            ];
            assert!(ok.iter().all(Result::is_ok), "{ok:?}");
        }

        fn received(&mut self, tag: &str) -> Checked {
            let what = What::Received {
                seq: 1,
                msg: text(tag),
                to: "u1".into(),
                lost: false,
            };
            self.step("u1", Some(1), None, what)
        }

        fn reaped(&mut self) -> Checked {
            let idle = What::ManagerRemoved(RemoveReason::Idle);
            self.step("u1", None, Some(1), idle)
        }

        fn closed(&mut self, reason: CloseReason) -> Checked {
            self.step(
                "u1",
                Some(1),
                Some(1),
                What::ConnRemoved { live: 0, reason },
            )
        }
    }

    fn text(tag: &str) -> MsgTag {
        MsgTag {
            kind: "text",
            tag: tag.into(),
        }
    }

    #[test]
    fn a_frame_read_after_its_manager_was_reaped_is_checked_against_what_was_sent() {
        let mut f = Feed::new();
        f.connected_and_sent();
        f.step("u1", Some(1), None, What::Close).unwrap();
        f.closed(CloseReason::Closed).unwrap();
        f.reaped().unwrap();
        let mut forged = Feed::new();
        forged.connected_and_sent();
        assert_eq!(forged.received("u1/m2").unwrap_err().0, Invariant::I7);
        f.received("u1/m1").unwrap();
        assert!(f.checker.finish(f.n).is_ok());
        assert_eq!(f.received("u1/m1").unwrap_err().0, Invariant::I7); // twice
    }

    #[test]
    fn a_crashed_socket_may_lose_what_it_was_handed_and_the_server_may_close_it() {
        let mut f = Feed::new();
        f.connected_and_sent();
        f.step("u1", Some(1), None, What::Crash).unwrap();
        f.closed(CloseReason::Closed).unwrap(); // the server noticed by itself
        assert!(f.checker.finish(f.n).is_err(), "the manager is still live");
        f.reaped().unwrap();
        f.checker.finish(f.n).unwrap(); // #1 was lost with the socket
        let mut unasked = Feed::new();
        unasked.connected_and_sent();
        assert_eq!(
            unasked.closed(CloseReason::Closed).unwrap_err().0,
            Invariant::I5
        );
    }

    #[test]
    fn a_server_restart_forgets_the_registry_but_not_the_keys() {
        let mut f = Feed::new();
        f.connected_and_sent();
        f.step("-", None, None, What::ServerDown).unwrap();
        f.checker.finish(f.n).unwrap(); // #1 died with the server
                                        // The fresh registry numbers from 1 again.
        f.step("u1", None, Some(1), What::ManagerCreated).unwrap();
        f.step("u1", Some(1), Some(1), What::ConnAdded { live: 1 })
            .unwrap();
        f.step("u1", Some(1), Some(1), What::Connected { key: "u1".into() })
            .unwrap();
        // A user filed under u1's key after the restart is still a collision (core steps name
        // the key, client steps the simulated user).
        f.step("u1", Some(2), Some(1), What::ConnAdded { live: 2 })
            .unwrap();
        let err = f.step("u2", Some(2), Some(1), What::Connected { key: "u1".into() });
        assert_eq!(err.unwrap_err().0, Invariant::I3);
    }
}
