//! The simulated stream store: [`StoreModel`] on a madsim node of its own, served over madsim's
//! TCP the way a Redis is served over real TCP, so partitions, restarts and latency reach it as
//! they would reach a Redis. One JSON object a line:
//!
//! - a node sends `{"id": n, "op": <Op>}`, `{"id": n, "sub": user}` or `{"id": n, "unsub": user}`;
//! - the store answers `{"id": n, "reply": <Reply>}` (or `{"id": n}` to a (un)subscribe), and
//!   pushes `{"live": [user, epoch, seq, payload]}` for every append to a user the connection
//!   subscribed to, on the same connection, in order with its answers.
//!
//! A probe (`{"id": n}`, nothing asked) is answered the way live messages travel, so a
//! connection whose pushes stopped cannot pass for healthy.
//!
//! A restart of the store node loses everything (a store without persistence): the model is
//! made anew by the node's init, and every connection drops. The world can also, through
//! [`StoreControl`], flush it or evict one user's key while it runs, mute the pushes of every
//! connection it has (a subscription gone silent while the socket looks healthy), and hold
//! pushes back a while, each by its own draw, so they arrive out of order and after reads.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use wsreg::store::model::{Bounds, Op, Reply, StoreModel};

/// A line from a node.
#[derive(Serialize, Deserialize)]
pub(crate) struct Request {
    pub(crate) id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) op: Option<Op>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) unsub: Option<String>,
    /// A probe answered at once, as an answer, not as a push (`PING`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) ping: bool,
}

/// A line from the store.
#[derive(Serialize, Deserialize)]
pub(crate) struct Answer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reply: Option<Reply>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) live: Option<(String, String, u64, String)>,
}

struct State {
    model: StoreModel,
    /// Each connection's outgoing lines.
    conns: BTreeMap<u64, mpsc::UnboundedSender<String>>,
    subscribers: BTreeMap<String, BTreeSet<u64>>,
    /// Connections whose pushes (live messages, and answers to probes) go nowhere.
    muted: BTreeSet<u64>,
    next_conn: u64,
}

/// What the world does to the store beyond killing it: answers late, pushes late, silences,
/// flushes, evictions and failovers.
#[derive(Default)]
pub(crate) struct StoreControl {
    /// How late every answer is, in ms (0 most of the time).
    pub(crate) late: AtomicU64,
    /// Up to how late each push is, in ms, drawn per push (0 most of the time).
    pub(crate) live_late: AtomicU64,
    /// The running store's state.
    running: Mutex<std::sync::Weak<Mutex<State>>>,
    /// What the store's next start begins with instead of nothing: a replica's data.
    replica: Mutex<Option<StoreModel>>,
}

impl StoreControl {
    /// Prepares a failover: the store's next start (the replica promoted) holds what the
    /// running store holds but each stream's newest `lose` writes, under a new lineage.
    pub(crate) fn fail_over(&self, lose: u64) {
        if let Some(state) = self.running() {
            let mut model = lock(&state).model.clone();
            model.apply(&Op::Failover { lose });
            *self.replica.lock().unwrap_or_else(PoisonError::into_inner) = Some(model);
        }
    }

    fn running(&self) -> Option<Arc<Mutex<State>>> {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .upgrade()
    }

    /// Forgets every stream while running (`FLUSHALL`): connections and subscriptions stay.
    pub(crate) fn flush(&self) {
        if let Some(state) = self.running() {
            lock(&state).model.apply(&Op::Flush);
        }
    }

    /// Evicts the meta record (or the history) of the `nth` stream the store holds, counting
    /// round; the user's key, if there was one.
    pub(crate) fn evict(&self, nth: u32, history: bool) -> Option<String> {
        let state = self.running()?;
        let mut st = lock(&state);
        let count = st.model.users().count();
        let user = st
            .model
            .users()
            .nth(nth as usize % count.max(1))?
            .to_owned();
        st.model.apply(&Op::Evict {
            user: user.clone(),
            history,
        });
        Some(user)
    }

    /// Mutes every connection the store has now, for as long as it lasts: it answers calls
    /// but pushes nothing (a subscription gone silent while its socket looks healthy).
    pub(crate) fn silence(&self) {
        if let Some(state) = self.running() {
            let mut st = lock(&state);
            let conns: Vec<u64> = st.conns.keys().copied().collect();
            st.muted.extend(conns);
        }
    }
}

/// Serves the store on `addr` until the node dies, as `control` says.
pub(crate) async fn serve(addr: &str, bounds: Bounds, control: Arc<StoreControl>) {
    let listener = TcpListener::bind(addr)
        .await
        .expect("the store node's address is free");
    let model = control
        .replica
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
        .unwrap_or_else(|| StoreModel::new(bounds));
    let state = Arc::new(Mutex::new(State {
        model,
        conns: BTreeMap::new(),
        subscribers: BTreeMap::new(),
        muted: BTreeSet::new(),
        next_conn: 0,
    }));
    *control
        .running
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = Arc::downgrade(&state);
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(connection(stream, Arc::clone(&state), Arc::clone(&control)));
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn connection(stream: TcpStream, state: Arc<Mutex<State>>, control: Arc<StoreControl>) {
    let _ = stream.set_nodelay(true);
    let (read, mut write) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let me = {
        let mut st = lock(&state);
        st.next_conn += 1;
        let me = st.next_conn;
        st.conns.insert(me, tx.clone());
        me
    };
    let writer = tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            if write.write_all(line.as_bytes()).await.is_err() || write.flush().await.is_err() {
                return;
            }
        }
    });
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let Ok(request) = serde_json::from_str::<Request>(&line) else {
            break; // a node speaks this protocol or nothing
        };
        let Some(answer) = apply(&state, me, request, &control) else {
            continue; // a probe: answered as a push
        };
        // Done at once, answered late: the calls behind it on this connection wait too, as
        // they would behind a busy Redis.
        let late = control.late.load(Ordering::Relaxed);
        if late > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(late)).await;
        }
        if tx.send(answer).is_err() {
            break;
        }
    }
    {
        let mut st = lock(&state);
        st.conns.remove(&me);
        st.muted.remove(&me);
        for subs in st.subscribers.values_mut() {
            subs.remove(&me);
        }
    }
    writer.abort();
}

/// Applies one request under the store's lock: the answer, and any publish pushed to the
/// subscribers before the lock is let go (so publishes reach each connection in append order,
/// unless pushes are held back). A probe's answer is pushed: `None` to answer.
fn apply(
    state: &Mutex<State>,
    me: u64,
    request: Request,
    control: &StoreControl,
) -> Option<String> {
    let mut st = lock(state);
    let mut answer = Answer {
        id: Some(request.id),
        reply: None,
        live: None,
    };
    let late = control.live_late.load(Ordering::Relaxed);
    if request.sub.is_none() && request.unsub.is_none() && request.op.is_none() {
        if request.ping {
            return Some(line_of(&answer));
        }
        push(&st, me, line_of(&answer), late);
        return None;
    }
    if let Some(user) = request.sub {
        st.subscribers.entry(user).or_default().insert(me);
    } else if let Some(user) = request.unsub {
        if let Some(subs) = st.subscribers.get_mut(&user) {
            subs.remove(&me);
        }
    } else if let Some(op) = request.op {
        let (reply, publish) = st.model.apply(&op);
        if let Some(p) = publish {
            let line = line_of(&Answer {
                id: None,
                reply: None,
                live: Some((p.user.clone(), p.epoch, p.seq, p.payload)),
            });
            let to: Vec<u64> = st
                .subscribers
                .get(&p.user)
                .map(|s| s.iter().copied().collect())
                .unwrap_or_default();
            for conn in to {
                push(&st, conn, line.clone(), late);
            }
        }
        answer.reply = Some(reply);
    }
    Some(line_of(&answer))
}

/// Pushes `line` to connection `conn`, unless it is muted: at once, or, with pushes held
/// back, after a draw of up to `late` ms of its own (so pushes overtake one another).
fn push(st: &State, conn: u64, line: String, late: u64) {
    if st.muted.contains(&conn) {
        return;
    }
    let Some(tx) = st.conns.get(&conn) else {
        return;
    };
    if late == 0 {
        let _ = tx.send(line);
        return;
    }
    let tx = tx.clone();
    let wait = madsim::rand::thread_rng().gen_range(0..=late);
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
        let _ = tx.send(line);
    });
}

pub(crate) fn line_of<T: Serialize>(value: &T) -> String {
    let mut line = serde_json::to_string(value).expect("store lines serialise");
    line.push('\n');
    line
}
