//! [`Node`]: one server node of several over a shared [`StreamStore`].
//!
//! Each node keeps its own [`Registry`] for the tabs it holds (one manager per user per node,
//! cursors, modes, reaping, limits, all as in one process), and the store keeps every user's
//! stream. A node:
//!
//! - **appends** each message to the store, which numbers it; only then is the sender told its
//!   position, so a sender is never told a message was accepted that was not stored;
//! - **subscribes** to the users it holds tabs for, *before* reading their stream, so nothing
//!   appended between the read and the subscription is missed; live messages that arrive
//!   during the read wait and are merged by position;
//! - **mirrors** each such user's stream into the user's manager: a live message ahead of the
//!   mirror makes it read what came between, one behind is a late duplicate, one of another
//!   epoch (the store lost the stream) makes it close the user's tabs on this node, so their
//!   clients resume into the new epoch and are told (`epoch_changed`) what was lost;
//! - **resumes** a tab from any position any node handed out: a position the mirror has not
//!   reached yet, or of an epoch it does not know, is checked against the store first;
//! - when the store cannot be read, **closes** the user's tabs on this node (as at a shutdown),
//!   so their clients resume later, from their positions, with nothing lost silently;
//! - **counts** each user's connections over every node: a connection holds a lease on one of
//!   the user's slots in the store, renewed while it lives and given back when it closes, so
//!   the per-user limit holds across nodes and a dead node's connections stop counting when
//!   their leases run out; a connection whose lease ran out anyway (the store out of reach
//!   for longer than a lease) is ended, and its client comes back to be counted again.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::backend::{close_core, Probe};
use crate::backend::{connected, probe_key, Backend, BoxFuture, Capabilities, Connected, Handle};
use crate::config::RegistryConfig;
use crate::connection::ConnectionId;
use crate::error::Error;
use crate::event::{AgentEvent, Lifecycles, Payload};
use crate::identity::{UserContext, UserKey};
use crate::manager::{Offered, UserManager};
use crate::mode::Mode;
use crate::observer::{Observation, Observer};
use crate::registry::Registry;
use crate::store::{Bounds, Live, StoreError, StreamStore};
use crate::stream::{Epoch, Position};
use crate::transport::Sink;
use crate::view::RegistryView;

/// A node's configuration: its registry's, and how long the store keeps an idle stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// The node's own registry. Its `history_capacity` and `history_ttl` bound the store's
    /// history too ([`NodeConfig::bounds`]); its `boot` names the epochs this node proposes.
    pub registry: RegistryConfig,
    /// How long the store keeps a stream after its last message (and an append's idempotency
    /// key). Default 24 hours.
    pub stream_ttl: Duration,
    /// How long a connection's lease on one of its user's slots lasts unless renewed (every
    /// third of it): how long a dead node's connections go on counting. Default 30 s.
    pub lease: Duration,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            registry: RegistryConfig::default(),
            stream_ttl: Duration::from_secs(24 * 3600),
            lease: Duration::from_secs(30),
        }
    }
}

impl NodeConfig {
    /// The bounds the store applies: the registry's history capacity and age, and the stream
    /// TTL. Every node of a deployment must use the same.
    pub fn bounds(&self) -> Bounds {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Bounds {
            capacity: self.registry.history_capacity as u64,
            max_age_ms: ms(self.registry.history_ttl),
            ttl_ms: ms(self.stream_ttl),
        }
    }
}

/// One node of several over a shared [`StreamStore`] (see the [module docs](self)). It is a
/// [`Backend`], so the server and the simulator drive it as they drive a [`Registry`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), wsreg::Error> {
/// use std::sync::Arc;
/// use wsreg::store::MemoryStore;
/// use wsreg::{channel_sink, Backend, Node, NodeConfig, UserContext};
///
/// let config = NodeConfig::default();
/// let store = MemoryStore::new(config.bounds());
/// let (a, live_a) = store.attach();
/// let (b, live_b) = store.attach();
/// let node_a = Node::new(config.clone(), Arc::new(a), live_a);
/// let node_b = Node::new(config, Arc::new(b), live_b);
///
/// // A tab on node B; a message sent through node A reaches it, positioned.
/// let alice = UserContext::new("alice")?;
/// let (sink, mut tab) = channel_sink(16);
/// node_b.connect(&alice, Box::new(sink), None).await?;
/// let at = node_a.send_text(&alice, "hello").await?;
/// assert_eq!(tab.recv().await.unwrap().position(), at);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Node {
    inner: Arc<NodeInner>,
}

struct NodeInner {
    registry: Registry,
    store: Arc<dyn StreamStore>,
    config: NodeConfig,
    /// The first half of every epoch this node proposes, and a counter for the second.
    boot: u64,
    proposals: AtomicU64,
    /// Numbers this node's appends for their idempotency keys.
    appends: AtomicU64,
    /// Per user, the runs this node emits for, checked before an append: one append at a
    /// time per user from this node, so a run's events are stored in the order checked.
    senders: Mutex<BTreeMap<UserKey, Arc<tokio::sync::Mutex<Lifecycles>>>>,
    follow: mpsc::UnboundedSender<Follow>,
    /// Each connection's lease on one of its user's slots: its holder name in the store.
    leases: Arc<Leases>,
}

/// The leases this node's connections hold, and the number of the next one.
#[derive(Default)]
struct Leases {
    held: Mutex<BTreeMap<ConnectionId, Lease>>,
    next: AtomicU64,
}

/// One connection's lease on one of its user's slots.
#[derive(Clone)]
struct Lease {
    user: UserKey,
    /// Its holder name in the store.
    holder: String,
    /// When the store lets it go unless renewed, by this node's clock: the time of the call
    /// that took (or last renewed) it, plus the lease (the store counts from the call's time).
    expires: tokio::time::Instant,
}

/// A change to the node's subscriptions (or leases), applied in order by one task.
enum Follow {
    Subscribe(UserKey, oneshot::Sender<Result<(), StoreError>>),
    Unsubscribe(UserKey),
    /// A connection closed: its lease goes back.
    Release(ConnectionId),
}

/// Unsubscribes from a user when the node's registry removes the user's manager, and passes
/// every observation on.
struct Unfollow {
    follow: mpsc::UnboundedSender<Follow>,
    next: Option<Arc<dyn Observer>>,
}

impl Observer for Unfollow {
    fn observe(&self, observation: &Observation<'_>) {
        match observation {
            Observation::ManagerRemoved { user, .. } => {
                let _ = self.follow.send(Follow::Unsubscribe((*user).clone()));
            }
            Observation::ConnectionRemoved { conn, .. } => {
                let _ = self.follow.send(Follow::Release(*conn));
            }
            _ => {}
        }
        if let Some(next) = &self.next {
            next.observe(observation);
        }
    }
}

impl Node {
    /// A node over `store`, whose subscription delivers to `live`. Spawns the node's two tasks
    /// (subscriptions, and the live messages), so it must be called inside a tokio runtime.
    pub fn new(
        config: NodeConfig,
        store: Arc<dyn StreamStore>,
        live: mpsc::UnboundedReceiver<Live>,
    ) -> Self {
        Self::build(config, store, live, None)
    }

    /// A node that reports every state change of its registry to `observer`.
    pub fn with_observer(
        config: NodeConfig,
        store: Arc<dyn StreamStore>,
        live: mpsc::UnboundedReceiver<Live>,
        observer: Arc<dyn Observer>,
    ) -> Self {
        Self::build(config, store, live, Some(observer))
    }

    fn build(
        config: NodeConfig,
        store: Arc<dyn StreamStore>,
        live: mpsc::UnboundedReceiver<Live>,
        observer: Option<Arc<dyn Observer>>,
    ) -> Self {
        let (follow, follows) = mpsc::unbounded_channel();
        let unfollow = Unfollow {
            follow: follow.clone(),
            next: observer,
        };
        let registry = Registry::mirroring(config.registry.clone(), Some(Arc::new(unfollow)));
        // The boot the registry drew (or was given) names this node's proposed epochs.
        let boot = registry.boot();
        let leases = Arc::new(Leases::default());
        let inner = Arc::new(NodeInner {
            registry,
            store,
            config,
            boot,
            proposals: AtomicU64::new(0),
            appends: AtomicU64::new(0),
            senders: Mutex::new(BTreeMap::new()),
            follow,
            leases: Arc::clone(&leases),
        });
        tokio::spawn(follow_loop(Arc::clone(&inner.store), follows, leases));
        tokio::spawn(live_loop(Arc::downgrade(&inner), live));
        tokio::spawn(renew_loop(Arc::downgrade(&inner)));
        Self { inner }
    }

    /// The node's own registry (its managers, for inspection).
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The node's configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.inner.config
    }
}

impl NodeInner {
    /// An epoch for a stream the store does not have yet: this node's boot, and a number no
    /// earlier proposal of this node used.
    fn proposal(&self) -> Epoch {
        Epoch::new(
            self.boot,
            self.proposals.fetch_add(1, Ordering::Relaxed) + 1,
        )
    }

    fn lease_ms(&self) -> u64 {
        u64::try_from(self.config.lease.as_millis()).unwrap_or(u64::MAX)
    }

    fn idempotency_key(&self) -> String {
        let n = self.appends.fetch_add(1, Ordering::Relaxed) + 1;
        format!("{:x}-{n:x}", self.boot)
    }

    async fn subscribe(&self, user: &UserKey) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.follow
            .send(Follow::Subscribe(user.clone(), tx))
            .map_err(|_| Error::ShuttingDown)?;
        match rx.await {
            Ok(result) => result.map_err(Error::from),
            Err(_) => Err(Error::ShuttingDown),
        }
    }

    /// Brings `mgr`'s mirror up to the store's head (reading the whole retained stream if the
    /// mirror is not loaded, or the store's epoch is not the mirror's).
    async fn sync(&self, mgr: &UserManager) -> Result<(), StoreError> {
        let _one_at_a_time = mgr.sync_guard().await;
        let limit = self.config.registry.history_capacity.max(1);
        loop {
            let (loaded, at) = mgr.mirrored();
            let after = if loaded { at.seq } else { 0 };
            let mut range = self
                .store
                .read(mgr.key(), after, limit, self.proposal())
                .await?;
            if loaded && range.epoch != at.epoch && after > 0 {
                range = self
                    .store
                    .read(mgr.key(), 0, limit, self.proposal())
                    .await?;
            }
            let target = range.head;
            let got = range.entries.last().map(|(seq, _)| *seq);
            if !mgr.load(range) {
                // The stream this node's connections read is gone: they are closed, and their
                // clients resume into the new epoch and are told what was lost.
                self.registry.remove_manager(mgr);
                return Ok(());
            }
            if mgr.is_closed() || got.is_none_or(|seq| seq >= target) {
                return Ok(());
            }
        }
    }

    /// Reads `user`'s stream again in the background, trying for about 3 s (a store that
    /// restarts, or a connection made again, takes a moment); if the store still cannot be
    /// read, closes the user's tabs on this node, so their clients resume later, from their
    /// positions, rather than wait on a mirror that no longer follows the stream.
    fn resync(self: &Arc<Self>, mgr: UserManager) {
        let node = Arc::clone(self);
        tokio::spawn(async move {
            let mut wait = Duration::from_millis(100);
            for _ in 0..5 {
                if node.sync(&mgr).await.is_ok() {
                    return;
                }
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            node.registry.remove_manager(&mgr);
        });
    }

    /// Stores one message for `ctx`'s user, checking an agent event's lifecycle first.
    async fn publish(&self, ctx: &UserContext, payload: Payload) -> Result<Position, Error> {
        let key = ctx.key();
        if let Payload::Text { .. } = &payload {
            if let Some(mgr) = self.registry.get(key) {
                let mode = mgr.mode();
                if mode == Mode::Emergency {
                    return Err(Error::Suppressed {
                        user: key.to_string(),
                        mode,
                    });
                }
            }
        }
        let runs = {
            let mut senders = self.senders.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(senders.entry(key.clone()).or_default())
        };
        let result = {
            let mut runs = runs.lock().await;
            if let Payload::Agent(event) = &payload {
                runs.clone().admit(event, 0)?;
            }
            // One try. A call the store did not confirm may have been stored, and is refused
            // as such; trying again here, even with the same key, would store it a second
            // time if the store lost everything in between (a flush, a restart, a failover:
            // the key goes with the stream), and a client would read it twice, once in each
            // epoch. The key still makes a call the store client resends stored once.
            let idem = self.idempotency_key();
            let stored = self
                .store
                .append(key, &idem, &payload, self.proposal())
                .await;
            match stored {
                Ok(stored) => {
                    if let Payload::Agent(event) = &payload {
                        let _ = runs.admit(event, stored.at.seq);
                    }
                    Ok(stored.at)
                }
                Err(e) => Err(Error::from(e)),
            }
        };
        {
            let mut senders = self.senders.lock().unwrap_or_else(PoisonError::into_inner);
            let idle = runs.try_lock().is_ok_and(|r| r.open_runs() == 0);
            if idle && Arc::strong_count(&runs) == 2 {
                senders.remove(key);
            }
        }
        let at = result?;
        // This node's own tabs need not wait for the subscription to hear of it.
        // A mirror behind the store is brought up when the subscription delivers the same
        // message (the live task reads then), so what `offer` says is not needed here.
        if let Some(mgr) = self.registry.get(key) {
            let _ = mgr.offer(at, payload);
        }
        Ok(at)
    }

    async fn connect(
        &self,
        ctx: &UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> Result<Connected, Error> {
        let key = ctx.key();
        // Three tries: a manager reaped between its load and the add is made again.
        for _ in 0..3 {
            let mgr = self.registry.get_or_create(ctx)?;
            let (loaded, at) = mgr.mirrored();
            if !loaded {
                // Subscribe first: everything appended after the read is then delivered live.
                self.subscribe(key).await?;
                self.sync(&mgr).await?;
            } else if let Some(p) = resume {
                if p.epoch != at.epoch || p.seq > at.seq {
                    // A position another node handed out that this mirror has not reached, or
                    // an epoch it does not know: ask the store before judging it.
                    self.sync(&mgr).await?;
                }
            }
            if mgr.is_closed() {
                continue;
            }
            // The user's slot over every node first: a lease in the store.
            let holder = format!(
                "{:x}-{:x}",
                self.boot,
                self.leases.next.fetch_add(1, Ordering::Relaxed) + 1
            );
            let max = self.config.registry.max_connections_per_user;
            // From here until a connection holds the lease, the lease is given back however
            // this call ends: failed, or dropped by its caller (who gave up waiting) while the
            // store may already have taken it.
            let mut taking = Taking {
                store: &self.store,
                lease: Some(Lease {
                    user: key.clone(),
                    holder: holder.clone(),
                    expires: tokio::time::Instant::now() + self.config.lease,
                }),
            };
            let leased = self
                .store
                .lease(key, &holder, max as u64, self.lease_ms())
                .await?;
            if !leased {
                taking.lease = None; // the store said no: nothing to give back
                return Err(Error::UserConnectionLimit {
                    user: key.to_string(),
                    max,
                });
            }
            let handle = match mgr.add_connection(sink, resume) {
                Ok(handle) => handle,
                Err(e) => {
                    let _ = self.store.release(key, &holder).await;
                    taking.lease = None;
                    return Err(e);
                }
            };
            // The connection holds the lease from here: its close gives it back.
            if let Some(lease) = taking.lease.take() {
                self.leases
                    .held
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(handle.id(), lease);
            }
            return Ok(connected(handle));
        }
        Err(Error::ManagerClosed {
            user: key.to_string(),
        })
    }
}

/// Applies subscription changes in the order they were asked for, and gives the leases of
/// closed connections back (each on its own: a release never waits behind another call).
async fn follow_loop(
    store: Arc<dyn StreamStore>,
    mut follows: mpsc::UnboundedReceiver<Follow>,
    leases: Arc<Leases>,
) {
    while let Some(follow) = follows.recv().await {
        match follow {
            Follow::Subscribe(user, done) => {
                let _ = done.send(store.subscribe(&user).await);
            }
            Follow::Unsubscribe(user) => {
                let _ = store.unsubscribe(&user).await;
            }
            Follow::Release(conn) => {
                let lease = leases
                    .held
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&conn);
                if let Some(lease) = lease {
                    give_back(&store, lease);
                }
            }
        }
    }
}

/// Connection `conn` no longer holds its slot (`holder`) in the store, or is about to lose it,
/// and is still open: the node ends it (its client is told to come back, and is counted
/// again when it does).
fn lapsed(node: &NodeInner, conn: ConnectionId, holder: &str) {
    let lease = {
        let mut held = node
            .leases
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if held.get(&conn).is_none_or(|l| l.holder != holder) {
            return;
        }
        held.remove(&conn)
    };
    let Some(lease) = lease else { return };
    if let Some(mgr) = node.registry.get(&lease.user) {
        let _ = mgr.remove_connection(conn);
    }
    // The store may still hold it (a renewal that did not get through).
    give_back(&node.store, lease);
}

/// A lease a connect is asking the store for: given back when dropped still holding it (the
/// connect did not end with a connection holding it).
struct Taking<'a> {
    store: &'a Arc<dyn StreamStore>,
    lease: Option<Lease>,
}

impl Drop for Taking<'_> {
    fn drop(&mut self) {
        // Outside a runtime (it is shutting down) nothing can be sent: the lease runs out.
        if let Some(lease) = self.lease.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                give_back(self.store, lease);
            }
        }
    }
}

/// Gives `lease` back in the background, never waiting behind another call; a release the
/// store misses (out of reach) runs out by itself.
fn give_back(store: &Arc<dyn StreamStore>, lease: Lease) {
    let store = Arc::clone(store);
    tokio::spawn(async move {
        let _ = store.release(&lease.user, &lease.holder).await;
    });
}

/// Every third of the lease, while the node lives: ends each connection whose lease would run
/// out before the next pass (its renewals did not get through: the store out of reach, or
/// slow), so the store never hands its slot to another connection while it is open; then, in
/// the background unless the last pass is still out, renews every lease held, all at once, and
/// only renews (a limit of 0: a lease given back by a close, or run out, is never taken
/// again). A connection whose lease the store no longer holds is ended too, so the limit holds
/// over every node.
async fn renew_loop(node: std::sync::Weak<NodeInner>) {
    let renewing = Arc::new(std::sync::atomic::AtomicBool::new(false));
    loop {
        let Some(every) = node.upgrade().map(|n| n.config.lease / 3) else {
            return;
        };
        tokio::time::sleep(every.max(Duration::from_millis(1))).await;
        let Some(inner) = node.upgrade() else { return };
        let now = tokio::time::Instant::now();
        let held: Vec<(ConnectionId, Lease)> = inner
            .leases
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(conn, lease)| (*conn, lease.clone()))
            .collect();
        let (expiring, renewing_now): (Vec<_>, Vec<_>) = held
            .into_iter()
            .partition(|(_, l)| l.expires <= now + every);
        for (conn, lease) in &expiring {
            lapsed(&inner, *conn, &lease.holder);
        }
        if renewing.swap(true, Ordering::Relaxed) {
            continue; // the last pass is still waiting on the store
        }
        let (weak, done) = (node.clone(), Arc::clone(&renewing));
        tokio::spawn(async move {
            if let Some(inner) = weak.upgrade() {
                renew(&inner, renewing_now, now).await;
            }
            done.store(false, Ordering::Relaxed);
        });
    }
}

/// Renewals one pass has in flight at once. A node with tens of thousands of connections
/// renews them in batches of this many, so a pass never holds a future and a pending reply for
/// every connection at once (which grew the node's memory by about a tenth per connection).
const RENEWALS_IN_FLIGHT: usize = 256;

/// One renewal pass over `leases`, asked at `asked` (a later batch's leases are counted from
/// then too: never later than the store counts them).
async fn renew(node: &NodeInner, leases: Vec<(ConnectionId, Lease)>, asked: tokio::time::Instant) {
    let lease_ms = node.lease_ms();
    for batch in leases.chunks(RENEWALS_IN_FLIGHT) {
        let renewed = futures_util::future::join_all(
            batch
                .iter()
                .map(|(_, l)| node.store.lease(&l.user, &l.holder, 0, lease_ms)),
        )
        .await;
        for ((conn, lease), renewed) in batch.iter().zip(renewed) {
            match renewed {
                Ok(true) => {
                    let mut held = node
                        .leases
                        .held
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    if let Some(l) = held.get_mut(conn).filter(|l| l.holder == lease.holder) {
                        l.expires = l.expires.max(asked + node.config.lease);
                    }
                }
                Ok(false) => lapsed(node, *conn, &lease.holder),
                Err(_) => {} // ended in time by a later pass, if it comes to that
            }
        }
    }
}

/// Hands each live message to its user's mirror; reads the store where a mirror fell behind.
async fn live_loop(node: std::sync::Weak<NodeInner>, mut live: mpsc::UnboundedReceiver<Live>) {
    while let Some(message) = live.recv().await {
        let Some(node) = node.upgrade() else { return };
        match message {
            Live::Published { user, at, payload } => {
                let Some(mgr) = node.registry.get(&user) else {
                    continue;
                };
                if matches!(mgr.offer(at, payload), Offered::Ahead | Offered::Foreign) {
                    node.resync(mgr);
                }
            }
            Live::Lost => {
                for view in node.registry.inspect().managers {
                    if let Some(mgr) = node.registry.get(&view.user) {
                        node.resync(mgr);
                    }
                }
            }
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Store(e.to_string())
    }
}

impl Backend for Node {
    fn connect<'a>(
        &'a self,
        ctx: &'a UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> BoxFuture<'a, Result<Connected, Error>> {
        Box::pin(self.inner.connect(ctx, sink, resume))
    }

    fn close<'a>(&'a self, handle: &'a Handle) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let closed = close_core(handle);
            // The slot is given back before the close completes, so a connect after it is
            // never refused for it (a release the store misses runs out with its lease).
            let conn = handle.own::<crate::ConnectionHandle>()?.id();
            let lease = self
                .inner
                .leases
                .held
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&conn);
            if let Some(Lease { user, holder, .. }) = lease {
                // Until the store takes it back, or the lease has run out by itself: either
                // way the slot is free when the close completes.
                let gave_up_at = tokio::time::Instant::now() + self.inner.config.lease;
                while self.inner.store.release(&user, &holder).await.is_err()
                    && tokio::time::Instant::now() < gave_up_at
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            closed
        })
    }

    fn emit<'a>(
        &'a self,
        ctx: &'a UserContext,
        event: AgentEvent,
    ) -> BoxFuture<'a, Result<Position, Error>> {
        Box::pin(self.inner.publish(ctx, Payload::Agent(event)))
    }

    fn send_text<'a>(
        &'a self,
        ctx: &'a UserContext,
        text: &'a str,
    ) -> BoxFuture<'a, Result<Position, Error>> {
        let payload = Payload::Text {
            text: text.to_owned(),
        };
        Box::pin(self.inner.publish(ctx, payload))
    }

    fn set_mode(&self, ctx: &UserContext, mode: Mode) -> Result<(), Error> {
        self.inner.registry.set_mode(ctx.key(), mode)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }

    fn probe(&self, ctx: &UserContext) -> Option<Probe> {
        probe_key(&self.inner.registry, ctx.key())
    }

    fn inspect(&self) -> Option<RegistryView> {
        Some(self.inner.registry.inspect())
    }

    fn shutdown(&self) {
        self.inner.registry.shutdown();
    }
}
