//! [`SimStore`]: a server node's handle on the simulated store (see [`super::store`]), a
//! [`StreamStore`] like the Redis one: one connection carrying requests, answers and live
//! messages; a request unanswered within [`TIMEOUT`] is `Unavailable`; a lost connection is
//! made again (every subscription with it) and reported as [`Live::Lost`].
//!
//! A connection can die silently (the store killed, or failed over, without the socket ever
//! closing): its reads wait for ever while the subscription delivers nothing. Or it can go on
//! answering while its pushes no longer come. So a request that times out counts the
//! connection as lost, and so does a probe, sent every [`PROBE`], whose answer does not come
//! back in time the way live messages come (an echo).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use wsreg::store::model::{Op, Reply};
use wsreg::store::{Live, ModelStore, StoreError, StoreFuture};
use wsreg::{Position, UserKey};

use super::store::{line_of, Answer, Request};

/// How long a node waits for the store's answer.
pub(crate) const TIMEOUT: Duration = Duration::from_millis(500);
/// How often a connection is probed.
pub(crate) const PROBE: Duration = Duration::from_millis(250);

/// A server node's handle on the simulated store.
pub(crate) struct SimStore {
    inner: Arc<Inner>,
}

struct Inner {
    addr: String,
    /// Virtual time 0 of the run: the store's clock is the simulation's.
    start: Instant,
    next_id: AtomicU64,
    wire: Mutex<Wire>,
    /// Probes are echoed as pushes (`false`: answered as a `PING` is; a planted bug).
    echo: bool,
}

#[derive(Default)]
struct Wire {
    /// The current connection's outgoing lines, while connected.
    out: Option<mpsc::UnboundedSender<String>>,
    /// Notified when the current connection is found dead (an answer never came).
    broken: Option<Arc<tokio::sync::Notify>>,
    pending: BTreeMap<u64, oneshot::Sender<Answer>>,
    subscribed: BTreeSet<String>,
}

impl SimStore {
    /// A handle on the store at `addr`; spawns its connection task on the current node.
    pub(crate) fn new(
        addr: &str,
        start: Instant,
        echo: bool,
    ) -> (Self, mpsc::UnboundedReceiver<Live>) {
        let inner = Arc::new(Inner {
            addr: addr.to_owned(),
            start,
            next_id: AtomicU64::new(0),
            wire: Mutex::new(Wire::default()),
            echo,
        });
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(connect_loop(Arc::clone(&inner), tx));
        (Self { inner }, rx)
    }
}

impl Inner {
    fn wire(&self) -> std::sync::MutexGuard<'_, Wire> {
        self.wire.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    async fn request(&self, mut request: Request) -> Result<Answer, StoreError> {
        request.id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = oneshot::channel();
        let closed = || StoreError::Unavailable("the store connection closed".into());
        let broken = {
            let mut wire = self.wire();
            let out = wire
                .out
                .clone()
                .ok_or_else(|| StoreError::Unavailable("not connected to the store".into()))?;
            wire.pending.insert(request.id, tx);
            if out.send(line_of(&request)).is_err() {
                wire.pending.remove(&request.id);
                return Err(closed());
            }
            wire.broken.clone()
        };
        match tokio::time::timeout(TIMEOUT, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(closed()),
            Err(_) => {
                self.wire().pending.remove(&request.id);
                // No answer in time: the connection may be dead without having closed.
                if let Some(broken) = broken {
                    broken.notify_one();
                }
                Err(StoreError::Unavailable(
                    "the store did not answer in time".into(),
                ))
            }
        }
    }

    async fn op(&self, op: Op) -> Result<Reply, StoreError> {
        let answer = self
            .request(Request {
                id: 0,
                op: Some(op),
                sub: None,
                unsub: None,
                ping: false,
            })
            .await?;
        answer
            .reply
            .ok_or_else(|| StoreError::Protocol("an answer without a reply".into()))
    }
}

/// Connects, subscribes again to every followed user, reports [`Live::Lost`], then reads
/// answers and live messages until the connection drops; and again, for the node's life.
async fn connect_loop(inner: Arc<Inner>, live: mpsc::UnboundedSender<Live>) {
    let mut wait = Duration::from_millis(5);
    loop {
        // A connect can wait for ever on a packet the network lost: it gives up in time, as
        // the Redis client's does.
        let connecting = tokio::time::timeout(TIMEOUT, TcpStream::connect(inner.addr.as_str()));
        let Ok(Ok(stream)) = connecting.await else {
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_millis(200));
            continue;
        };
        wait = Duration::from_millis(5);
        let _ = stream.set_nodelay(true);
        let (read, mut write) = tokio::io::split(stream);
        let (out, mut lines_out) = mpsc::unbounded_channel::<String>();
        let broken = Arc::new(tokio::sync::Notify::new());
        {
            let mut wire = inner.wire();
            wire.broken = Some(Arc::clone(&broken));
            for user in &wire.subscribed {
                let sub = Request {
                    id: 0,
                    op: None,
                    sub: Some(user.clone()),
                    unsub: None,
                    ping: false,
                };
                let _ = out.send(line_of(&sub));
            }
            wire.out = Some(out);
        }
        if live.send(Live::Lost).is_err() {
            return;
        }
        let writer = tokio::spawn(async move {
            while let Some(line) = lines_out.recv().await {
                if write.write_all(line.as_bytes()).await.is_err() || write.flush().await.is_err() {
                    return;
                }
            }
        });
        let prober = tokio::spawn(probe(Arc::clone(&inner)));
        let node_alive = tokio::select! {
            biased;
            _ = broken.notified() => true,
            alive = read_answers(BufReader::new(read), &inner, &live) => alive,
        };
        writer.abort();
        prober.abort();
        if !node_alive {
            return;
        }
        {
            let mut wire = inner.wire();
            wire.broken = None;
            wire.out = None;
            wire.pending.clear(); // every request in flight learns the connection closed
        }
        if live.send(Live::Lost).is_err() {
            return;
        }
    }
}

/// Hands answers to their requests and live messages to the node, until the connection ends;
/// `false` when the node is gone.
async fn read_answers<R: tokio::io::AsyncRead + Unpin>(
    read: BufReader<R>,
    inner: &Inner,
    live: &mpsc::UnboundedSender<Live>,
) -> bool {
    let mut lines = read.lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let Ok(answer) = serde_json::from_str::<Answer>(&line) else {
            break;
        };
        if let Some((user, epoch, seq, payload)) = answer.live.clone() {
            if let Some(message) = published(&user, &epoch, seq, &payload) {
                if live.send(message).is_err() {
                    return false;
                }
            }
            continue;
        }
        let Some(id) = answer.id else { continue };
        let waiter = inner.wire().pending.remove(&id);
        if let Some(waiter) = waiter {
            let _ = waiter.send(answer);
        }
    }
    true
}

/// Sends a probe (a request of nothing) every [`PROBE`]; one unanswered in time marks the
/// connection dead (see [`Inner::request`]).
async fn probe(inner: Arc<Inner>) {
    loop {
        tokio::time::sleep(PROBE).await;
        let ping = Request {
            id: 0,
            op: None,
            sub: None,
            unsub: None,
            ping: !inner.echo,
        };
        if inner.request(ping).await.is_err() {
            return;
        }
    }
}

fn published(user: &str, epoch: &str, seq: u64, payload: &str) -> Option<Live> {
    Some(Live::Published {
        user: UserKey::new(user).ok()?,
        at: Position::new(epoch.parse().ok()?, seq),
        payload: serde_json::from_str(payload).ok()?,
    })
}

impl ModelStore for SimStore {
    fn now_ms(&self) -> u64 {
        self.inner.now_ms()
    }

    fn run(&self, op: Op) -> StoreFuture<'_, Reply> {
        Box::pin(self.inner.op(op))
    }

    fn subscribe<'a>(&'a self, user: &'a UserKey) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let name = user.as_str().to_owned();
            self.inner.wire().subscribed.insert(name.clone());
            self.inner
                .request(Request {
                    id: 0,
                    op: None,
                    sub: Some(name),
                    unsub: None,
                    ping: false,
                })
                .await
                .map(|_| ())
        })
    }

    fn unsubscribe<'a>(&'a self, user: &'a UserKey) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let name = user.as_str().to_owned();
            self.inner.wire().subscribed.remove(&name);
            self.inner
                .request(Request {
                    id: 0,
                    op: None,
                    sub: None,
                    unsub: Some(name),
                    ping: false,
                })
                .await
                .map(|_| ())
        })
    }
}
