//! [`UserManager`]: one user's connections, stream, lifecycle state and mode.
//!
//! Delivery reads from the history: every connection has a cursor into its user's stream, and
//! its writer task hands the sink one item at a time, the message at the cursor or, when the
//! history has let go of it, one gap marker for everything it let go of. Nothing is queued per
//! connection, so a slow reader costs a cursor, never a drop.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::connection::{ConnectionHandle, ConnectionId};
use crate::core::Core;
use crate::error::Error;
use crate::event::{AgentEvent, Envelope, Lifecycles, Payload};
use crate::identity::UserKey;
use crate::lock_order::{self, ManagerGuard};
use crate::mode::Mode;
use crate::observer::RemoveReason;
use crate::observer::{CloseReason, ManagerId, Observation};
use crate::registry::RegistryInner;
use crate::stream::{Epoch, GapReason, History, Position};
use crate::transport::Sink;
use crate::view::{ConnectionView, ManagerView};

mod mirror;
pub(crate) use mirror::Offered;

/// One user's connection manager. Obtained only from a [`Registry`](crate::Registry), which keeps
/// exactly one per user; cloning the handle shares the same manager.
///
/// All state sits behind one lock that is never held across an `.await`; every check and the
/// change it guards happen under it, so limits and lifecycle rules hold under any interleaving.
///
/// Every accepted message is numbered in the user's stream (see [`Position`]) and kept in a
/// bounded history; each connection reads the stream from its own cursor, so what one
/// connection misses never depends on another.
#[derive(Clone)]
pub struct UserManager {
    inner: Arc<ManagerInner>,
}

impl std::fmt::Debug for UserManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserManager")
            .field("user", &self.inner.key)
            .field("id", &self.inner.id)
            .finish()
    }
}

pub(crate) struct ManagerInner {
    id: ManagerId,
    key: UserKey,
    core: Arc<Core>,
    registry: Weak<RegistryInner>,
    state: Mutex<State>,
    /// A mirror's reads of its store, one at a time (see [`mirror`]).
    syncing: Option<Box<tokio::sync::Mutex<()>>>,
}

pub(crate) struct State {
    closed: bool,
    mode: Mode,
    conns: BTreeMap<ConnectionId, Slot>,
    history: History,
    lifecycles: Lifecycles,
    /// Bumped whenever the manager becomes idle or busy; a reap timer only fires for its
    /// generation.
    idle_generation: u64,
    /// When the manager last became idle ([`Core::idle_stamp`]); meaningless while it has
    /// connections.
    idle_since: u64,
    /// A mirror's state (a [`Node`](crate::Node)'s managers); `None` for a manager that keeps
    /// its own stream.
    mirror: Option<Box<mirror::MirrorState>>,
}

/// One connection's place in the stream.
struct Slot {
    /// The number of the next message to hand its sink.
    next: u64,
    /// Handed over before anything else: the gap marker of a resume from another epoch.
    greeting: Option<Envelope>,
    signals: Arc<Signals>,
}

/// How a connection's writer is woken: the stream grew or the mode changed, or the connection
/// was removed.
#[derive(Default)]
struct Signals {
    wake: Notify,
    closed: Notify,
}

/// What a connection's writer does next.
enum Pick {
    /// The connection is gone.
    Gone,
    /// Nothing to send now (caught up, or paused by the mode).
    Wait,
    /// Hand this to the sink.
    Send(Envelope),
}

impl UserManager {
    pub(crate) fn new(
        id: ManagerId,
        key: UserKey,
        core: Arc<Core>,
        registry: Weak<RegistryInner>,
    ) -> Self {
        let epoch = Epoch::new(core.boot(), id.get());
        let state = State {
            closed: false,
            mode: Mode::default(),
            conns: BTreeMap::new(),
            history: History::new(epoch),
            lifecycles: Lifecycles::default(),
            idle_generation: 0,
            idle_since: core.idle_stamp(),
            mirror: core.mirror().then(Box::default),
        };
        let syncing = core.mirror().then(Box::default);
        Self {
            inner: Arc::new(ManagerInner {
                id,
                key,
                core,
                registry,
                state: Mutex::new(state),
                syncing,
            }),
        }
    }

    /// The user this manager serves.
    pub fn key(&self) -> &UserKey {
        &self.inner.key
    }

    /// This manager's identity within its registry.
    pub fn id(&self) -> ManagerId {
        self.inner.id
    }

    /// Its stream's epoch (a new manager of the same user has another).
    pub fn epoch(&self) -> Epoch {
        self.inner.lock().history.epoch()
    }

    /// Whether `self` and `other` are the same manager instance.
    pub fn same(&self, other: &UserManager) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        self.inner.lock().mode
    }

    /// How many live connections the user has.
    pub fn connection_count(&self) -> usize {
        self.inner.lock().conns.len()
    }

    /// Whether the manager was reaped or shut down (it then refuses every call).
    pub fn is_closed(&self) -> bool {
        self.inner.lock().closed
    }

    /// Adds a connection whose stream goes to `sink`. The user's connection limit and the
    /// registry's are checked under the lock that inserts.
    ///
    /// - `resume: Some(p)`, the last position the client saw: the connection gets every message
    ///   after `p` that the history still holds, in order and once, then live ones. What it can
    ///   no longer get comes first as a gap marker (reason `trimmed`, or `epoch_changed` when
    ///   `p` belongs to another epoch; the connection then reads this epoch from its oldest
    ///   retained message). A position ahead of the stream is refused ([`Error::ResumeAhead`]).
    /// - `resume: None`, a fresh connect: the connection starts at the oldest agent run still in
    ///   flight, so a tab that joins mid-run sees the whole run, or at live messages when no run
    ///   is in flight.
    ///
    /// Spawns the connection's writer task, so it must be called inside a tokio runtime.
    pub fn add_connection(
        &self,
        sink: impl Sink,
        resume: Option<Position>,
    ) -> Result<ConnectionHandle, Error> {
        let inner = &self.inner;
        let (handle, signals) = {
            let mut st = inner.lock();
            inner.add_locked(&mut st, self, resume)?
        };
        tokio::spawn(write_loop(
            Arc::clone(inner),
            handle.id(),
            Box::new(sink),
            signals,
        ));
        Ok(handle)
    }

    /// Removes exactly this connection. The stream it had not sent yet stays in the history,
    /// for the client to resume from its last position.
    pub fn remove_connection(&self, id: ConnectionId) -> Result<(), Error> {
        let inner = &self.inner;
        let generation = {
            let mut st = inner.lock();
            if !st.conns.contains_key(&id) {
                return Err(Error::UnknownConnection {
                    user: inner.key.to_string(),
                    conn: id.to_string(),
                });
            }
            inner.detach(&mut st, id, CloseReason::Closed)
        };
        inner.schedule_reap(generation);
        Ok(())
    }

    /// Emits one agent event to this user. The run's lifecycle is checked first: an event out of
    /// order is a [`Error::Lifecycle`] and nothing is sent. Returns the event's position.
    pub fn emit(&self, event: AgentEvent) -> Result<Position, Error> {
        let mut st = self.inner.lock();
        self.inner.check_open(&st)?;
        let seq = st.history.head() + 1;
        st.lifecycles.admit(&event, seq)?;
        Ok(self.inner.accept(&mut st, Payload::Agent(event)))
    }

    /// Sends a plain text message to this user. Returns its position. In
    /// [`Mode::Emergency`] texts are refused ([`Error::Suppressed`]) and nothing is sent.
    pub fn send_text(&self, text: &str) -> Result<Position, Error> {
        let mut st = self.inner.lock();
        self.inner.check_open(&st)?;
        if st.mode == Mode::Emergency {
            return Err(Error::Suppressed {
                user: self.inner.key.to_string(),
                mode: st.mode,
            });
        }
        let payload = Payload::Text {
            text: text.to_owned(),
        };
        Ok(self.inner.accept(&mut st, payload))
    }

    /// Changes this user's mode (and only this user's). Connections the mode paused read on
    /// from where they stopped.
    pub fn set_mode(&self, mode: Mode) -> Result<(), Error> {
        let mut st = self.inner.lock();
        self.inner.check_open(&st)?;
        let from = st.mode;
        if from == mode {
            return Ok(());
        }
        st.mode = mode;
        self.inner.report(Observation::ModeChanged {
            user: &self.inner.key,
            manager: self.inner.id,
            from,
            to: mode,
        });
        wake_all(&st);
        Ok(())
    }

    /// A read-only picture of this manager.
    pub fn view(&self) -> ManagerView {
        self.inner.view(&self.inner.lock())
    }

    pub(crate) fn inner(&self) -> &Arc<ManagerInner> {
        &self.inner
    }
}

fn wake_all(st: &State) {
    for slot in st.conns.values() {
        slot.signals.wake.notify_one();
    }
}

impl ManagerInner {
    /// This manager's lock (after the registry's, if both: see [`lock_order`]).
    pub(crate) fn lock(&self) -> ManagerGuard<'_, State> {
        lock_order::manager(&self.state)
    }

    #[inline]
    fn report(&self, observation: Observation<'_>) {
        self.core.report(observation);
    }

    fn check_open(&self, st: &State) -> Result<(), Error> {
        if st.closed {
            return Err(Error::ManagerClosed {
                user: self.key.to_string(),
            });
        }
        Ok(())
    }

    pub(crate) fn view(&self, st: &State) -> ManagerView {
        let head = st.history.head();
        ManagerView {
            user: self.key.clone(),
            manager: self.id,
            epoch: st.history.epoch(),
            mode: st.mode,
            connections: st
                .conns
                .iter()
                .map(|(&id, slot)| ConnectionView {
                    id,
                    backlog: (head + 1).saturating_sub(slot.next) as usize
                        + usize::from(slot.greeting.is_some()),
                    paused: paused(st, id),
                })
                .collect(),
            history: st.history.len(),
            open_runs: st.lifecycles.open_runs(),
            accepted: head,
        }
    }

    fn add_locked(
        &self,
        st: &mut State,
        manager: &UserManager,
        resume: Option<Position>,
    ) -> Result<(ConnectionHandle, Arc<Signals>), Error> {
        self.check_open(st)?;
        if st.mirror.as_ref().is_some_and(|m| !m.loaded) {
            // A node loads a mirror before it adds to it; one reaped and made again meanwhile
            // is refused as closed, and the node's connect tries again.
            return Err(Error::ManagerClosed {
                user: self.key.to_string(),
            });
        }
        let config = self.core.config();
        if st.conns.len() >= config.max_connections_per_user {
            return Err(Error::UserConnectionLimit {
                user: self.key.to_string(),
                max: config.max_connections_per_user,
            });
        }
        self.trim(st, Instant::now());
        let h = &st.history;
        let (epoch, head, first) = (h.epoch(), h.head(), h.first());
        // Where the connection's stream continues from, its first unsent number, and whether
        // a resume position was honoured in full.
        let (from, next, greeting, recovered) = match resume {
            Some(p) if p.epoch == epoch => {
                if p.seq > head {
                    return Err(Error::ResumeAhead {
                        user: self.key.to_string(),
                        asked: p,
                        head: Position::new(epoch, head),
                    });
                }
                (p, p.seq + 1, None, p.seq + 1 >= first)
            }
            Some(_) => {
                let gap = Payload::Gap {
                    from: 1,
                    to: first - 1,
                    reason: GapReason::EpochChanged,
                };
                let marker = Envelope::new(self.key.clone(), Position::new(epoch, first - 1), gap);
                (Position::new(epoch, 0), first, Some(marker), false)
            }
            None => {
                let next = st.lifecycles.oldest_start().unwrap_or(head + 1);
                (Position::new(epoch, next - 1), next, None, false)
            }
        };
        if !self.core.take_connection_slot() {
            return Err(Error::ConnectionLimit {
                max: config.max_connections,
            });
        }
        let id = self.core.mint_connection();
        let was_idle = st.conns.is_empty();
        let slot = Slot {
            next,
            greeting,
            signals: Arc::default(),
        };
        let signals = Arc::clone(&slot.signals);
        st.conns.insert(id, slot);
        if was_idle {
            st.idle_generation += 1;
        }
        self.report(Observation::ConnectionAdded {
            user: &self.key,
            manager: self.id,
            conn: id,
            live: st.conns.len(),
            from,
        });
        // In isolated mode the new connection is the one that reads; the others pause.
        signals.wake.notify_one();
        let handle = ConnectionHandle {
            manager: manager.clone(),
            id,
            from,
            recovered,
        };
        Ok((handle, signals))
    }

    /// Numbers a message, keeps it in the history and wakes every connection.
    fn accept(&self, st: &mut State, payload: Payload) -> Position {
        let at = st.history.next_position();
        let env = Envelope::new(self.key.clone(), at, payload);
        self.report(Observation::Accepted {
            user: &self.key,
            manager: self.id,
            at,
            payload: env.payload(),
        });
        let now = Instant::now();
        if self.core.histories_full() {
            if let Some(seq) = st.history.pop_oldest() {
                self.core.message_released();
                self.trimmed(st.history.epoch(), seq, seq);
            }
        }
        st.history.push(env, now);
        self.core.message_retained();
        self.trim(st, now);
        wake_all(st);
        at
    }

    /// Lets go of what the history holds beyond its count or its age.
    fn trim(&self, st: &mut State, now: Instant) {
        let config = self.core.config();
        let cutoff = now.checked_sub(config.history_ttl);
        let h = &mut st.history;
        let (mut from, mut to) = (0, 0);
        while h.len() > config.history_capacity || cutoff.is_some_and(|c| h.oldest_before(c)) {
            let Some(seq) = h.pop_oldest() else { break };
            self.core.message_released();
            if from == 0 {
                from = seq;
            }
            to = seq;
        }
        if from > 0 {
            self.trimmed(h.epoch(), from, to);
        }
    }

    fn trimmed(&self, epoch: Epoch, from: u64, to: u64) {
        self.report(Observation::Trimmed {
            user: &self.key,
            manager: self.id,
            epoch,
            from,
            to,
        });
    }

    /// What connection `conn`'s writer hands its sink next.
    fn pick(&self, st: &mut State, conn: ConnectionId) -> Pick {
        if !st.conns.contains_key(&conn) {
            return Pick::Gone;
        }
        let paused = paused(st, conn);
        let h = &st.history;
        let (epoch, head, first) = (h.epoch(), h.head(), h.first());
        let Some(slot) = st.conns.get_mut(&conn) else {
            return Pick::Gone;
        };
        if let Some(greeting) = slot.greeting.take() {
            return Pick::Send(greeting);
        }
        if paused || slot.next > head {
            return Pick::Wait;
        }
        if slot.next < first {
            let gap = Payload::Gap {
                from: slot.next,
                to: first - 1,
                reason: GapReason::Trimmed,
            };
            slot.next = first;
            let at = Position::new(epoch, first - 1);
            return Pick::Send(Envelope::new(self.key.clone(), at, gap));
        }
        let env = h.get(slot.next).cloned().expect("first <= next <= head");
        slot.next += 1;
        Pick::Send(env)
    }

    /// Removes one connection. Returns the idle generation to reap at if the user is now
    /// without connections.
    pub(crate) fn detach(
        &self,
        st: &mut State,
        conn: ConnectionId,
        reason: CloseReason,
    ) -> Option<u64> {
        let slot = st.conns.remove(&conn)?;
        self.core.release_connection_slot();
        slot.signals.closed.notify_one();
        self.report(Observation::ConnectionRemoved {
            user: &self.key,
            manager: self.id,
            conn,
            reason,
            live: st.conns.len(),
        });
        if st.conns.is_empty() {
            st.idle_generation += 1;
            st.idle_since = self.core.idle_stamp();
            return Some(st.idle_generation);
        }
        // In isolated mode another connection may now be the newest, and read.
        wake_all(st);
        None
    }

    /// Removes the manager if it is still idle at `generation` (no connection came and went
    /// since the reap was scheduled) and not yet closed; says whether it did. Called by the
    /// registry under its lock.
    pub(crate) fn remove_if_idle(&self, generation: u64) -> bool {
        let mut st = self.lock();
        if st.idle_generation != generation || st.closed {
            return false;
        }
        self.close_and_report(&mut st, RemoveReason::Idle);
        true
    }

    /// When the manager became idle, if it is idle (open, with no connection).
    pub(crate) fn idle_since(&self) -> Option<u64> {
        let st = self.lock();
        (st.conns.is_empty() && !st.closed).then_some(st.idle_since)
    }

    /// Removes the manager if it is idle now (open, with no connection); says whether it did.
    /// Called by the registry under its lock, to make room for a new user.
    pub(crate) fn evict_if_idle(&self) -> bool {
        let mut st = self.lock();
        if !st.conns.is_empty() || st.closed {
            return false;
        }
        self.close_and_report(&mut st, RemoveReason::Evicted);
        true
    }

    /// Removes the manager whatever it holds. Called by the registry under its lock.
    pub(crate) fn remove(&self, reason: RemoveReason) {
        let mut st = self.lock();
        self.close_and_report(&mut st, reason);
    }

    fn close_and_report(&self, st: &mut State, reason: RemoveReason) {
        let close = match reason {
            RemoveReason::Shutdown => CloseReason::Shutdown,
            RemoveReason::Idle | RemoveReason::Evicted => CloseReason::Closed,
        };
        self.close_locked(st, close);
        self.report(Observation::ManagerRemoved {
            user: &self.key,
            manager: self.id,
            reason,
        });
    }

    /// Empties the manager for removal: every connection closed, the history let go.
    fn close_locked(&self, st: &mut State, reason: CloseReason) {
        let conns: Vec<ConnectionId> = st.conns.keys().copied().collect();
        for conn in conns {
            self.detach(st, conn, reason);
        }
        st.closed = true;
        while st.history.pop_oldest().is_some() {
            self.core.message_released();
        }
    }

    /// After the idle TTL, asks the registry to reap this manager if it is still idle at
    /// `generation`.
    pub(crate) fn schedule_reap(self: &Arc<Self>, generation: Option<u64>) {
        let Some(generation) = generation else { return };
        let registry = Weak::clone(&self.registry);
        let ttl = self.core.config().idle_ttl;
        let key = self.key.clone();
        let id = self.id;
        tokio::spawn(async move {
            tokio::time::sleep(ttl).await;
            if let Some(registry) = registry.upgrade() {
                registry.reap_if_idle(&key, id, generation);
            }
        });
    }
}

/// Whether the mode holds `conn` back: `Degraded` pauses every connection, `Isolated` all but
/// the newest.
fn paused(st: &State, conn: ConnectionId) -> bool {
    match st.mode {
        Mode::Degraded => true,
        Mode::Isolated => st.conns.keys().next_back() != Some(&conn),
        Mode::Unified | Mode::Emergency => false,
    }
}

/// One connection's writer: hands its sink the stream from the connection's cursor, one item at
/// a time. Ends when the connection is removed or its sink fails.
async fn write_loop(
    mgr: Arc<ManagerInner>,
    conn: ConnectionId,
    mut sink: Box<dyn Sink>,
    signals: Arc<Signals>,
) {
    let (wake, closed) = (&signals.wake, &signals.closed);
    loop {
        let pick = {
            let mut st = mgr.lock();
            mgr.pick(&mut st, conn)
        };
        let env = match pick {
            Pick::Gone => return,
            Pick::Send(env) => env,
            Pick::Wait => {
                // `biased`: tokio's select! otherwise starts at a random branch drawn from a
                // process-global seed, which would make the simulator's schedules unreplayable.
                tokio::select! {
                    biased;
                    _ = wake.notified() => {}
                    _ = closed.notified() => {}
                }
                continue;
            }
        };
        let sent = tokio::select! {
            biased;
            r = sink.send(env.clone()) => Some(r),
            _ = closed.notified() => None,
        };
        let reap = {
            let mut st = mgr.lock();
            match sent {
                Some(Ok(())) => {
                    mgr.report(Observation::Delivered {
                        user: &mgr.key,
                        manager: mgr.id,
                        conn,
                        envelope: &env,
                    });
                    continue;
                }
                Some(Err(_)) => mgr.detach(&mut st, conn, CloseReason::TransportFailed),
                None => None,
            }
        };
        mgr.schedule_reap(reap);
        return;
    }
}
