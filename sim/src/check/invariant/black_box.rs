//! [`BlackBox`]: the oracle that needs nothing from the backend. Its model is built from what
//! the harness did, what the backend's calls returned and what each simulated tab read; it
//! checks keys (I3), limits as the clients saw them (I6), and delivery (I1, I7, I8; in
//! `delivery.rs`), and, once everything healed, fan-out (I2).

use std::collections::BTreeMap;

use fnv::FnvHashMap;
use wsreg::Position;

use super::holding::{Holding, Learned};
use super::later::Later;
use super::oracle::{Judge, Verdict};
use super::{Checked, Invariant, Key, TabModel, TabRef};
use crate::check::coverage::Coverage;
use crate::check::trace::{MsgTag, Step, What, FILL_PHASE};
use crate::generate::config::Limits;

/// The order of the black-box checks of a `Connected` step among every check of that step
/// (see [`Verdict`]): the key of a user against other users', then against its own earlier
/// one, then (after the white-box checks of the manager handed out) the tab itself.
pub(super) const KEY_SHARED: u8 = 0;
pub(super) const KEY_CHANGED: u8 = 1;
pub(super) const TAB_OPENED: u8 = 3;
/// On a confirmation, after the white-box check that the message was accepted at all.
pub(super) const SENT_TWICE: u8 = 1;

/// The black-box oracle's model.
#[derive(Debug)]
pub(crate) struct BlackBox {
    pub(super) limits: Limits,
    /// The key each user's connects returned, and the user of each key.
    pub(super) key_of_user: FnvHashMap<Key, Key>,
    pub(super) user_of_key: FnvHashMap<Key, Key>,
    /// What each sender was told: the message at each (user, position).
    pub(super) sent: FnvHashMap<(Key, Position), MsgTag>,
    /// Where each message was said to be.
    pub(super) sent_at: FnvHashMap<MsgTag, Position>,
    /// The furthest position senders were told about, per (user, epoch).
    pub(super) sent_head: FnvHashMap<(Key, wsreg::Epoch), u64>,
    /// Per user, per epoch, the last step a send confirmed in it began at: tabs open since then
    /// must all read that stream, whatever stream they are on. (The step the send began at,
    /// not the one its sender was told at: an answer can come late, from a stream that has
    /// been replaced since.)
    pub(super) sent_last: FnvHashMap<Key, BTreeMap<wsreg::Epoch, u64>>,
    /// The step each send or emit not yet confirmed began at.
    pub(super) send_began: FnvHashMap<MsgTag, u64>,
    /// Every tab, by the client's number for it, in order.
    pub(super) tabs: BTreeMap<u64, TabModel>,
    /// The tab each connection number the backend handed out was last given to.
    pub(super) live_conn: FnvHashMap<u64, u64>,
    /// Tabs the backend accepted and their clients have not closed, per user and in all.
    pub(super) live_tabs: FnvHashMap<Key, usize>,
    pub(super) live_tabs_total: usize,
    /// Agent runs: how many events of each the agent has emitted, and each event's place in
    /// its run, so a tab can be checked to read a run's events in the order they were emitted.
    pub(super) run_emits: FnvHashMap<Key, u32>,
    pub(super) emit_order: FnvHashMap<MsgTag, (Key, u32)>,
    /// Per (tab, run): the place of the last event of the run the tab read.
    pub(super) run_read: FnvHashMap<(u64, Key), (u32, MsgTag)>,
    /// What each client holds, by its own numbers for its connect attempts.
    pub(crate) holding: Holding,
    /// Over many nodes: the judgments held back until the run tells more (see [`Later`]).
    pub(crate) later: Option<Box<Later>>,
}

/// A check's failure, at its place among the step's checks.
fn at(order: u8, checked: Checked) -> Verdict {
    checked.map_err(|f| (order, f))
}

impl BlackBox {
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            limits,
            key_of_user: FnvHashMap::default(),
            user_of_key: FnvHashMap::default(),
            sent: FnvHashMap::default(),
            sent_at: FnvHashMap::default(),
            sent_head: FnvHashMap::default(),
            sent_last: FnvHashMap::default(),
            send_began: FnvHashMap::default(),
            tabs: BTreeMap::new(),
            live_conn: FnvHashMap::default(),
            live_tabs: FnvHashMap::default(),
            live_tabs_total: 0,
            run_emits: FnvHashMap::default(),
            emit_order: FnvHashMap::default(),
            run_read: FnvHashMap::default(),
            holding: Holding::default(),
            later: None,
        }
    }

    /// Judges the run as one over many nodes (see [`Later`]).
    pub(crate) fn over_many_nodes(&mut self) {
        self.later = Some(Box::default());
    }

    /// The key a connect returned against every earlier one: one user per key, one key per
    /// user (a white-box backend may show the second as two live managers first).
    fn keys(&self, user: &Key, key: &Key) -> Verdict {
        if let Some(other) = self.user_of_key.get(key) {
            if other != user {
                return at(
                    KEY_SHARED,
                    fail!(
                        Invariant::I3,
                        "users {other} and {user} were both filed under key {key}"
                    ),
                );
            }
        }
        if let Some(old) = self.key_of_user.get(user) {
            if old != key {
                return at(
                    KEY_CHANGED,
                    fail!(
                        Invariant::I3,
                        "user {user} was filed under key {old} before and under {key} now"
                    ),
                );
            }
        }
        Ok(())
    }

    /// A tab connected: its key is checked and filed, then the tab itself. The tab is opened
    /// in the model even when its key fails, so a run judged by the white-box oracle alone
    /// still waits for every tab to read its stream.
    fn connected(
        &mut self,
        s: &Step,
        key: &Key,
        asked: Option<Position>,
        from: Position,
        recovered: bool,
        coverage: &mut Coverage,
    ) -> Verdict {
        let user = &s.user;
        let keys = self.keys(user, key);
        if keys.is_ok() {
            self.key_of_user.insert(user.clone(), key.clone());
            self.user_of_key.insert(key.clone(), user.clone());
        }
        let opened = at(
            TAB_OPENED,
            self.tab_opened(s, asked, from, recovered, coverage),
        );
        keys.and(opened)
    }

    /// Every tab still behind, as a finding on it (its number and user): what it never read,
    /// and no gap marker said lost.
    pub(crate) fn still_behind(&self) -> Vec<(TabRef, Key, super::Failed)> {
        self.behind()
            .filter_map(|(key, tab, head)| {
                let conn = tab.conn;
                if self.later.is_some() && self.split(tab) {
                    let split = self.split_tab_of(key, tab);
                    return split.map(|f| (TabRef { key, conn }, tab.user.clone(), f));
                }
                let behind: Checked = fail!(
                    Invariant::I8,
                    "{}'s tab c{conn} never read {}#{}..#{head}, and no gap marker said they are lost",
                    tab.user,
                    tab.epoch,
                    tab.next
                );
                behind.err().map(|f| (TabRef { key, conn }, tab.user.clone(), f))
            })
            .collect()
    }

    /// How a finding names a tab: the client's number for it (when the steps record one) and
    /// the backend's number for its connection.
    pub(crate) fn names(&self, r: TabRef) -> (Option<u64>, u64) {
        (self.tabs.get(&r.key).and_then(|t| t.tab), r.conn)
    }

    /// After a finding on what a tab read, its reading moves on past it: the tab is where the
    /// item it read says, so one fault is one finding.
    pub(crate) fn move_past(&mut self, s: &Step) {
        let at = match &s.what {
            What::Received { at, .. } | What::Gap { at, .. } => *at,
            _ => return,
        };
        if let Some(tab) = self.tabs.get_mut(&TabRef::of(s).key) {
            if tab.epoch != at.epoch {
                tab.epoch = at.epoch;
                tab.next = at.seq + 1;
            } else {
                tab.next = tab.next.max(at.seq + 1);
            }
        }
    }

    /// Tabs still open that have not yet read (or been told they lost) everything their users'
    /// senders were told about in their stream, with the first missing position of each.
    pub(super) fn behind(&self) -> impl Iterator<Item = (u64, &TabModel, u64)> + '_ {
        self.tabs.iter().filter_map(|(&conn, tab)| {
            // Over many nodes a tab left on a stream its user has moved on from waits for its
            // end (the node closes it; its client may only learn later), or is split.
            if self.later.is_some() && self.split(tab) {
                return Some((conn, tab, tab.next));
            }
            let head = self.sent_head.get(&(tab.user.clone(), tab.epoch))?;
            (tab.live && tab.next <= *head).then_some((conn, tab, *head))
        })
    }
}

impl Judge for BlackBox {
    fn step(&mut self, s: &Step, coverage: &mut Coverage) -> Verdict {
        if let Some(later) = &mut self.later {
            later.at(s.t_us, matches!(s.what, What::NodeDown { .. }));
        }
        let user = &s.user;
        let r = TabRef::of(s);
        if let Some(tab) = s.tab {
            match &s.what {
                What::Connect { .. } => self.holding.asked(user, tab, s.n),
                What::Connected { .. } => self.holding.accepted(tab),
                What::Close => self.holding.left(tab, false),
                What::Crash => self.holding.left(tab, true),
                What::Dropped { .. } => self.holding.dropped(tab, s.n),
                What::GaveUp { .. } => self.holding.gave_up(tab, s.n),
                What::Received { msg, .. } => {
                    if let Some(asked) = self.holding.abandoned(tab) {
                        return at(0, fail!(Invariant::I5, "{user} gave up on its connect of step {asked}, yet that socket received {msg} afterwards: the backend registered a tab nobody holds"));
                    }
                }
                What::Gap { at: pos, .. } => {
                    if let Some(asked) = self.holding.abandoned(tab) {
                        return at(0, fail!(Invariant::I5, "{user} gave up on its connect of step {asked}, yet that socket received a gap marker at {pos} afterwards: the backend registered a tab nobody holds"));
                    }
                }
                _ => {}
            }
        }
        match &s.what {
            What::Connected {
                key,
                asked,
                from,
                recovered,
            } => self.connected(s, key, *asked, *from, *recovered, coverage),
            What::Close | What::Cleanup | What::Crash | What::Dropped { .. } => {
                self.tab_closed(r.key);
                Ok(())
            }
            What::Emit { msg } => {
                self.send_began.insert(msg.clone(), s.n);
                self.emitted(msg);
                Ok(())
            }
            What::Send { msg } => {
                self.send_began.insert(msg.clone(), s.n);
                Ok(())
            }
            What::Phase(FILL_PHASE) => {
                self.holding.settled(s.n);
                Ok(())
            }
            What::Refused { action, error } if error.contains("the stream store") => {
                if let Some(later) = &mut self.later {
                    if matches!(*action, "emit" | "send") {
                        later.maybe_stored(user);
                    }
                    later.store_failed();
                }
                Ok(())
            }
            What::Received { at: pos, msg, .. } => at(
                0,
                self.received(user, r, *pos, msg)
                    .and_then(|()| self.run_order(user, r, msg)),
            ),
            What::Gap {
                at: pos,
                from,
                reason,
                ..
            } => at(0, self.gap(user, r, *pos, *from, *reason, coverage)),
            _ => Ok(()),
        }
    }

    fn confirmed(&mut self, user: &Key, msg: &MsgTag, pos: Position, step: u64) -> Verdict {
        at(SENT_TWICE, self.sent(user, msg, pos, step))
    }

    fn learned(&mut self, user: &Key, tab: Option<u64>, learned: &Learned, step: u64) -> Verdict {
        let stale_lease_may_count = self
            .later
            .as_ref()
            .is_some_and(|l| l.stale_lease_may_count());
        if let (Some(later), Learned::Ended, Some(tab)) = (&mut self.later, learned, tab) {
            // A node let the tab go (its stream was lost): the tab reads no more, and its
            // client resumes from where it was (and is told what it missed).
            later.ended(tab);
            self.tab_closed(tab);
        }
        let judged = self.holding.learned(user, tab, learned, step, &self.limits);
        if let (Err(f), Learned::Refusal(wsreg::Error::UserConnectionLimit { .. })) =
            (&judged, learned)
        {
            if f.invariant == Invariant::I6 && stale_lease_may_count {
                // A node died, or the store failed to answer, a moment ago: slots it had leased
                // are still held in the store until their leases run out.
                return Ok(());
            }
        }
        at(0, judged)
    }

    /// What carries over a server's death: the key each user is filed under, and which
    /// messages senders were told about (a replay of one after the restart is still a
    /// duplicate). Every tab died with the server.
    fn server_lost(&mut self) {
        let fresh = BlackBox::new(self.limits.clone());
        let keep = std::mem::replace(self, fresh);
        self.key_of_user = keep.key_of_user;
        self.user_of_key = keep.user_of_key;
        self.sent = keep.sent;
        self.sent_at = keep.sent_at;
        self.sent_head = keep.sent_head;
        self.sent_last = keep.sent_last;
        self.send_began = keep.send_began;
        self.run_emits = keep.run_emits;
        self.emit_order = keep.emit_order;
        self.holding = keep.holding;
    }
}
