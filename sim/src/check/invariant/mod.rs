//! The checker: the named invariants I1–I10 (defined in the README) checked after every
//! [`Step`] by two oracles, each a small model of the run behind one trait ([`Judge`]): the
//! black-box oracle (`black_box.rs`: what the harness did, what calls returned, what tabs
//! read) and the white-box oracle (`white_box.rs`: the backend's own account). [`Checker`]
//! feeds both and counts the verdicts of the oracles the run is judged by. Every check is a
//! few ordered-map operations on the keys the step names, so the per-step cost does not grow
//! with the number of users. Each group of invariants lives in its own file.

/// Fails a check: the invariant, then the message as `format!` takes it. The message's
/// template is the rule that fired ([`Violation::rule`]): two failures of one check are alike
/// whatever users, ids and positions they name.
macro_rules! fail {
    ($invariant:expr, $template:literal $($args:tt)*) => {
        Err($crate::check::invariant::Failed {
            invariant: $invariant,
            rule: $template,
            message: format!($template $($args)*),
        })
    };
}

/// A [`Violation`] found outside the step checks, with its rule taken from the template the
/// same way as [`fail!`].
macro_rules! violation {
    ($step:expr, $invariant:expr, $template:literal $($args:tt)*) => {
        $crate::check::invariant::Violation {
            invariant: $invariant,
            step: $step,
            message: format!($template $($args)*),
            rule: $template.to_owned(),
        }
    };
}
pub(crate) use violation;

mod black_box;
mod connections;
mod delivery;
pub mod holding;
mod later;
mod managers;
mod oracle;
mod sharing;
mod white_box;

pub use oracle::Checks;
pub(crate) use oracle::Judge;
use oracle::Verdict;

pub(crate) use black_box::BlackBox;
use white_box::WhiteBox;

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::check::coverage::Coverage;
use crate::check::trace::{MsgTag, Step, What};
use crate::generate::config::Limits;

/// The invariants, I1–I10, each defined in the README.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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

    /// What the invariant promises, said from the point of view of a user of the chat.
    pub fn promise(self) -> &'static str {
        match self {
            Invariant::I1 => "Every message a tab shows was addressed to the person using it: nobody ever sees someone else's agent events or texts.",
            Invariant::I2 => "Each user has exactly one manager at a time, so all of a user's tabs share one stream and one set of limits.",
            Invariant::I3 => "Two different users are never filed under the same key, and one user is always filed under the same key.",
            Invariant::I4 => "Nothing one user does (a mode change, a queue, a context) changes what another user gets.",
            Invariant::I5 => "The registry, the managers and the clients agree on who holds which connection; closing one tab closes exactly that tab.",
            Invariant::I6 => "Connection and manager limits hold: a user cannot open more tabs than allowed, and the server never holds more than its caps.",
            Invariant::I7 => "Each tab shows its stream in order, nothing twice, and every position carries what its sender sent there.",
            Invariant::I8 => "Nothing goes missing without the tab being told: a tab's positions are contiguous except across gap markers, and a resume continues exactly where it asked.",
            Invariant::I9 => "A user with no tabs left is forgotten within the idle time, and a removed manager is never handed out again.",
            Invariant::I10 => "Once the network heals, every client finishes what it was doing within the bound: nobody waits forever.",
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// Which invariant.
    pub invariant: Invariant,
    /// The step after which it was found.
    pub step: u64,
    /// What happened, in a user's words.
    pub message: String,
    /// Which check of the invariant fired: the template of its message, before the users, ids
    /// and positions of this run were filled in. Two failures with one rule broke the
    /// invariant the same way (how a store of known failures tells a known bug from a new one).
    #[serde(default)]
    pub rule: String,
}

/// A check that failed: what [`Checked`] carries until the step it belongs to is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Failed {
    pub(crate) invariant: Invariant,
    pub(crate) rule: &'static str,
    pub(crate) message: String,
}

impl Failed {
    /// The violation found after `step`.
    pub(crate) fn at(self, step: u64) -> Violation {
        Violation {
            invariant: self.invariant,
            step,
            message: self.message,
            rule: self.rule.to_owned(),
        }
    }
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

/// Which tab a step is about: the client's own number for it (`key`, what the model is keyed
/// by), and the backend's number for its connection (`conn`, what messages show). A step
/// recorded without the client's number (a hand-written one) is keyed by the backend's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TabRef {
    pub(crate) key: u64,
    pub(crate) conn: u64,
}

impl TabRef {
    pub(crate) fn of(s: &Step) -> Self {
        let conn = s.conn.unwrap_or(0);
        TabRef {
            key: s.tab.unwrap_or(conn),
            conn,
        }
    }
}

/// What the checker knows about one tab (a connection, as its client holds it).
#[derive(Clone, Debug)]
pub(crate) struct TabModel {
    /// The backend's number for its connection.
    pub(crate) conn: u64,
    /// The client's own number for it, when the steps record one.
    pub(crate) tab: Option<u64>,
    /// The simulated user holding it.
    pub(crate) user: Key,
    /// The stream it reads.
    pub(crate) epoch: wsreg::Epoch,
    /// The next number it must read (or a gap marker starting there).
    pub(crate) next: u64,
    /// Not closed or crashed by its client.
    pub(crate) live: bool,
    /// Items it has read.
    pub(crate) items: u64,
    /// The step it opened at.
    pub(crate) opened: u64,
}

/// The two oracles, fed every step, and whose verdicts count ([`Checks`]). Maps keyed by
/// strings are FNV hash maps (deterministic hashing, constant-time lookups at 10,000 users);
/// they are only ever looked up, never iterated where the order could reach a verdict.
#[derive(Debug)]
pub struct Checker {
    checks: Checks,
    coverage: Coverage,
    black: BlackBox,
    white: WhiteBox,
}

/// The result of one check.
pub(crate) type Checked = Result<(), Failed>;

impl Checker {
    /// A checker for a run with these limits.
    pub fn new(limits: Limits) -> Self {
        Self {
            checks: Checks::ALL,
            coverage: Coverage::default(),
            black: BlackBox::new(limits.clone()),
            white: WhiteBox::new(limits, Checks::ALL),
        }
    }

    /// Counts only the verdicts `checks` allow from now on (and gives the white-box oracle the
    /// backend's declared properties).
    pub fn set_checks(&mut self, checks: Checks) {
        self.checks = checks;
        self.white.checks = checks;
    }

    /// The same checker, counting the network coverage points too.
    pub fn over_network(mut self) -> Self {
        self.coverage = Coverage::network();
        self.black.holding = holding::Holding::new(true);
        self
    }

    /// The same checker, for a run over many nodes: a tab may read a message before its sender
    /// is told where it is, and a node may end tabs before their clients know; those
    /// judgments wait until the run has told enough (see `later`).
    pub fn over_many_nodes(&mut self) {
        self.black.over_many_nodes();
    }

    /// The coverage points hit so far.
    pub fn coverage(&self) -> &Coverage {
        &self.coverage
    }

    /// The verdict of both oracles on one check point: the earlier failure among those that
    /// count, the white-box one on a tie.
    fn judged(&self, black: Verdict, white: Verdict, step: u64) -> Result<(), Violation> {
        let black = black.err().filter(|_| self.checks.black);
        let white = white.err().filter(|_| self.checks.white);
        let first = match (black, white) {
            (Some(b), Some(w)) if b.0 < w.0 => Some(b),
            (b, Some(w)) => Some(w).or(b),
            (b, None) => b,
        };
        first.map_or(Ok(()), |(_, f)| Err(f.at(step)))
    }

    /// Checks one step and updates both models.
    pub fn on_step(&mut self, s: &Step) -> Result<(), Violation> {
        self.coverage.on_step(s);
        if matches!(s.what, What::ServerDown) {
            self.black.holding.server_lost(s.n);
            self.black.server_lost();
            self.white.server_lost();
            return Ok(());
        }
        let white = self.white.step(s, &mut self.coverage);
        let black = self.black.step(s, &mut self.coverage);
        self.judged(black, white, s.n)
    }

    /// Checks that a message its sender was told is accepted (at `at`) really was, and files
    /// it as what the user's tabs must read there.
    pub fn on_confirm(
        &mut self,
        user: &Key,
        msg: &MsgTag,
        at: wsreg::Position,
        step: u64,
    ) -> Result<(), Violation> {
        let white = self.white.confirmed(user, msg, at, step);
        let black = self.black.confirmed(user, msg, at, step);
        self.judged(black, white, step)
    }

    /// Judges what a client learned that no step shows (see [`holding::Learned`]), after step
    /// `step`: about its tab `tab`, or about `user` for a call on no tab.
    pub fn on_learned(
        &mut self,
        user: &Key,
        tab: Option<u64>,
        learned: &holding::Learned,
        step: u64,
    ) -> Result<(), Violation> {
        let white = self.white.learned(user, tab, learned, step);
        let black = self.black.learned(user, tab, learned, step);
        self.judged(black, white, step)
    }

    /// Compares what the backend shows for `user` with the white-box model, before the user
    /// acts (when the backend answers probes).
    pub fn on_probe(
        &self,
        user: &Key,
        probe: Option<wsreg::backend::Probe>,
        step: u64,
    ) -> Result<(), Violation> {
        if !self.checks.probes {
            return Ok(());
        }
        self.white.probe(user, probe).map_err(|f| f.at(step))
    }

    /// The fan-out check, once everything has healed (see `split_stream`).
    pub fn fan_out(&self, step: u64) -> Result<(), Violation> {
        if !self.checks.black {
            return Ok(());
        }
        self.black.split_stream().map_err(|f| f.at(step))
    }

    /// Open tabs that have not yet read everything their senders were told about. The world
    /// waits on this whoever judges the run (what it does must not depend on the oracle); only
    /// the black-box oracle calls a tab still behind at the bound a violation
    /// (see the world's heal phase).
    pub fn in_flight(&self) -> usize {
        self.black.behind().count()
    }

    /// What each tab that is behind still misses, in a user's words, first tab first.
    pub fn in_flight_by_tab(&self) -> Vec<String> {
        self.black
            .still_behind()
            .into_iter()
            .map(|(_, _, f)| f.message)
            .collect()
    }

    /// The end-of-run history checks (after everything drained and idle managers were reaped).
    pub fn finish(&self, last_step: u64) -> Result<(), Violation> {
        if self.checks.black {
            let many_nodes = self.black.later.is_some();
            if let Some((step, f)) = self.black.holding.unexplained_unless(many_nodes) {
                return Err(f.at(step));
            }
            if let Some((step, f)) = self.black.later.as_ref().and_then(|l| l.verdict(last_step)) {
                return Err(f.at(step));
            }
        }
        if !self.checks.white {
            return Ok(());
        }
        self.white.history().map_err(|f| f.at(last_step))
    }
}

#[cfg(test)]
mod tests {
    use wsreg::{CloseReason, Epoch, GapReason, Position};

    use super::*;
    use crate::generate::oracle::Oracle;

    const E: Epoch = Epoch::new(0, 1);

    /// A check's result as these tests read it: the invariant and the message.
    type Checked = Result<(), (Invariant, String)>;

    /// Feeds steps to a checker; each is (user, conn, mgr, what).
    struct Feed {
        checker: Checker,
        n: u64,
    }

    fn at(seq: u64) -> Position {
        Position::new(E, seq)
    }

    fn text(tag: &str) -> MsgTag {
        MsgTag {
            kind: "text",
            tag: tag.into(),
        }
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
                tab: None,
                what,
            };
            self.checker
                .on_step(&step)
                .map_err(|v| (v.invariant, v.message))
        }

        /// u1's tab `conn` connects on m1, resuming after `asked`, placed after `from`.
        fn tab(&mut self, conn: u64, asked: Option<Position>, from: Position) -> Checked {
            if conn == 1 {
                let created = What::ManagerCreated { epoch: E };
                self.step("u1", None, Some(1), created)?;
            }
            let live = self
                .checker
                .white
                .live_by_key
                .get("u1")
                .copied()
                .unwrap_or(0)
                + 1;
            self.step("u1", Some(conn), Some(1), What::ConnAdded { live })?;
            let what = What::Connected {
                key: "u1".into(),
                asked,
                from,
                recovered: asked.is_some(),
            };
            self.step("u1", Some(conn), Some(1), what)
        }

        /// u1 is sent text `m{seq}`, accepted as #seq.
        fn sent(&mut self, seq: u64) {
            let msg = text(&format!("u1/m{seq}"));
            let accepted = What::Accepted {
                at: at(seq),
                msg: msg.clone(),
            };
            self.step("u1", None, Some(1), accepted).unwrap();
            let n = self.n;
            self.checker
                .on_confirm(&"u1".into(), &msg, at(seq), n)
                .unwrap();
        }

        fn read(&mut self, conn: u64, seq: u64, tag: &str) -> Checked {
            let what = What::Received {
                at: at(seq),
                msg: text(tag),
                to: "u1".into(),
                lost: false,
            };
            self.step("u1", Some(conn), None, what)
        }

        fn gap(&mut self, conn: u64, from: u64, to: u64) -> Checked {
            let what = What::Gap {
                at: at(to),
                from,
                reason: GapReason::Trimmed,
                lost: false,
            };
            self.step("u1", Some(conn), None, what)
        }
    }

    #[test]
    fn a_run_read_out_of_emission_order_is_caught_even_when_positions_agree() {
        let mut f = Feed::new();
        f.tab(1, None, at(0)).unwrap();
        let started = MsgTag {
            kind: "agent_started",
            tag: "u1/r1".into(),
        };
        let thinking = MsgTag {
            kind: "agent_thinking",
            tag: "u1/r1:step 0".into(),
        };
        for msg in [&started, &thinking] {
            let emit = What::Emit { msg: msg.clone() };
            f.step("u1", None, None, emit).unwrap();
        }
        // The backend numbered them in the wrong order and told the senders so: the positions
        // agree with what the tab reads, but the run starts with a thought.
        for (seq, msg) in [(1, &thinking), (2, &started)] {
            let accepted = What::Accepted {
                at: at(seq),
                msg: msg.clone(),
            };
            f.step("u1", None, Some(1), accepted).unwrap();
            let n = f.n;
            f.checker.on_confirm(&"u1".into(), msg, at(seq), n).unwrap();
        }
        let read = |msg: &MsgTag, seq| What::Received {
            at: at(seq),
            msg: msg.clone(),
            to: "u1".into(),
            lost: false,
        };
        f.step("u1", Some(1), None, read(&thinking, 1)).unwrap();
        let err = f.step("u1", Some(1), None, read(&started, 2)).unwrap_err();
        assert_eq!(err.0, Invariant::I7, "{}", err.1);
        assert!(err.1.contains("lifecycle order"), "{}", err.1);
    }

    #[test]
    fn without_the_observer_the_black_box_still_judges_and_white_box_checks_stay_quiet() {
        let mut f = Feed::new();
        f.checker.set_checks(Checks::new(
            Oracle::Both,
            wsreg::backend::Capabilities::default(),
        ));
        // No observation at all: the connect's own answer is all the checker has.
        let what = What::Connected {
            key: "u1".into(),
            asked: None,
            from: at(0),
            recovered: false,
        };
        f.step("u1", Some(1), Some(1), what).unwrap();
        let msg = text("u1/m1");
        f.checker
            .on_confirm(&"u1".into(), &msg, at(1), f.n)
            .unwrap();
        assert_eq!(f.read(1, 2, "u1/m2").unwrap_err().0, Invariant::I8);
        // The same skip goes unjudged by the white-box oracle alone.
        let mut w = Feed::new();
        w.checker.set_checks(Checks::new(
            Oracle::WhiteBox,
            wsreg::backend::Capabilities::ALL,
        ));
        w.tab(1, None, at(0)).unwrap();
        w.sent(1);
        assert!(w.read(1, 2, "u1/m2").is_ok());
    }

    #[test]
    fn a_tab_on_another_stream_than_its_users_messages_is_a_split_brain() {
        let mut f = Feed::new();
        f.tab(1, None, at(0)).unwrap();
        // The backend files tab 2 on a stream of its own (as a hidden second manager would)
        // while reporting nothing about it: only the clients show it.
        let other = Position::new(Epoch::new(0, 9), 0);
        let what = What::Connected {
            key: "u1".into(),
            asked: None,
            from: other,
            recovered: false,
        };
        f.step("u1", Some(2), Some(1), what).ok();
        f.sent(1);
        assert_eq!(f.read(1, 1, "u1/m1"), Ok(()));
        let err = f.checker.fan_out(f.n).unwrap_err();
        assert_eq!(err.invariant, Invariant::I2, "{}", err.message);
        assert!(err.message.contains("c2"), "{}", err.message);
        // A tab that opened after the last send on another stream is not blamed for it.
        let mut g = Feed::new();
        g.tab(1, None, at(0)).unwrap();
        g.sent(1);
        assert!(g.checker.fan_out(g.n).is_ok());
    }

    #[test]
    fn a_tab_reads_a_contiguous_stream_and_a_gap_is_the_only_way_to_skip() {
        let mut f = Feed::new();
        f.tab(1, None, at(0)).unwrap();
        for seq in 1..=4 {
            f.sent(seq);
        }
        f.read(1, 1, "u1/m1").unwrap();
        assert_eq!(f.checker.in_flight(), 1, "c1 is behind");
        f.gap(1, 2, 3).unwrap();
        f.read(1, 4, "u1/m4").unwrap();
        assert_eq!(f.checker.in_flight(), 0);
        assert_eq!(f.read(1, 4, "u1/m4").unwrap_err().0, Invariant::I7);

        let mut skipped = Feed::new();
        skipped.tab(1, None, at(0)).unwrap();
        skipped.sent(1);
        skipped.sent(2);
        assert_eq!(skipped.read(1, 2, "u1/m2").unwrap_err().0, Invariant::I8);

        let mut late_gap = Feed::new();
        late_gap.tab(1, None, at(0)).unwrap();
        late_gap.sent(1);
        late_gap.sent(2);
        assert_eq!(late_gap.gap(1, 2, 2).unwrap_err().0, Invariant::I8);
    }

    #[test]
    fn what_a_tab_reads_at_a_position_is_what_its_sender_was_told() {
        let mut f = Feed::new();
        f.tab(1, None, at(0)).unwrap();
        f.sent(1);
        // Something else where m1 was said to be: m1 never reaches this tab.
        assert_eq!(f.read(1, 1, "u1/m9").unwrap_err().0, Invariant::I8);
        let mut swapped = Feed::new();
        swapped.tab(1, None, at(0)).unwrap();
        swapped.sent(1);
        swapped.sent(2);
        // m2 arrives where m1 was said to be: m1 is gone and m2 is out of place.
        assert_eq!(swapped.read(1, 1, "u1/m2").unwrap_err().0, Invariant::I7);
        let mut foreign = Feed::new();
        foreign.tab(1, None, at(0)).unwrap();
        assert_eq!(foreign.read(1, 1, "u2/m1").unwrap_err().0, Invariant::I1);
    }

    #[test]
    fn a_resume_must_continue_exactly_where_the_client_was() {
        let mut f = Feed::new();
        f.tab(1, None, at(0)).unwrap();
        f.sent(1);
        f.read(1, 1, "u1/m1").unwrap();
        f.step("u1", Some(1), None, What::Close).unwrap();
        let closed = What::ConnRemoved {
            reason: CloseReason::Closed,
            live: 0,
        };
        f.step("u1", Some(1), Some(1), closed).unwrap();
        assert_eq!(f.tab(2, Some(at(1)), at(0)).unwrap_err().0, Invariant::I7);
        let mut skipping = Feed::new();
        skipping.tab(1, None, at(0)).unwrap();
        assert_eq!(
            skipping.tab(2, Some(at(1)), at(3)).unwrap_err().0,
            Invariant::I8
        );
        let mut other_epoch = Feed::new();
        other_epoch.tab(1, None, at(0)).unwrap();
        let old = Position::new(Epoch::new(0, 0), 5);
        let err = other_epoch.tab(2, Some(old), at(2)).unwrap_err();
        assert_eq!(err.0, Invariant::I8, "{}", err.1);
    }

    #[test]
    fn a_server_restart_forgets_the_registry_but_not_the_keys() {
        let mut f = Feed::new();
        f.tab(1, None, at(0)).unwrap();
        f.sent(1);
        f.step("-", None, None, What::ServerDown).unwrap();
        assert_eq!(f.checker.in_flight(), 0, "the tab died with the server");
        f.checker.finish(f.n).unwrap();
        // The fresh registry numbers from 1 again, and a user filed under u1's key after the
        // restart is still a collision.
        f.tab(1, None, at(0)).unwrap();
        f.step("u1", Some(2), Some(1), What::ConnAdded { live: 2 })
            .unwrap();
        let what = What::Connected {
            key: "u1".into(),
            asked: None,
            from: at(0),
            recovered: false,
        };
        let err = f.step("u2", Some(2), Some(1), what);
        assert_eq!(err.unwrap_err().0, Invariant::I3);
    }

    /// u1 holds key `a` on m1; u2 holds `b` on m2; then u1 is handed `b` too, while m1 lives.
    fn key_taken_over(oracle: Oracle) -> Checked {
        let mut f = Feed::new();
        f.checker
            .set_checks(Checks::new(oracle, wsreg::backend::Capabilities::ALL));
        let connected = |key: &str| What::Connected {
            key: key.into(),
            asked: None,
            from: at(0),
            recovered: false,
        };
        for (user, key, m, c) in [("u1", "a", 1, 1), ("u2", "b", 2, 2)] {
            f.step(key, None, Some(m), What::ManagerCreated { epoch: E })?;
            f.step(key, Some(c), Some(m), What::ConnAdded { live: 1 })?;
            f.step(user, Some(c), Some(m), connected(key))?;
        }
        f.step("b", Some(3), Some(2), What::ConnAdded { live: 2 })?;
        f.step("u1", Some(3), Some(2), connected("b"))
    }

    #[test]
    fn each_oracle_judges_what_it_sees_and_both_give_the_earlier_verdict() {
        // What a client sees: u1 is filed under u2's key (I3), the first check of the step.
        assert_eq!(
            key_taken_over(Oracle::BlackBox).unwrap_err().0,
            Invariant::I3
        );
        assert_eq!(key_taken_over(Oracle::Both).unwrap_err().0, Invariant::I3);
        // What the backend reports: u1 has two live managers (I2), whether or not the
        // black-box oracle, switched off, would have objected first.
        let white = key_taken_over(Oracle::WhiteBox).unwrap_err();
        assert_eq!(white.0, Invariant::I2, "{}", white.1);
        assert!(white.1.contains("two live managers"), "{}", white.1);
    }
}
