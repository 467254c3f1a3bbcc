//! [`UserManager`]: one user's connections, queues, lifecycle state and mode.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use tokio::sync::Notify;

use crate::connection::ConnectionId;
use crate::error::Error;
use crate::event::{AgentEvent, Envelope, Lifecycles, Payload};
use crate::identity::UserKey;
use crate::mode::Mode;
use crate::observer::{CloseReason, DropReason, ManagerId, Observation};
use crate::registry::{Core, RegistryInner};
use crate::transport::Sink;
use crate::view::ManagerView;

/// One user's connection manager. Obtained only from a [`Registry`](crate::Registry), which keeps
/// exactly one per user; cloning the handle shares the same manager.
///
/// All state sits behind one lock that is never held across an `.await`; every check and the
/// change it guards happen under it, so limits and lifecycle rules hold under any interleaving.
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
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) closed: bool,
    mode: Mode,
    conns: BTreeMap<ConnectionId, Slot>,
    recovery: VecDeque<Envelope>,
    lifecycles: Lifecycles,
    next_seq: u64,
    /// Bumped whenever the manager becomes idle or busy; a reap timer only fires for its epoch.
    pub(crate) idle_epoch: u64,
}

struct Slot {
    queue: VecDeque<Envelope>,
    /// The highest sequence number ever queued here; a connection only ever moves forward.
    last_seq: u64,
    signals: Arc<Signals>,
}

/// How a connection's writer is woken: a message was queued, or the connection was removed.
#[derive(Default)]
struct Signals {
    wake: Notify,
    closed: Notify,
}

impl UserManager {
    pub(crate) fn new(
        id: ManagerId,
        key: UserKey,
        core: Arc<Core>,
        registry: Weak<RegistryInner>,
    ) -> Self {
        Self {
            inner: Arc::new(ManagerInner {
                id,
                key,
                core,
                registry,
                state: Mutex::new(State::default()),
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

    /// Adds a connection whose messages go to `sink`. The user's connection limit and the
    /// registry's are checked under the lock that inserts. If the user had no live connection,
    /// its recovery queue is replayed to this one first, in order, before anything newer.
    ///
    /// Spawns the connection's writer task, so it must be called inside a tokio runtime.
    pub fn add_connection(&self, sink: impl Sink) -> Result<ConnectionId, Error> {
        let inner = &self.inner;
        let (id, signals) = {
            let mut st = inner.lock();
            inner.add_locked(&mut st)?
        };
        tokio::spawn(write_loop(Arc::clone(inner), id, Box::new(sink), signals));
        Ok(id)
    }

    /// Removes exactly this connection. Messages still queued for it move to the recovery queue
    /// if it was the user's last connection (to the newest remaining one in `Isolated` mode), and
    /// are dropped with reason `connection_closed` otherwise, since the other connections got them.
    pub fn remove_connection(&self, id: ConnectionId) -> Result<(), Error> {
        let inner = &self.inner;
        let idle_epoch = {
            let mut st = inner.lock();
            if !st.conns.contains_key(&id) {
                return Err(Error::UnknownConnection {
                    user: inner.key.to_string(),
                    conn: id.to_string(),
                });
            }
            inner.detach(&mut st, id, CloseReason::Closed, None)
        };
        inner.schedule_reap(idle_epoch);
        Ok(())
    }

    /// Emits one agent event to this user. The run's lifecycle is checked first: an event out of
    /// order is a [`Error::Lifecycle`] and nothing is sent. Returns the message's sequence number.
    pub fn emit(&self, event: AgentEvent) -> Result<u64, Error> {
        let mut st = self.inner.lock();
        self.inner.check_open(&st)?;
        st.lifecycles.admit(&event)?;
        Ok(self.inner.accept(&mut st, Payload::Agent(event)))
    }

    /// Sends a plain text message to this user. Returns its sequence number.
    pub fn send_text(&self, text: &str) -> Result<u64, Error> {
        let mut st = self.inner.lock();
        self.inner.check_open(&st)?;
        Ok(self.inner.accept(
            &mut st,
            Payload::Text {
                text: text.to_owned(),
            },
        ))
    }

    /// Changes this user's mode (and only this user's). Leaving `Degraded` flushes the recovery
    /// queue to the live connections, in order.
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
        if from == Mode::Degraded && !st.conns.is_empty() {
            let held = std::mem::take(&mut st.recovery);
            for env in held {
                self.inner.route(&mut st, env, true);
            }
        }
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

impl ManagerInner {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn id(&self) -> ManagerId {
        self.id
    }

    #[inline]
    pub(crate) fn report(&self, observation: Observation<'_>) {
        if let Some(observer) = &self.core.observer {
            observer.observe(&observation);
        }
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
        ManagerView {
            user: self.key.clone(),
            manager: self.id,
            mode: st.mode,
            connections: st.conns.iter().map(|(c, s)| (*c, s.queue.len())).collect(),
            recovery: st.recovery.len(),
            open_runs: st.lifecycles.open_runs(),
            accepted: st.next_seq,
        }
    }

    fn add_locked(&self, st: &mut State) -> Result<(ConnectionId, Arc<Signals>), Error> {
        self.check_open(st)?;
        let config = &self.core.config;
        if st.conns.len() >= config.max_connections_per_user {
            return Err(Error::UserConnectionLimit {
                user: self.key.to_string(),
                max: config.max_connections_per_user,
            });
        }
        self.core
            .total_connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < config.max_connections).then_some(n + 1)
            })
            .map_err(|_| Error::ConnectionLimit {
                max: config.max_connections,
            })?;
        let id = self.core.mint_connection();
        let was_idle = st.conns.is_empty();
        let slot = Slot {
            queue: VecDeque::new(),
            last_seq: 0,
            signals: Arc::default(),
        };
        let signals = Arc::clone(&slot.signals);
        st.conns.insert(id, slot);
        if was_idle {
            st.idle_epoch += 1;
        }
        self.report(Observation::ConnectionAdded {
            user: &self.key,
            manager: self.id,
            conn: id,
            live: st.conns.len(),
        });
        if was_idle && st.mode != Mode::Degraded {
            let held = std::mem::take(&mut st.recovery);
            for env in held {
                self.enqueue(st, id, env, true);
            }
        }
        Ok((id, signals))
    }

    /// Numbers a message and routes it by mode.
    fn accept(&self, st: &mut State, payload: Payload) -> u64 {
        st.next_seq += 1;
        let seq = st.next_seq;
        let env = Envelope::new(self.key.clone(), seq, payload);
        self.report(Observation::Accepted {
            user: &self.key,
            manager: self.id,
            seq,
            payload: env.payload(),
        });
        self.route(st, env, false);
        seq
    }

    fn route(&self, st: &mut State, env: Envelope, replay: bool) {
        let is_text = matches!(env.payload(), Payload::Text { .. });
        match st.mode {
            Mode::Degraded => self.buffer(st, env),
            Mode::Emergency if is_text => self.drop_msg(None, env.seq(), DropReason::Suppressed),
            _ if st.conns.is_empty() => self.buffer(st, env),
            Mode::Isolated => {
                let newest = *st.conns.keys().next_back().expect("checked non-empty");
                self.enqueue(st, newest, env, replay);
            }
            _ => {
                for (&conn, slot) in st.conns.iter_mut() {
                    self.enqueue_slot(conn, slot, env.clone(), replay);
                }
            }
        }
    }

    /// Queues `env` for `conn`. Live messages respect the outbound capacity; moved ones
    /// (`replay`: from the recovery queue or a closed connection) are not new, so capacity does
    /// not refuse them, but one older than what `conn` was already given is dropped (reason
    /// `connection_closed`) rather than delivered out of order.
    fn enqueue(&self, st: &mut State, conn: ConnectionId, env: Envelope, replay: bool) {
        if let Some(slot) = st.conns.get_mut(&conn) {
            self.enqueue_slot(conn, slot, env, replay);
        }
    }

    fn enqueue_slot(&self, conn: ConnectionId, slot: &mut Slot, env: Envelope, replay: bool) {
        let cap = self.core.config.outbound_capacity;
        let seq = env.seq();
        if replay && seq <= slot.last_seq {
            self.drop_msg(None, seq, DropReason::ConnectionClosed);
            return;
        }
        if !replay && slot.queue.len() >= cap {
            self.drop_msg(Some(conn), seq, DropReason::QueueFull);
            return;
        }
        slot.last_seq = seq;
        slot.queue.push_back(env);
        slot.signals.wake.notify_one();
        self.report(Observation::Enqueued {
            user: &self.key,
            manager: self.id,
            conn,
            seq,
            replay,
        });
    }

    fn buffer(&self, st: &mut State, env: Envelope) {
        if st.recovery.len() >= self.core.config.recovery_capacity {
            self.drop_msg(None, env.seq(), DropReason::RecoveryFull);
            return;
        }
        let seq = env.seq();
        st.recovery.push_back(env);
        self.report(Observation::Buffered {
            user: &self.key,
            manager: self.id,
            seq,
        });
    }

    /// Holds messages taken back from closed connections. The recovery queue stays sorted by
    /// sequence number and holds each message once, even when a fanned-out message comes back
    /// from several tabs; over capacity, the newest are dropped, so a reconnect still gets a
    /// gap-free prefix.
    fn hold_in_order(&self, st: &mut State, taken_back: Vec<Envelope>) {
        for env in taken_back {
            let seq = env.seq();
            if let Err(at) = st.recovery.binary_search_by_key(&seq, Envelope::seq) {
                st.recovery.insert(at, env);
            }
            self.report(Observation::Buffered {
                user: &self.key,
                manager: self.id,
                seq,
            });
        }
        while st.recovery.len() > self.core.config.recovery_capacity {
            let evicted = st.recovery.pop_back().expect("over capacity");
            self.drop_msg(None, evicted.seq(), DropReason::RecoveryFull);
        }
    }

    fn drop_msg(&self, conn: Option<ConnectionId>, seq: u64, reason: DropReason) {
        self.report(Observation::Dropped {
            user: &self.key,
            manager: self.id,
            conn,
            seq,
            reason,
        });
    }

    /// Removes one connection and settles what it had not sent. Returns the idle epoch to reap
    /// at if the user is now without connections.
    pub(crate) fn detach(
        &self,
        st: &mut State,
        conn: ConnectionId,
        reason: CloseReason,
        unsent: Option<Envelope>,
    ) -> Option<u64> {
        let slot = st.conns.remove(&conn)?;
        self.core.total_connections.fetch_sub(1, Ordering::AcqRel);
        slot.signals.closed.notify_one();
        self.report(Observation::ConnectionRemoved {
            user: &self.key,
            manager: self.id,
            conn,
            reason,
            live: st.conns.len(),
        });
        let leftovers: Vec<Envelope> = unsent.into_iter().chain(slot.queue).collect();
        for env in &leftovers {
            self.requeued(conn, env.seq());
        }
        if st.conns.is_empty() {
            st.idle_epoch += 1;
            if reason == CloseReason::Shutdown {
                for env in leftovers {
                    self.drop_msg(None, env.seq(), DropReason::ManagerRemoved);
                }
            } else {
                self.hold_in_order(st, leftovers);
            }
            return Some(st.idle_epoch);
        }
        if st.mode == Mode::Isolated {
            let newest = *st.conns.keys().next_back().expect("non-empty");
            for env in leftovers {
                self.enqueue(st, newest, env, true);
            }
        } else {
            for env in leftovers {
                self.drop_msg(None, env.seq(), DropReason::ConnectionClosed);
            }
        }
        None
    }

    fn requeued(&self, conn: ConnectionId, seq: u64) {
        self.report(Observation::Requeued {
            user: &self.key,
            manager: self.id,
            conn,
            seq,
        });
    }

    /// A message whose send was cut short because its connection closed meanwhile.
    fn settle_orphan(&self, st: &mut State, conn: ConnectionId, env: Envelope) {
        self.requeued(conn, env.seq());
        if st.conns.is_empty() && !st.closed {
            self.hold_in_order(st, vec![env]);
        } else {
            let reason = if st.closed {
                DropReason::ManagerRemoved
            } else {
                DropReason::ConnectionClosed
            };
            self.drop_msg(None, env.seq(), reason);
        }
    }

    /// Empties the manager for removal: every connection closed, every held message dropped.
    pub(crate) fn close_locked(&self, st: &mut State, reason: CloseReason) {
        let conns: Vec<ConnectionId> = st.conns.keys().copied().collect();
        for conn in conns {
            self.detach(st, conn, reason, None);
        }
        st.closed = true;
        for env in std::mem::take(&mut st.recovery) {
            self.drop_msg(None, env.seq(), DropReason::ManagerRemoved);
        }
    }

    pub(crate) fn key(&self) -> &UserKey {
        &self.key
    }

    /// After the idle TTL, asks the registry to reap this manager if it is still idle at `epoch`.
    pub(crate) fn schedule_reap(self: &Arc<Self>, epoch: Option<u64>) {
        let Some(epoch) = epoch else { return };
        let registry = Weak::clone(&self.registry);
        let ttl = self.core.config.idle_ttl;
        let key = self.key.clone();
        let id = self.id;
        tokio::spawn(async move {
            tokio::time::sleep(ttl).await;
            if let Some(registry) = registry.upgrade() {
                registry.reap_if_idle(&key, id, epoch);
            }
        });
    }
}

/// One connection's writer: takes messages off its queue in order and hands them to the sink,
/// one at a time. Ends when the connection is removed or its sink fails.
async fn write_loop(
    mgr: Arc<ManagerInner>,
    conn: ConnectionId,
    mut sink: Box<dyn Sink>,
    signals: Arc<Signals>,
) {
    let (wake, closed) = (&signals.wake, &signals.closed);
    loop {
        let next = {
            let mut st = mgr.lock();
            match st.conns.get_mut(&conn) {
                None => return,
                Some(slot) => slot.queue.pop_front(),
            }
        };
        let Some(env) = next else {
            // `biased`: tokio's select! otherwise starts at a random branch drawn from a
            // process-global seed, which would make the simulator's schedules unreplayable.
            tokio::select! {
                biased;
                _ = wake.notified() => {}
                _ = closed.notified() => {}
            }
            continue;
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
                        seq: env.seq(),
                    });
                    continue;
                }
                Some(Err(_)) if st.conns.contains_key(&conn) => {
                    mgr.detach(&mut st, conn, CloseReason::TransportFailed, Some(env))
                }
                _ => {
                    mgr.settle_orphan(&mut st, conn, env);
                    None
                }
            }
        };
        mgr.schedule_reap(reap);
        return;
    }
}
