//! I1 owner-only delivery, I7 order without duplicates, I8 nothing lost silently, checked by
//! the black-box oracle on what each tab actually read against what each sender was told.
//!
//! The rule every tab's stream keeps: after the position its connection continues from,
//! positions are contiguous within one epoch, and the only way to skip is a gap marker that
//! starts exactly where the tab is. Every position a sender was told about carries that
//! sender's message and nothing else.

use std::collections::BTreeMap;

use wsreg::{GapReason, Position};

use super::black_box::BlackBox;
use super::{Checked, Failed, Invariant, Key, TabModel, TabRef};
use crate::check::coverage::Coverage;
use crate::check::reading::{place, Place};
use crate::check::trace::{MsgTag, Step};

/// The run an agent event belongs to, as a slice of its tag: its owner and run id (`u3/r7` of
/// `u3/r7:tool0`). User ids may hold `:`; run ids and what follows them hold no `/`.
fn run_of(tag: &str) -> &str {
    match tag.rsplit_once('/') {
        Some((owner, rest)) => {
            let run = rest.split(':').next().unwrap_or(rest);
            &tag[..owner.len() + 1 + run.len()]
        }
        None => tag,
    }
}

impl BlackBox {
    /// A sender was told its message is at `at`: it is what the user's tabs must read there,
    /// and no other message may have been told to be there.
    pub(super) fn sent(&mut self, user: &Key, msg: &MsgTag, at: Position, step: u64) -> Checked {
        if let Some(later) = &mut self.later {
            later.told(user, msg, at)?;
        }
        if let Some(before) = self.sent.insert((user.clone(), at), msg.clone()) {
            return fail!(Invariant::I8, "{user}'s {msg} was reported sent as {at}, which {before} already was: one of them is lost");
        }
        self.sent_at.insert(msg.clone(), at);
        let began = self.send_began.remove(msg).unwrap_or(step);
        let last = self
            .sent_last
            .entry(user.clone())
            .or_default()
            .entry(at.epoch)
            .or_insert(began);
        *last = (*last).max(began);
        let head = self.sent_head.entry((user.clone(), at.epoch)).or_insert(0);
        *head = (*head).max(at.seq);
        Ok(())
    }

    /// A tab connected: where its stream continues, against what its client asked.
    pub(super) fn tab_opened(
        &mut self,
        s: &Step,
        asked: Option<Position>,
        from: Position,
        recovered: bool,
        coverage: &mut Coverage,
    ) -> Checked {
        let (user, conn, step) = (&s.user, s.conn.unwrap_or(0), s.n);
        let key = TabRef::of(s).key;
        let tab = TabModel {
            conn,
            tab: s.tab,
            user: user.clone(),
            epoch: from.epoch,
            next: from.seq + 1,
            live: true,
            items: 0,
            opened: step,
        };
        self.tabs.insert(key, tab);
        let holder = self.live_conn.insert(conn, key);
        if let Some(old) = holder.and_then(|k| self.tabs.get(&k)).filter(|t| t.live) {
            return fail!(
                Invariant::I5,
                "{user} was handed connection c{conn}, which {}'s live tab holds",
                old.user
            );
        }
        self.tab_limits(user, step)?;
        let Some(asked) = asked else { return Ok(()) };
        if asked.epoch == from.epoch {
            if from.seq > asked.seq {
                return fail!(Invariant::I8, "{user}'s tab c{conn} resumed after {asked} but was placed after {from}: #{}..#{} are skipped silently", asked.seq + 1, from.seq);
            }
            if from.seq < asked.seq {
                return fail!(Invariant::I7, "{user}'s tab c{conn} resumed after {asked} but was placed after {from}: it will see #{}..#{} again", from.seq + 1, asked.seq);
            }
            if recovered {
                coverage.hit("resumed_recovered");
            }
            return Ok(());
        }
        if recovered || from.seq != 0 {
            return fail!(Invariant::I8, "{user}'s tab c{conn} resumed after {asked} of an old stream and was told it continues after {from}{}: a position from another epoch was taken as valid, so what the new stream holds before it is skipped", if recovered { ", fully recovered" } else { "" });
        }
        Ok(())
    }

    /// Limits, counted from the tabs the backend accepted and their clients still hold open
    /// (a tab it closed on its own would count too, so this never overcounts a correct one).
    fn tab_limits(&mut self, user: &Key, step: u64) -> Checked {
        let mine = self.live_tabs.entry(user.clone()).or_insert(0);
        *mine += 1;
        let mine = *mine;
        self.live_tabs_total += 1;
        let max = self.limits.max_connections_per_user;
        if mine > max && self.later.is_some() {
            // Over many nodes the backend may have ended some of these tabs already; judged
            // once their clients learn (see `Later`).
            let counted = self
                .tabs
                .iter()
                .filter(|(_, t)| t.live && &t.user == user)
                .map(|(&k, _)| k)
                .collect();
            let failed: Checked = fail!(Invariant::I6, "{user} was given an open tab while {} others were open: {mine} tabs, over the limit of {max} per user", mine - 1);
            if let (Some(later), Err(failed)) = (self.later.as_mut(), failed) {
                later.over_limit(step, mine - max, counted, failed);
            }
        } else if mine > max {
            return fail!(Invariant::I6, "{user} was given an open tab while {} others were open: {mine} tabs, over the limit of {max} per user", mine - 1);
        }
        let max = self.limits.max_connections;
        if self.live_tabs_total > max {
            return fail!(
                Invariant::I6,
                "{user} was given a tab while {} were open: over the limit of {max} connections",
                self.live_tabs_total - 1
            );
        }
        Ok(())
    }

    /// A tab's client closed it, or crashed.
    pub(super) fn tab_closed(&mut self, key: u64) {
        let Some(tab) = self.tabs.get_mut(&key) else {
            return;
        };
        if self.live_conn.get(&tab.conn) == Some(&key) {
            self.live_conn.remove(&tab.conn);
        }
        if std::mem::replace(&mut tab.live, false) {
            if let Some(n) = self.live_tabs.get_mut(&tab.user) {
                *n = n.saturating_sub(1);
            }
            self.live_tabs_total = self.live_tabs_total.saturating_sub(1);
        }
    }

    /// A tab read a message.
    pub(super) fn received(
        &mut self,
        user: &Key,
        r: TabRef,
        at: Position,
        msg: &MsgTag,
    ) -> Checked {
        let conn = r.conn;
        if msg.owner() != &**user {
            return fail!(
                Invariant::I1,
                "user {user} received {}'s {msg} ({at} on c{conn})",
                msg.owner()
            );
        }
        self.advance(user, r, at.epoch, at.seq, at.seq, msg)?;
        match self.sent.get(&(user.clone(), at)) {
            Some(sent) if sent == msg => Ok(()),
            sent => match self.sent_at.get(msg) {
                Some(&first) if first != at => fail!(Invariant::I7, "{user}'s tab c{conn} received {msg} again as {at}: it was sent once, as {first}"),
                _ => match sent {
                    Some(sent) => fail!(Invariant::I8, "{user}'s tab c{conn} received {msg} as {at}, but {at} was {sent}: that message is lost"),
                    None if self.sent_at.contains_key(msg) => Ok(()),
                    None if self.later.is_some() => self
                        .later
                        .as_mut()
                        .map_or(Ok(()), |l| l.read_early(user, conn, at, msg)),
                    None => fail!(Invariant::I7, "{user}'s tab c{conn} received {msg} as {at}, which no sender was told about"),
                },
            },
        }
    }

    /// An agent emitted an event: its place in its run.
    pub(super) fn emitted(&mut self, msg: &MsgTag) {
        let run = run_of(&msg.tag);
        // One allocation per run, none per event: later events find the run's key by slice.
        let key = match self.run_emits.get_key_value(run) {
            Some((key, _)) => key.clone(),
            None if run.len() == msg.tag.len() => msg.tag.clone(),
            None => Key::from(run),
        };
        let n = self.run_emits.entry(key.clone()).or_insert(0);
        self.emit_order.insert(msg.clone(), (key, *n));
        *n += 1;
    }

    /// Per tab, one run's events are read in the order the agent emitted them, so a run reads
    /// `agent_started` first, tool calls nested, `agent_completed` last and nothing after it
    /// (a tab that opens mid-run starts mid-run). A check on receipt alone, so it holds even
    /// for a backend whose positions agree with its wrong order.
    pub(super) fn run_order(&mut self, user: &Key, r: TabRef, msg: &MsgTag) -> Checked {
        let conn = r.conn;
        if msg.kind == "text" {
            return Ok(());
        }
        let Some((run, place)) = self.emit_order.get(msg) else {
            return Ok(());
        };
        let last = self
            .run_read
            .insert((r.key, run.clone()), (*place, msg.clone()));
        match last {
            Some((before, earlier)) if before >= *place => fail!(Invariant::I7, "{user}'s tab c{conn} read {msg} after {earlier}, which the agent emitted after it: the run's events arrive out of lifecycle order"),
            _ => Ok(()),
        }
    }

    /// A tab read a gap marker for `from..=at.seq`.
    pub(super) fn gap(
        &mut self,
        user: &Key,
        r: TabRef,
        at: Position,
        from: u64,
        reason: GapReason,
        coverage: &mut Coverage,
    ) -> Checked {
        let conn = r.conn;
        if at.seq + 1 < from {
            return fail!(
                Invariant::I7,
                "{user}'s tab c{conn} received a gap #{from}..#{} that ends before it starts",
                at.seq
            );
        }
        let first = self.tabs.get(&r.key).map(|t| t.items == 0);
        self.advance(user, r, at.epoch, from, at.seq, &"a gap marker")?;
        match reason {
            GapReason::EpochChanged => coverage.hit("epoch_changed"),
            GapReason::Trimmed if first == Some(true) => coverage.hit("resumed_with_gap"),
            GapReason::Trimmed => coverage.hit("caught_up_past_a_gap"),
        }
        Ok(())
    }

    /// Moves a tab past `from..=to` of `epoch`, which must start exactly where it is.
    fn advance(
        &mut self,
        user: &Key,
        r: TabRef,
        epoch: wsreg::Epoch,
        from: u64,
        to: u64,
        what: &dyn std::fmt::Display,
    ) -> Checked {
        let conn = r.conn;
        let Some(tab) = self.tabs.get_mut(&r.key) else {
            return fail!(
                Invariant::I5,
                "{user} read {what} on c{conn}, a tab it never connected"
            );
        };
        if tab.user != *user {
            return fail!(
                Invariant::I1,
                "{user} read {what} on c{conn}, {}'s tab",
                tab.user
            );
        }
        if epoch != tab.epoch {
            return fail!(
                Invariant::I7,
                "{user}'s tab c{conn} reads stream {} but received {what} of stream {epoch}",
                tab.epoch
            );
        }
        tab.items += 1;
        match place(tab.next, from) {
            Place::InOrder => {}
            Place::Ahead { .. } => return fail!(Invariant::I8, "{user}'s tab c{conn} received {what} at {epoch}#{from} right after #{}: #{}..#{} were skipped without a gap marker",
                    tab.next - 1,
                    tab.next,
                    from - 1),
            Place::Behind => return fail!(
                Invariant::I7,
                "{user}'s tab c{conn} received {what} at {epoch}#{from} after #{}: {}",
                tab.next - 1,
                if from + 1 == tab.next {
                    "a duplicate"
                } else {
                    "out of order"
                }
            ),
        }
        tab.next = to + 1;
        Ok(())
    }

    /// Fan-out, seen from the clients: every tab of a user that stayed open while a sender was
    /// told about a message must be on the stream that message went to. A tab on another
    /// stream of the same user never reads it and is never told (no gap marker names another
    /// stream's positions): the user's tabs have been split between two managers, whatever the
    /// backend reports about itself. Checked once everything has healed, so a tab a restart
    /// dropped is no longer open. The lowest such tab, in a user's words.
    pub(crate) fn split_stream(&self) -> Checked {
        self.split_tab().map_or(Ok(()), |(_, _, f)| Err(f))
    }

    /// Whether `tab` is live on a stream while its user's senders were told of another one
    /// after it opened.
    pub(super) fn split(&self, tab: &TabModel) -> bool {
        self.sent_last
            .get(&tab.user)
            .is_some_and(|sends| self.split_from(tab, sends).is_some())
    }

    fn split_from<'a>(
        &self,
        tab: &TabModel,
        sends: &'a BTreeMap<wsreg::Epoch, u64>,
    ) -> Option<(&'a wsreg::Epoch, &'a u64)> {
        sends
            .iter()
            .find(|(&epoch, &step)| tab.live && epoch != tab.epoch && step > tab.opened)
    }

    /// The first tab split from its user's stream, as a finding on it (its number and user).
    pub(crate) fn split_tab(&self) -> Option<(TabRef, Key, Failed)> {
        self.tabs.iter().find_map(|(&key, tab)| {
            let f = self.split_tab_of(key, tab)?;
            Some((
                TabRef {
                    key,
                    conn: tab.conn,
                },
                tab.user.clone(),
                f,
            ))
        })
    }

    /// `tab`'s split from its user's stream, as a finding, if it is split.
    pub(super) fn split_tab_of(&self, _key: u64, tab: &TabModel) -> Option<Failed> {
        let conn = tab.conn;
        let sends = self.sent_last.get(&tab.user)?;
        let (epoch, _) = self.split_from(tab, sends)?;
        let split: Checked = fail!(Invariant::I2, "{}'s tab c{conn} reads stream {} while its user's messages were also sent on stream {epoch} after it opened: the user's tabs are split between two streams (two managers), and this one never sees the other's messages",
                tab.user, tab.epoch);
        split.err()
    }
}
