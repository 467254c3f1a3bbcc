//! I1 owner-only delivery, I7 order without duplicates, I8 nothing lost silently: every message's
//! path from acceptance to the client, checked step by step.

use super::{fail, Checked, Checker, Flight, Invariant, Key};
use crate::trace::MsgTag;

impl Checker {
    pub(super) fn accepted(&mut self, key: &Key, seq: u64, msg: &MsgTag) -> Checked {
        let tally = self.tallies.entry((msg.kind, msg.tag.clone())).or_default();
        tally.accepted += 1;
        if msg.kind == "text" && tally.accepted > 1 {
            return fail(
                Invariant::I7,
                format!(
                    "{key} accepted {} a second time (as #{seq}): the user will see it twice",
                    msg.tag
                ),
            );
        }
        let m = self.msgs.entry(key.clone()).or_default();
        if m.accepted.insert(seq, msg.clone()).is_some() {
            return fail(Invariant::I7, format!("{key} numbered two messages #{seq}"));
        }
        m.unrouted.insert(seq);
        Ok(())
    }

    /// A sender was told its message was accepted: the core must have accepted it.
    pub(super) fn confirmed(&mut self, user: &Key, msg: &MsgTag) -> Checked {
        let tally = self.tallies.entry((msg.kind, msg.tag.clone())).or_default();
        tally.confirmed += 1;
        if tally.confirmed > tally.accepted {
            return fail(
                Invariant::I8,
                format!("{user}'s {} for {} was reported sent, but the core never accepted it: lost silently", msg.kind, msg.tag),
            );
        }
        Ok(())
    }

    pub(super) fn enqueued(&mut self, key: &Key, conn: u64, seq: u64, replay: bool) -> Checked {
        match self.conns.get(&conn) {
            Some(c) if c.open && &c.key == key => {}
            Some(c) => {
                return fail(
                    Invariant::I5,
                    format!(
                    "{key}'s message #{seq} was queued for c{conn}, which is {} connection of {}",
                    if c.open { "a live" } else { "a closed" },
                    c.key
                ),
                )
            }
            None => {
                return fail(
                    Invariant::I5,
                    format!("{key}'s message #{seq} was queued for unknown connection c{conn}"),
                )
            }
        }
        let Some((m, msg)) = self
            .msgs
            .get_mut(key)
            .and_then(|m| m.accepted.get(&seq).cloned().map(|msg| (m, msg)))
        else {
            return fail(
                Invariant::I8,
                format!("c{conn} was given #{seq}, which {key} never accepted"),
            );
        };
        if replay {
            m.held.remove(&seq);
        } else {
            m.unrouted.remove(&seq);
        }
        if self
            .flights
            .insert(
                (conn, seq),
                Flight {
                    msg,
                    delivered: false,
                    received: false,
                },
            )
            .is_some()
        {
            return fail(
                Invariant::I7,
                format!("{key}'s message #{seq} was queued twice for c{conn}"),
            );
        }
        Ok(())
    }

    pub(super) fn requeued(&mut self, key: &Key, conn: u64, seq: u64) -> Checked {
        match self.flights.remove(&(conn, seq)) {
            Some(f) if !f.delivered && !f.received => {
                self.msgs.entry(key.clone()).or_default().held.insert(seq);
                Ok(())
            }
            Some(_) => fail(
                Invariant::I7,
                format!("#{seq} was taken back from c{conn} after it had reached the client: it may arrive twice"),
            ),
            None => fail(
                Invariant::I8,
                format!("#{seq} was taken back from c{conn}, which never had it queued"),
            ),
        }
    }

    pub(super) fn buffered(&mut self, key: &Key, seq: u64) -> Checked {
        let m = self.msgs.entry(key.clone()).or_default();
        if !m.unrouted.remove(&seq) && !m.held.contains(&seq) {
            return fail(
                Invariant::I8,
                format!("{key}'s message #{seq} was held for recovery, but it was neither new nor taken back"),
            );
        }
        m.held.insert(seq);
        Ok(())
    }

    pub(super) fn delivered(&mut self, key: &Key, conn: u64, seq: u64) -> Checked {
        let Some(f) = self.flights.get_mut(&(conn, seq)) else {
            return fail(
                Invariant::I8,
                format!(
                    "{key}'s message #{seq} was delivered on c{conn} without being queued for it"
                ),
            );
        };
        if f.delivered {
            return fail(
                Invariant::I7,
                format!("{key}'s message #{seq} was delivered twice on c{conn}"),
            );
        }
        f.delivered = true;
        if f.received {
            self.flights.remove(&(conn, seq));
        }
        Ok(())
    }

    pub(super) fn dropped(&mut self, key: &Key, conn: Option<u64>, seq: u64) -> Checked {
        let m = self.msgs.entry(key.clone()).or_default();
        let was_new = m.unrouted.remove(&seq);
        if conn.is_none() && !was_new && !m.held.remove(&seq) {
            return fail(
                Invariant::I8,
                format!("{key} reported dropping #{seq}, which it was not holding"),
            );
        }
        Ok(())
    }

    /// A simulated client read a message on one of its tabs.
    pub(super) fn received(&mut self, user: &Key, conn: u64, seq: u64, msg: &MsgTag) -> Checked {
        if msg.owner() != &**user {
            return fail(
                Invariant::I1,
                format!(
                    "user {user} received {}'s {} for {} (#{seq} on c{conn})",
                    msg.owner(),
                    msg.kind,
                    msg.tag
                ),
            );
        }
        if let Some(&last) = self.last_received.get(&conn) {
            if seq <= last {
                return fail(
                    Invariant::I7,
                    format!(
                        "{user}'s tab c{conn} received #{seq} ({msg}) after #{last}: {}",
                        if seq == last {
                            "a duplicate"
                        } else {
                            "out of order"
                        }
                    ),
                );
            }
        }
        self.last_received.insert(conn, seq);
        let mismatch = |sent: &MsgTag| {
            fail(
                Invariant::I7,
                format!("{user}'s tab c{conn} received #{seq} as {msg}, but #{seq} was {sent}"),
            )
        };
        match self.flights.get_mut(&(conn, seq)) {
            Some(f) if &f.msg != msg => mismatch(&f.msg),
            Some(f) => {
                f.received = true;
                if f.delivered {
                    self.flights.remove(&(conn, seq));
                }
                Ok(())
            }
            None => match self.adrift.remove(&(conn, seq)) {
                Some(sent) if &sent != msg => mismatch(&sent),
                Some(_) => Ok(()),
                None => fail(
                    Invariant::I8,
                    format!(
                        "{user}'s tab c{conn} received #{seq} ({msg}), which was never queued for it"
                    ),
                ),
            },
        }
    }
}
