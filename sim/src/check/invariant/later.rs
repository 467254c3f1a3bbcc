//! What a client can only judge later, over many nodes: a sender is told a message's position
//! once the store answered, so a tab on another node may read the message first; and a node
//! may close tabs on its own (their stream was lost) before their clients see the sockets end,
//! so a connect can be granted while the client still counts those tabs as open. The black-box
//! oracle judges both when the run has told it enough: a message read ahead of its sender's
//! answer must get that position; a grant over the per-user limit stands only if the tabs
//! counted were not ended by the backend after all.

use std::collections::BTreeSet;

use fnv::{FnvHashMap, FnvHashSet};
use wsreg::Position;

use super::{Failed, Invariant, Key};
use crate::check::trace::MsgTag;

/// The judgments held back (only for runs over many nodes).
#[derive(Debug, Default)]
pub(crate) struct Later {
    /// Messages read before any sender was told about them: where, by whom, on which tab.
    early: FnvHashMap<MsgTag, (Key, Position, u64)>,
    early_at: FnvHashMap<(Key, Position), MsgTag>,
    /// Users told a send failed because the store did not confirm it (it may have been
    /// stored nonetheless).
    maybe_stored: FnvHashSet<Key>,
    /// Grants over the per-user limit, each with the tabs it counted and how many too many.
    over: Vec<Over>,
    /// The virtual time of the latest step, and of the latest node death (µs).
    now_us: u64,
    node_died_us: Option<u64>,
    /// When a call was last refused because the store did not answer (a lease it took may
    /// outlive the connect that asked for it).
    store_failed_us: Option<u64>,
    /// When a node last ended a tab by itself.
    tab_ended_us: Option<u64>,
}

#[derive(Debug)]
struct Over {
    step: u64,
    excess: usize,
    counted: BTreeSet<u64>,
    failed: Failed,
}

impl Later {
    /// A tab (connection `conn`) read `msg` at `at` before its sender was told anything.
    pub(super) fn read_early(
        &mut self,
        user: &Key,
        conn: u64,
        at: Position,
        msg: &MsgTag,
    ) -> Result<(), Failed> {
        if let Some((_, first, _)) = self.early.get(msg) {
            if *first != at {
                return fail!(Invariant::I7, "{user}'s tab c{conn} read {msg} as {at}, and another tab read it as {first}: one message at two positions");
            }
            return Ok(());
        }
        if let Some(other) = self.early_at.get(&(user.clone(), at)) {
            if other != msg {
                return fail!(Invariant::I7, "{user}'s tab c{conn} read {msg} as {at}, and another tab read {other} there: two messages at one position");
            }
        }
        self.early.insert(msg.clone(), (user.clone(), at, conn));
        self.early_at.insert((user.clone(), at), msg.clone());
        Ok(())
    }

    /// A sender was told `msg` is at `at`: whatever a tab read of it early must agree.
    pub(super) fn told(&mut self, user: &Key, msg: &MsgTag, at: Position) -> Result<(), Failed> {
        if let Some((_, read, conn)) = self.early.remove(msg) {
            self.early_at.remove(&(user.clone(), read));
            if read != at {
                return fail!(
                    Invariant::I7,
                    "{user}'s tab c{conn} read {msg} as {read}, but its sender was told it is {at}"
                );
            }
        }
        if let Some(other) = self.early_at.get(&(user.clone(), at)) {
            if other != msg {
                return fail!(Invariant::I8, "a tab of {user}'s read {other} as {at}, but its sender was told {at} is {msg}: one of them is lost");
            }
        }
        Ok(())
    }

    /// `user` was told a send failed because the store did not confirm it.
    pub(super) fn maybe_stored(&mut self, user: &Key) {
        self.maybe_stored.insert(user.clone());
    }

    /// The run reached virtual time `t_us` (`node_died`: a server node was killed then).
    pub(super) fn at(&mut self, t_us: u64, node_died: bool) {
        self.now_us = t_us;
        if node_died {
            self.node_died_us = Some(t_us);
        }
    }

    /// A call was refused because the store did not answer.
    pub(super) fn store_failed(&mut self) {
        self.store_failed_us = Some(self.now_us);
    }

    /// Whether a refusal at the per-user limit may be a stale lease's doing: the connections
    /// of a node that died, the connects it was registering, or a connect whose lease the
    /// store took without answering, hold their slots until their leases run out (one lease,
    /// and as much again for a renewal in flight).
    pub(super) fn stale_lease_may_count(&self) -> bool {
        let lease_us = crate::generate::config::NODE_LEASE_MS * 1_000;
        [self.node_died_us, self.store_failed_us, self.tab_ended_us]
            .into_iter()
            .flatten()
            .any(|at| self.now_us <= at + 2 * lease_us)
    }

    /// A grant over the per-user limit at `step`, with the tabs it counted.
    pub(super) fn over_limit(
        &mut self,
        step: u64,
        excess: usize,
        counted: BTreeSet<u64>,
        failed: Failed,
    ) {
        self.over.push(Over {
            step,
            excess,
            counted,
            failed,
        });
    }

    /// The backend ended tab `tab` on its own: it may have done so before any grant that
    /// counted it.
    pub(super) fn ended(&mut self, tab: u64) {
        // A node ends a tab whose lease it could not renew in time: the store may hold that
        // lease until it runs out, as it does a dead node's.
        self.tab_ended_us = Some(self.now_us);
        for over in &mut self.over {
            if over.counted.remove(&tab) {
                over.excess = over.excess.saturating_sub(1);
            }
        }
    }

    /// What stands once the run is over: a grant still over the limit, or a message read that
    /// no sender was ever told about (unless its user was told a send may have been stored).
    /// (`last_step`: the run's last step, where a message never told about is reported.)
    pub(crate) fn verdict(&self, last_step: u64) -> Option<(u64, Failed)> {
        if let Some(over) = self.over.iter().find(|o| o.excess > 0) {
            return Some((over.step, over.failed.clone()));
        }
        let mut early: Vec<_> = self
            .early
            .iter()
            .filter(|(_, (user, _, _))| !self.maybe_stored.contains(user))
            .collect();
        early.sort_by_key(|(msg, (_, at, _))| (*at, msg.to_string()));
        let (msg, (user, at, conn)) = early.first()?;
        let failed: Result<(), Failed> = fail!(
            Invariant::I7,
            "{user}'s tab c{conn} received {msg} as {at}, which no sender was told about"
        );
        failed.err().map(|f| (last_step, f))
    }
}
