//! I5 indexes agree and I6 limits hold: the connection bookkeeping.

use wsreg::CloseReason;

use super::white_box::WhiteBox;
use super::{Checked, ConnModel, Invariant, Key};

impl WhiteBox {
    pub(super) fn conn_added(&mut self, key: &Key, mgr: u64, conn: u64, live: usize) -> Checked {
        if self.checks.unique_ids && self.conns.contains_key(&conn) {
            return fail!(Invariant::I5, "connection id c{conn} was handed out twice");
        }
        match self.live_mgr.get(key) {
            Some(&m) if m == mgr => {}
            other => {
                return fail!(Invariant::I2, "c{conn} of {key} was added to manager m{mgr}, which the registry does not hold (it holds {other:?})")
            }
        }
        let count = self.live_by_key.entry(key.clone()).or_insert(0);
        *count += 1;
        let count = *count;
        self.live_total += 1;
        self.conns.insert(
            conn,
            ConnModel {
                key: key.clone(),
                open: true,
                owner: None,
            },
        );
        if count > self.limits.max_connections_per_user {
            return fail!(
                Invariant::I6,
                "{key} holds {count} connections, over its limit of {}",
                self.limits.max_connections_per_user
            );
        }
        if self.live_total > self.limits.max_connections {
            return fail!(
                Invariant::I6,
                "{} connections are open, over the limit of {}",
                self.live_total,
                self.limits.max_connections
            );
        }
        if count != live {
            return fail!(Invariant::I5, "{key} reports {live} live connections after adding c{conn}; the history says {count}");
        }
        Ok(())
    }

    /// White-box: the backend says a connection's sink took an item.
    pub(super) fn delivered(&mut self, key: &Key, conn: u64, seq: u64) -> Checked {
        match self.conns.get(&conn) {
            Some(c) if &c.key == key => Ok(()),
            Some(c) => fail!(
                Invariant::I5,
                "{key}'s #{seq} was delivered on c{conn}, a connection of {}",
                c.key
            ),
            None => fail!(
                Invariant::I5,
                "{key}'s #{seq} was delivered on c{conn}, which was never added"
            ),
        }
    }

    pub(super) fn conn_removed(
        &mut self,
        key: &Key,
        conn: u64,
        reason: CloseReason,
        live: usize,
    ) -> Checked {
        let unheld = self.conns.get(&conn).is_some_and(|c| c.owner.is_none());
        if reason == CloseReason::Closed
            && unheld
            && !self.closing.contains(&conn)
            && self.given_up > 0
        {
            self.given_up -= 1; // the server let go of a connect its client gave up on
        } else if reason == CloseReason::Closed && !self.closing.remove(&conn) {
            return fail!(Invariant::I5, "{key}'s c{conn} was closed, but no client or cleanup asked to close it: a cleanup removed the wrong connection");
        }
        let Some(c) = self.conns.get_mut(&conn) else {
            return fail!(Invariant::I5, "unknown connection c{conn} was removed");
        };
        if !c.open {
            return fail!(Invariant::I5, "c{conn} was removed twice");
        }
        if &c.key != key {
            return fail!(
                Invariant::I5,
                "{key}'s cleanup removed c{conn}, which belongs to {}",
                c.key
            );
        }
        c.open = false;
        self.live_total -= 1;
        let count = self.live_by_key.entry(key.clone()).or_insert(1);
        *count -= 1;
        if *count != live {
            return fail!(Invariant::I5, "{key} reports {live} live connections after removing c{conn}; the history says {count}");
        }
        Ok(())
    }
}
