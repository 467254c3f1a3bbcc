//! A [`Node`](crate::Node)'s managers mirror the streams a shared store keeps: the store numbers
//! every message, and a manager's history holds the tail of its user's stream as the node
//! learned it, by reading the store ([`UserManager::load`]) or from its live subscription
//! ([`UserManager::offer`]). Delivery, cursors, gap markers and modes are the same code as a
//! manager that keeps its own stream.
//!
//! A mirror is contiguous like any history. A live message ahead of the mirror's head waits
//! (in `pending`) while the node reads what came between; one at or behind it is a late
//! duplicate and is skipped; one of another epoch means the store lost the stream, and the
//! node reads it again. A read that finds another epoch than the one a loaded mirror serves
//! its connections from is not applied: the node closes the user's connections instead (their
//! clients resume, and are told `epoch_changed` where the new epoch begins, as after any
//! loss), so a connection only ever reads one epoch.

use std::collections::BTreeMap;

use super::{wake_all, State, UserManager};
use crate::event::Payload;
use crate::store::Range;
use crate::stream::{Epoch, Position};

/// What a mirror keeps beside its history.
#[derive(Default)]
pub(crate) struct MirrorState {
    /// Whether the store was read once (connections are only added after).
    pub(crate) loaded: bool,
    /// Live messages that arrived before the load, or ahead of the head.
    pending: BTreeMap<u64, (Epoch, Payload)>,
}

/// What the node does after offering a live message to a mirror.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Offered {
    /// Mirrored (or kept until the mirror is loaded); nothing to do.
    Taken,
    /// Already mirrored: a late duplicate, skipped.
    Stale,
    /// Ahead of the head: the node reads what came between.
    Ahead,
    /// Of another epoch than the mirror's: the node reads the stream again.
    Foreign,
}

impl UserManager {
    /// Whether the mirror was loaded, its epoch and head.
    pub(crate) fn mirrored(&self) -> (bool, Position) {
        let st = self.inner.lock();
        let loaded = st.mirror.as_ref().is_some_and(|m| m.loaded);
        let h = &st.history;
        (loaded, Position::new(h.epoch(), h.head()))
    }

    /// Serialises a node's reads of the store for this mirror, so that an older read is never
    /// applied after a newer one.
    pub(crate) async fn sync_guard(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.inner.syncing {
            Some(lock) => Some(lock.lock().await),
            None => None,
        }
    }

    /// Applies what a read of the store found: a first load starts the mirror at the read's
    /// epoch; a read whose oldest retained message is past the head skips what the store let
    /// go. Returns `false`, applying nothing, when a loaded mirror's stream is gone (the read
    /// found another epoch): the node then closes the user's connections.
    pub(crate) fn load(&self, range: Range) -> bool {
        let inner = &self.inner;
        let mut st = inner.lock();
        if st.closed || st.mirror.is_none() {
            return true;
        }
        let loaded = st.mirror.as_ref().is_some_and(|m| m.loaded);
        let (epoch, head) = (st.history.epoch(), st.history.head());
        if loaded && range.epoch != epoch {
            return false;
        }
        if !loaded {
            let start = range.first.saturating_sub(1);
            inner.restart(&mut st, range.epoch, start);
        } else if range.first > head + 1 {
            // The store let go of messages this mirror never held; connections that had not
            // read up to them get a `trimmed` gap marker from their cursor.
            inner.restart(&mut st, epoch, range.first - 1);
        }
        for (seq, payload) in range.entries {
            let head = st.history.head();
            if seq == head + 1 {
                inner.take(&mut st, payload);
            } else if seq > head + 1 {
                // A read is contiguous; should one not be, what it skipped is let go openly.
                let epoch = st.history.epoch();
                inner.restart(&mut st, epoch, seq - 1);
                inner.take(&mut st, payload);
            }
        }
        if let Some(m) = st.mirror.as_mut() {
            m.loaded = true;
        }
        inner.take_pending(&mut st);
        wake_all(&st);
        true
    }

    /// Offers a message the node's subscription delivered (or the node itself appended).
    pub(crate) fn offer(&self, at: Position, payload: Payload) -> Offered {
        let inner = &self.inner;
        let mut st = inner.lock();
        let capacity = inner.core.config().history_capacity.max(1);
        let (epoch, head) = (st.history.epoch(), st.history.head());
        if st.closed {
            return Offered::Stale;
        }
        let Some(m) = st.mirror.as_mut() else {
            return Offered::Stale;
        };
        if !m.loaded {
            keep(m, at, payload, capacity);
            return Offered::Taken;
        }
        if at.epoch != epoch {
            return Offered::Foreign;
        }
        if at.seq <= head {
            return Offered::Stale;
        }
        if at.seq > head + 1 {
            keep(m, at, payload, capacity);
            return Offered::Ahead;
        }
        inner.take(&mut st, payload);
        inner.take_pending(&mut st);
        wake_all(&st);
        Offered::Taken
    }
}

/// Keeps a live message for later; past twice the history's capacity the oldest kept are let
/// go (the node's read of the store brings them back, or says they are gone).
fn keep(m: &mut MirrorState, at: Position, payload: Payload, capacity: usize) {
    m.pending.insert(at.seq, (at.epoch, payload));
    while m.pending.len() > 2 * capacity {
        m.pending.pop_first();
    }
}

impl super::ManagerInner {
    /// Mirrors the message numbered `head + 1` of the mirror's epoch.
    fn take(&self, st: &mut State, payload: Payload) {
        if let Payload::Agent(event) = &payload {
            // Recorded for fresh connects (they start at the oldest run in flight); the
            // sender's node already checked the order.
            let _ = st.lifecycles.admit(event, st.history.head() + 1);
        }
        self.accept(st, payload);
    }

    /// Mirrors the kept live messages that now continue the head; drops those it passed.
    fn take_pending(&self, st: &mut State) {
        loop {
            let (epoch, head) = (st.history.epoch(), st.history.head());
            let Some(m) = st.mirror.as_mut() else { return };
            let Some((&seq, (e, _))) = m.pending.first_key_value() else {
                return;
            };
            if *e != epoch || seq <= head {
                m.pending.pop_first();
                continue;
            }
            if seq != head + 1 {
                return;
            }
            let Some((_, (_, payload))) = m.pending.pop_first() else {
                return;
            };
            self.take(st, payload);
        }
    }

    /// Lets go of the whole history and continues `epoch` after `head`.
    fn restart(&self, st: &mut State, epoch: Epoch, head: u64) {
        let (old_epoch, first, old_head) =
            (st.history.epoch(), st.history.first(), st.history.head());
        let dropped = st.history.restart(epoch, head);
        for _ in 0..dropped {
            self.core.message_released();
        }
        if dropped > 0 {
            self.trimmed(old_epoch, first, old_head);
        }
        if epoch != old_epoch {
            st.lifecycles = Default::default();
        }
    }
}
