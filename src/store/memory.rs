//! [`MemoryStore`]: one [`StoreModel`] in this process, shared by any number of nodes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::model::{Bounds, Op, Reply, StoreModel};
use super::StreamStore;
use super::{decode, decode_epoch, encode, Appended, Live, Range, StoreError, StoreFuture};
use crate::event::Payload;
use crate::identity::UserKey;
use crate::stream::{Epoch, Position};

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

impl StreamStore for MemoryNode {
    fn append<'a>(
        &'a self,
        user: &'a UserKey,
        idem: &'a str,
        payload: &'a Payload,
        fresh: Epoch,
    ) -> StoreFuture<'a, Appended> {
        Box::pin(async move {
            let op = Op::Append {
                user: user.as_str().to_owned(),
                idem: idem.to_owned(),
                payload: encode(payload),
                fresh: fresh.to_string(),
                now_ms: self.shared.now_ms(),
            };
            let mut st = self.shared.lock();
            let (reply, publish) = st.model.apply(&op);
            let Reply::Appended {
                epoch,
                seq,
                duplicate,
            } = reply
            else {
                return Err(StoreError::Protocol(format!("{reply:?} to an append")));
            };
            let at = Position::new(decode_epoch(&epoch)?, seq);
            if publish.is_some() {
                let to = st
                    .subscribers
                    .get(user.as_str())
                    .cloned()
                    .unwrap_or_default();
                for node in to {
                    if let Some(tx) = st.nodes.get(&node) {
                        let live = Live::Published {
                            user: user.clone(),
                            at,
                            payload: payload.clone(),
                        };
                        let _ = tx.send(live);
                    }
                }
            }
            Ok(Appended { at, duplicate })
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
            let op = Op::Read {
                user: user.as_str().to_owned(),
                after,
                limit: limit as u64,
                fresh: fresh.to_string(),
                now_ms: self.shared.now_ms(),
            };
            let reply = self.shared.lock().model.apply(&op).0;
            range_of(reply)
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

    fn lease<'a>(
        &'a self,
        user: &'a UserKey,
        holder: &'a str,
        limit: u64,
        lease_ms: u64,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let op = Op::Lease {
                user: user.as_str().to_owned(),
                holder: holder.to_owned(),
                limit,
                now_ms: self.shared.now_ms(),
                lease_ms,
            };
            super::granted(self.shared.lock().model.apply(&op).0)
        })
    }

    fn release<'a>(&'a self, user: &'a UserKey, holder: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let op = Op::Release {
                user: user.as_str().to_owned(),
                holder: holder.to_owned(),
            };
            self.shared.lock().model.apply(&op);
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

/// A [`Range`] from the model's reply to a read.
pub(crate) fn range_of(reply: Reply) -> Result<Range, StoreError> {
    let Reply::Range {
        epoch,
        head,
        first,
        entries,
    } = reply
    else {
        return Err(StoreError::Protocol(format!("{reply:?} to a read")));
    };
    let entries = entries
        .into_iter()
        .map(|(seq, text)| Ok((seq, decode(&text)?)))
        .collect::<Result<_, StoreError>>()?;
    Ok(Range {
        epoch: decode_epoch(&epoch)?,
        head,
        first,
        entries,
    })
}
