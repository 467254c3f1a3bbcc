//! [`WhiteBox`]: the oracle that checks the backend's own account of itself (the `Observer`
//! stream and probes) and the design choices it declares. Its model is the registry as the
//! backend reports it: managers and keys (I2, I9; `managers.rs`), connections and limits (I5,
//! I6; `connections.rs`), modes and probes (I4; `sharing.rs`), and how messages were numbered
//! and accepted (I7, I8; below).

use std::collections::BTreeMap;

use fnv::{FnvHashMap, FnvHashSet};
use wsreg::{Mode, Position};

use super::oracle::{Checks, Judge, Verdict};
use super::{Checked, ConnModel, Invariant, Key};
use crate::check::coverage::Coverage;
use crate::check::trace::{MsgTag, Step, What};
use crate::generate::config::Limits;

/// The order of the white-box checks of a `Connected` step among every check of that step
/// (see [`Verdict`]): a user's key moving while its old manager lives (at the place of the
/// black-box key check, which it wins), then the manager handed out.
pub(super) const TWO_MANAGERS: u8 = super::black_box::KEY_CHANGED;
pub(super) const MANAGER_HANDED: u8 = 2;
/// On a confirmation, first: the message was accepted at all.
pub(super) const NEVER_ACCEPTED: u8 = 0;

/// How often one harness message was accepted by the backend and confirmed to its sender.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Tally {
    pub(super) accepted: u32,
    pub(super) confirmed: u32,
}

/// The white-box oracle's model.
#[derive(Debug)]
pub(crate) struct WhiteBox {
    pub(super) limits: Limits,
    /// What the backend declares (ids never reused, one acceptance per message).
    pub(super) checks: Checks,
    // managers and keys
    pub(super) live_mgr: FnvHashMap<Key, u64>,
    pub(super) removed_mgr: FnvHashSet<(Key, u64)>,
    pub(super) key_of_user: FnvHashMap<Key, Key>,
    pub(super) user_of_key: FnvHashMap<Key, Key>,
    pub(super) mode_of_key: FnvHashMap<Key, Mode>,
    // connections, as the backend reports them
    pub(super) conns: BTreeMap<u64, ConnModel>,
    pub(super) live_by_key: FnvHashMap<Key, usize>,
    pub(super) live_total: usize,
    // requests the clients made, to tell asked-for changes from unasked ones
    pub(super) closing: FnvHashSet<u64>,
    /// Connects their clients gave up on: each may leave the server a connection no client
    /// ever learned of, which the server then closes on its own.
    pub(super) given_up: usize,
    pub(super) mode_request: Option<Key>,
    /// Per harness message (kind, tag): how often the backend accepted it, how often a sender
    /// was told it was accepted.
    pub(super) tallies: FnvHashMap<(&'static str, Key), Tally>,
    /// The last number the backend handed out per (key, epoch).
    pub(super) heads: FnvHashMap<(Key, wsreg::Epoch), u64>,
}

/// A check's failure, at its place among the step's checks.
fn at(order: u8, checked: Checked) -> Verdict {
    checked.map_err(|f| (order, f))
}

impl WhiteBox {
    pub(crate) fn new(limits: Limits, checks: Checks) -> Self {
        Self {
            limits,
            checks,
            live_mgr: FnvHashMap::default(),
            removed_mgr: FnvHashSet::default(),
            key_of_user: FnvHashMap::default(),
            user_of_key: FnvHashMap::default(),
            mode_of_key: FnvHashMap::default(),
            conns: BTreeMap::new(),
            live_by_key: FnvHashMap::default(),
            live_total: 0,
            closing: FnvHashSet::default(),
            given_up: 0,
            mode_request: None,
            tallies: FnvHashMap::default(),
            heads: FnvHashMap::default(),
        }
    }

    /// The backend numbered a message.
    fn accepted(&mut self, key: &Key, at: Position, msg: &MsgTag) -> Checked {
        let tally = self.tallies.entry((msg.kind, msg.tag.clone())).or_default();
        tally.accepted += 1;
        if tally.accepted > 1 && self.checks.accepts_once {
            return fail!(
                Invariant::I7,
                "{key} accepted {msg} a second time (as {at}): the user will see it twice"
            );
        }
        let head = self.heads.entry((key.clone(), at.epoch)).or_insert(0);
        if at.seq != *head + 1 {
            return fail!(
                Invariant::I7,
                "{key} numbered {msg} {at} right after #{head}: a stream's numbers are contiguous"
            );
        }
        *head = at.seq;
        Ok(())
    }

    /// The end-of-run history check (after everything drained and idle managers were reaped).
    pub(super) fn history(&self) -> Checked {
        if let Some((key, mgr)) = self.live_mgr.iter().min() {
            return fail!(
                Invariant::I9,
                "{key}'s manager m{mgr} has no connection and outlived its idle TTL"
            );
        }
        Ok(())
    }
}

impl Judge for WhiteBox {
    fn step(&mut self, s: &Step, _: &mut Coverage) -> Verdict {
        let key = &s.user;
        let conn = s.conn.unwrap_or(0);
        let mgr = s.mgr.unwrap_or(0);
        match &s.what {
            What::ManagerCreated { .. } => at(0, self.manager_created(key, mgr)),
            What::ManagerRemoved(_) => at(0, self.manager_removed(key, mgr)),
            What::Connected { key: filed, .. } => self.connected(key, filed, mgr, conn),
            What::ConnAdded { live } => at(0, self.conn_added(key, mgr, conn, *live)),
            What::ConnRemoved { live, reason } => {
                at(0, self.conn_removed(key, conn, *reason, *live))
            }
            What::Close | What::Cleanup | What::Crash | What::Dropped { .. } => {
                self.closing.insert(conn);
                Ok(())
            }
            What::GaveUp { .. } => {
                self.given_up += 1;
                Ok(())
            }
            What::SetMode(_) => {
                self.mode_request = Some(key.clone());
                Ok(())
            }
            What::ModeChanged { from, to } => at(0, self.mode_changed(key, *from, *to)),
            What::Accepted { at: pos, msg } => at(0, self.accepted(key, *pos, msg)),
            What::Delivered { seq } => at(0, self.delivered(key, conn, *seq)),
            _ => Ok(()),
        }
    }

    fn confirmed(&mut self, user: &Key, msg: &MsgTag, _: Position, _: u64) -> Verdict {
        let tally = self.tallies.entry((msg.kind, msg.tag.clone())).or_default();
        tally.confirmed += 1;
        if tally.confirmed > tally.accepted {
            return at(NEVER_ACCEPTED, fail!(Invariant::I8, "{user}'s {msg} was reported sent, but the backend never accepted it: lost silently"));
        }
        Ok(())
    }

    /// What carries over a server's death: the key each user is filed under, and which
    /// messages were accepted and confirmed. Every id the new registry hands out starts afresh.
    fn server_lost(&mut self) {
        let fresh = WhiteBox::new(self.limits.clone(), self.checks);
        let keep = std::mem::replace(self, fresh);
        self.key_of_user = keep.key_of_user;
        self.user_of_key = keep.user_of_key;
        self.tallies = keep.tallies;
    }
}
