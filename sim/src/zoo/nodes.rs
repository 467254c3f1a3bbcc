//! The bugs of many nodes, each planted as a wrapper of one node's handle on the stream store
//! and its live messages, the way a node's own store code (its engine) would get it wrong; the
//! nodes, the store and the core stay correct. They run only over many nodes (`--net --nodes
//! 2` or more), where the black-box oracle must catch them from what the clients read and
//! were told. N4 to N8 are the bugs the realtime servers built on Redis have shipped.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use wsreg::store::{Appended, Live, Range, StoreFuture, StreamStore};
use wsreg::{Epoch, Payload, Position, UserKey};

use crate::check::invariant::Invariant;

pub use crate::run::backend::StorePlant;
use crate::run::backend::StoreWrap;

/// A planted bug of many nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum NodeBug {
    /// A position assigned outside the store's atomic append.
    N1,
    /// A node that never fans out to another node's tabs.
    N2,
    /// A dead node's connections counted forever.
    N3,
    /// The epoch kept after the store lost writes.
    N4,
    /// The subscribe/recover race left open.
    N5,
    /// A dead subscription never noticed.
    N6,
    /// A position gap on the live path ignored.
    N7,
    /// A late live message delivered again.
    N8,
}

impl NodeBug {
    /// Every planted bug of many nodes.
    pub const ALL: [NodeBug; 8] = [
        NodeBug::N1,
        NodeBug::N2,
        NodeBug::N3,
        NodeBug::N4,
        NodeBug::N5,
        NodeBug::N6,
        NodeBug::N7,
        NodeBug::N8,
    ];

    /// The one-line story.
    pub fn story(self) -> &'static str {
        match self {
            NodeBug::N1 => "position outside the atomic append: a node reads the head, appends, and tells the sender head + 1, so two nodes appending at once hand out one position",
            NodeBug::N2 => "no fan-out: a node never subscribes to the users it holds tabs for, so its tabs hear only of what it appended itself (or what a resume reads)",
            NodeBug::N3 => "connection counts that never expire: a node takes its users' slots for good and only gives them back when it closes a tab, so the tabs of a node that died count against their user forever",
            NodeBug::N4 => "the epoch kept after a loss: a node names each user's stream by the first epoch it saw, so after a restart, flush, eviction or failover its clients resume as if nothing was lost and read new messages at positions they already read with others",
            NodeBug::N5 => "the subscribe/recover race left open: a node's subscription is confirmed before it is in place (it lands 30 ms later), so what is appended between a tab's history read and the subscription never reaches that node's tabs",
            NodeBug::N6 => "a dead subscription never noticed: a node checks its store connection with a PING, which a connection whose pushes stopped still answers, so its tabs starve while it looks healthy",
            NodeBug::N7 => "a gap on the live path ignored: a live message ahead of the last one a node has is taken as the next one, at the next position, instead of reading what came between",
            NodeBug::N8 => "a late live message delivered again: a live message a read already brought is taken as a new one, at the next position",
        }
    }

    /// The invariants expected to catch it.
    pub fn expected(self) -> &'static [Invariant] {
        match self {
            NodeBug::N1 => &[Invariant::I7, Invariant::I8],
            NodeBug::N2 => &[Invariant::I8],
            NodeBug::N3 => &[Invariant::I6],
            NodeBug::N4 | NodeBug::N7 | NodeBug::N8 => &[Invariant::I7, Invariant::I8],
            NodeBug::N5 | NodeBug::N6 => &[Invariant::I8],
        }
    }

    /// Whether a failure label (an [`Outcome::label`](crate::check::outcome::Outcome::label))
    /// is one of the expected invariants.
    pub fn caught_as_expected(self, label: &str) -> bool {
        self.expected()
            .iter()
            .any(|i| label.starts_with(&format!("{i:?} ")))
    }

    /// The wrapper that plants it.
    pub fn plant(self) -> StorePlant {
        let wrap: StoreWrap = match self {
            NodeBug::N1 => |store, live| (Arc::new(Planted(NodeBug::N1, store)), live),
            NodeBug::N2 => |store, live| (Arc::new(Planted(NodeBug::N2, store)), live),
            NodeBug::N3 => |store, live| (Arc::new(Planted(NodeBug::N3, store)), live),
            NodeBug::N4 => |store, live| Arrival::plant(NodeBug::N4, store, live),
            NodeBug::N5 => |store, live| (Arc::new(Planted(NodeBug::N5, store)), live),
            NodeBug::N6 => |store, live| (store, live),
            NodeBug::N7 => |store, live| Arrival::plant(NodeBug::N7, store, live),
            NodeBug::N8 => |store, live| Arrival::plant(NodeBug::N8, store, live),
        };
        StorePlant {
            wrap,
            echo: self != NodeBug::N6,
        }
    }
}

impl std::fmt::Display for NodeBug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

/// N3's lease: a year, far beyond any run.
const FOREVER_MS: u64 = 365 * 24 * 3_600 * 1_000;

/// N5's subscription: confirmed at once, in place this much later.
const SUBSCRIBED_LATE: Duration = Duration::from_millis(30);

/// A node's store handle with `bug` planted: N1 reads the head, then appends, and reports the
/// head it read plus one; N2 subscribes to nobody; N3 takes every slot for a year; N5
/// confirms a subscription before it is in place. Everything else goes to the store as is.
struct Planted(NodeBug, Arc<dyn StreamStore>);

impl StreamStore for Planted {
    fn append<'a>(
        &'a self,
        user: &'a UserKey,
        idem: &'a str,
        payload: &'a Payload,
        fresh: Epoch,
    ) -> StoreFuture<'a, Appended> {
        if self.0 != NodeBug::N1 {
            return self.1.append(user, idem, payload, fresh);
        }
        Box::pin(async move {
            let head = self.1.read(user, 0, 0, fresh).await?.head;
            let stored = self.1.append(user, idem, payload, fresh).await?;
            Ok(Appended {
                at: Position::new(stored.at.epoch, head + 1),
                duplicate: stored.duplicate,
            })
        })
    }

    fn read<'a>(
        &'a self,
        user: &'a UserKey,
        after: u64,
        limit: usize,
        fresh: Epoch,
    ) -> StoreFuture<'a, Range> {
        self.1.read(user, after, limit, fresh)
    }

    fn subscribe<'a>(&'a self, user: &'a UserKey) -> StoreFuture<'a, ()> {
        match self.0 {
            NodeBug::N2 => Box::pin(async { Ok(()) }),
            NodeBug::N5 => {
                let store = Arc::clone(&self.1);
                let user = user.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(SUBSCRIBED_LATE).await;
                    let _ = store.subscribe(&user).await;
                });
                Box::pin(async { Ok(()) })
            }
            _ => self.1.subscribe(user),
        }
    }

    fn unsubscribe<'a>(&'a self, user: &'a UserKey) -> StoreFuture<'a, ()> {
        match self.0 {
            NodeBug::N2 => Box::pin(async { Ok(()) }),
            _ => self.1.unsubscribe(user),
        }
    }

    fn lease<'a>(
        &'a self,
        user: &'a UserKey,
        holder: &'a str,
        limit: u64,
        lease_ms: u64,
    ) -> StoreFuture<'a, bool> {
        match self.0 {
            NodeBug::N3 => self.1.lease(user, holder, limit, FOREVER_MS),
            _ => self.1.lease(user, holder, limit, lease_ms),
        }
    }

    fn release<'a>(&'a self, user: &'a UserKey, holder: &'a str) -> StoreFuture<'a, ()> {
        self.1.release(user, holder)
    }
}

/// What an [`Arrival`] node has seen of one user's stream.
#[derive(Clone, Copy, Default)]
struct Seen {
    epoch: Option<Epoch>,
    /// The head its last read found.
    read: u64,
    /// The last live message passed on.
    live: u64,
    /// Its own last append.
    appended: u64,
}

impl Seen {
    fn last(&self) -> u64 {
        self.read.max(self.live).max(self.appended)
    }

    /// Takes `epoch` in: a new one starts the count again.
    fn enter(&mut self, epoch: Epoch) {
        if self.epoch != Some(epoch) {
            *self = Seen {
                epoch: Some(epoch),
                ..Seen::default()
            };
        }
    }
}

/// N4, N7 and N8: a node's engine that tracks each user's stream by what arrives, not by what
/// the store says. N4 names a stream by the first epoch it saw; N7 takes a live message ahead
/// of the last one it has as the next one; N8 takes a live message a read already brought as
/// a new one.
struct Arrival {
    bug: NodeBug,
    store: Arc<dyn StreamStore>,
    seen: Mutex<BTreeMap<UserKey, Seen>>,
    /// N4: each user's first epoch.
    first: Mutex<BTreeMap<UserKey, Epoch>>,
}

impl Arrival {
    fn plant(
        bug: NodeBug,
        store: Arc<dyn StreamStore>,
        mut live: UnboundedReceiver<Live>,
    ) -> (Arc<dyn StreamStore>, UnboundedReceiver<Live>) {
        let arrival = Arc::new(Arrival {
            bug,
            store,
            seen: Mutex::default(),
            first: Mutex::default(),
        });
        let (tx, rx) = unbounded_channel();
        let engine = Arc::clone(&arrival);
        tokio::spawn(async move {
            while let Some(message) = live.recv().await {
                if tx.send(engine.arrived(message)).is_err() {
                    return;
                }
            }
        });
        (arrival, rx)
    }

    /// N4: the epoch the node names `user`'s stream by.
    fn named(&self, user: &UserKey, epoch: Epoch) -> Epoch {
        if self.bug != NodeBug::N4 {
            return epoch;
        }
        let mut first = self.first.lock().unwrap_or_else(PoisonError::into_inner);
        *first.entry(user.clone()).or_insert(epoch)
    }

    fn seen<T>(&self, user: &UserKey, epoch: Epoch, f: impl FnOnce(&mut Seen) -> T) -> T {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let s = seen.entry(user.clone()).or_default();
        s.enter(epoch);
        f(s)
    }

    /// A live message, as the planted engine passes it on.
    fn arrived(&self, message: Live) -> Live {
        let Live::Published { user, at, payload } = message else {
            return message;
        };
        let epoch = self.named(&user, at.epoch);
        let seq = self.seen(&user, epoch, |s| {
            let last = s.last();
            let seq = match self.bug {
                NodeBug::N7 if at.seq > last + 1 => last + 1,
                NodeBug::N8 if at.seq <= s.read && at.seq > s.live.max(s.appended) => last + 1,
                _ => at.seq,
            };
            s.live = s.live.max(seq);
            seq
        });
        Live::Published {
            user,
            at: Position::new(epoch, seq),
            payload,
        }
    }
}

impl StreamStore for Arrival {
    fn append<'a>(
        &'a self,
        user: &'a UserKey,
        idem: &'a str,
        payload: &'a Payload,
        fresh: Epoch,
    ) -> StoreFuture<'a, Appended> {
        Box::pin(async move {
            let stored = self.store.append(user, idem, payload, fresh).await?;
            let epoch = self.named(user, stored.at.epoch);
            self.seen(user, epoch, |s| s.appended = s.appended.max(stored.at.seq));
            Ok(Appended {
                at: Position::new(epoch, stored.at.seq),
                duplicate: stored.duplicate,
            })
        })
    }

    fn read<'a>(
        &'a self,
        user: &'a UserKey,
        after: u64,
        limit: usize,
        fresh: Epoch,
    ) -> StoreFuture<'a, Range> {
        Box::pin(async move {
            let mut range = self.store.read(user, after, limit, fresh).await?;
            range.epoch = self.named(user, range.epoch);
            let got = range.entries.last().map_or(after, |(seq, _)| *seq);
            self.seen(user, range.epoch, |s| s.read = s.read.max(got));
            Ok(range)
        })
    }

    fn subscribe<'a>(&'a self, user: &'a UserKey) -> StoreFuture<'a, ()> {
        self.store.subscribe(user)
    }

    fn unsubscribe<'a>(&'a self, user: &'a UserKey) -> StoreFuture<'a, ()> {
        self.store.unsubscribe(user)
    }

    fn lease<'a>(
        &'a self,
        user: &'a UserKey,
        holder: &'a str,
        limit: u64,
        lease_ms: u64,
    ) -> StoreFuture<'a, bool> {
        self.store.lease(user, holder, limit, lease_ms)
    }

    fn release<'a>(&'a self, user: &'a UserKey, holder: &'a str) -> StoreFuture<'a, ()> {
        self.store.release(user, holder)
    }
}
