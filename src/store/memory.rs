//! [`MemoryStore`]: one [`StoreModel`] in this process, shared by any number of nodes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::model::{Bounds, Op, Reply, StoreModel};
use super::{decode, decode_epoch, Live, ModelStore, StoreError, StoreFuture};
use crate::identity::UserKey;
use crate::stream::Position;

/// A stream store in this process: every node [attached](MemoryStore::attach) to one
/// `MemoryStore` shares its streams, as server nodes share a Redis. For tests, examples and
/// single-process deployments of several registries; the clock is `tokio::time`, so virtual
/// under a simulator.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use wsreg::store::{Bounds, MemoryStore, StreamStore};
/// use wsreg::{Epoch, Payload, UserKey};
/// let shared = MemoryStore::new(Bounds { capacity: 100, max_age_ms: 60_000, ttl_ms: 3_600_000 });
/// let (a, _) = shared.attach();
/// let (b, mut live_b) = shared.attach();
/// let alice = UserKey::new("alice").unwrap();
/// b.subscribe(&alice).await.unwrap();
/// let hello = Payload::Text { text: "hello".into() };
/// let stored = a.append(&alice, "k1", &hello, Epoch::new(1, 1)).await.unwrap();
/// assert_eq!(stored.at.seq, 1);
/// // Node b hears of it.
/// let heard = live_b.recv().await.unwrap();
/// assert!(matches!(heard, wsreg::store::Live::Published { at, .. } if at == stored.at));
/// # }
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

struct Shared {
    start: Instant,
    state: Mutex<State>,
}

struct State {
    model: StoreModel,
    nodes: BTreeMap<u64, mpsc::UnboundedSender<Live>>,
    /// user -> the nodes subscribed to them.
    subscribers: BTreeMap<String, BTreeSet<u64>>,
    next_node: u64,
}

/// One node's handle on a [`MemoryStore`].
pub struct MemoryNode {
    id: u64,
    shared: Arc<Shared>,
}

impl MemoryStore {
    /// An empty store applying `bounds`.
    pub fn new(bounds: Bounds) -> Self {
        let state = State {
            model: StoreModel::new(bounds),
            nodes: BTreeMap::new(),
            subscribers: BTreeMap::new(),
            next_node: 0,
        };
        Self {
            shared: Arc::new(Shared {
                start: Instant::now(),
                state: Mutex::new(state),
            }),
        }
    }

    /// A new node's handle, and the receiver of its subscription's deliveries.
    pub fn attach(&self) -> (MemoryNode, mpsc::UnboundedReceiver<Live>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut st = self.shared.lock();
        st.next_node += 1;
        let id = st.next_node;
        st.nodes.insert(id, tx);
        let node = MemoryNode {
            id,
            shared: Arc::clone(&self.shared),
        };
        (node, rx)
    }

    /// Forgets every stream, as a store restarted without persistence does, and tells every
    /// node its subscription was lost (their connections to it were).
    pub fn restart(&self) {
        let mut st = self.shared.lock();
        st.model.apply(&Op::Flush);
        st.subscribers.clear();
        for tx in st.nodes.values() {
            let _ = tx.send(Live::Lost);
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

impl Drop for MemoryNode {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.nodes.remove(&self.id);
        for nodes in st.subscribers.values_mut() {
            nodes.remove(&self.id);
        }
    }
}

impl ModelStore for MemoryNode {
    fn now_ms(&self) -> u64 {
        self.shared.now_ms()
    }

    fn run(&self, op: Op) -> StoreFuture<'_, Reply> {
        Box::pin(async move {
            let mut st = self.shared.lock();
            let (reply, publish) = st.model.apply(&op);
            // Published under the store's lock, so every node hears one user's appends in
            // the order they were made.
            if let Some(p) = publish {
                let live = Live::Published {
                    user: UserKey::new(&p.user)
                        .map_err(|e| StoreError::Protocol(format!("a stored user: {e}")))?,
                    at: Position::new(decode_epoch(&p.epoch)?, p.seq),
                    payload: decode(&p.payload)?,
                };
                let to = st.subscribers.get(&p.user).cloned().unwrap_or_default();
                for node in to {
                    if let Some(tx) = st.nodes.get(&node) {
                        let _ = tx.send(live.clone());
                    }
                }
            }
            Ok(reply)
        })
    }

    fn subscribe<'a>(&'a self, user: &'a UserKey) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut st = self.shared.lock();
            let user = user.as_str().to_owned();
            st.subscribers.entry(user).or_default().insert(self.id);
            Ok(())
        })
    }

    fn unsubscribe<'a>(&'a self, user: &'a UserKey) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut st = self.shared.lock();
            if let Some(nodes) = st.subscribers.get_mut(user.as_str()) {
                nodes.remove(&self.id);
                if nodes.is_empty() {
                    st.subscribers.remove(user.as_str());
                }
            }
            Ok(())
        })
    }
}
