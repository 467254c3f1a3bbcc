//! The server: a TCP listener, a WebSocket handshake that authenticates from `?token=`, one
//! core connection per socket, a read loop for client messages, and a graceful shutdown that
//! drains every queue before closing.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use wsreg::{AgentEvent, Registry, RegistryConfig, UserContext};

use crate::handshake::{authenticate, Handshake};
use crate::metrics::{Metrics, Refusal};
use crate::rate::MessageBudget;
use wsreg::Backend;

/// The body of the 429 a user connecting too fast gets.
pub(crate) const TOO_MANY_CONNECTS: &str =
    "too many connects: this user reconnects faster than the server allows; retry with a backoff";

/// The paths the native listener upgrades.
const ENDPOINTS: [&str; 2] = ["/", "/ws"];

/// Each socket's read buffer, kept for as long as the socket is open. tungstenite's default
/// (128 KiB) suits few sockets with heavy reads; clients here send small control messages, and
/// a server holds many sockets. A larger frame is still read whole: the buffer grows to it.
pub const READ_BUFFER_BYTES: usize = 1024;

/// The first and the longest wait after a failed accept.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));

/// Server settings.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The HMAC secret tokens are signed with.
    pub secret: Vec<u8>,
    /// The core's limits.
    pub registry: RegistryConfig,
    /// Largest frame or message accepted from a client, in bytes (close code 1009 beyond).
    pub max_frame_bytes: usize,
    /// Pause between a demo run's events.
    pub agent_step: Duration,
    /// How long a graceful shutdown waits for queues to drain.
    pub drain_timeout: Duration,
    /// How often the server pings each socket.
    pub heartbeat: Duration,
    /// A socket that sends nothing, not even the pong a WebSocket client answers a ping with,
    /// for this long is closed as dead (a client gone without closing its TCP connection).
    pub idle_timeout: Duration,
    /// How long writing one frame to a socket may take; a socket whose client stopped reading
    /// is closed after it, and its connection slot freed.
    pub write_timeout: Duration,
    /// Demo runs one user may have in flight at once; a `start_run` past it gets an error
    /// frame `run_limit`.
    pub max_runs_per_user: usize,
    /// Frames (text, binary or ping) one socket may send per second, in bursts of as many. Past
    /// it a frame is ignored and the client told once with an error frame `rate_limited`; a
    /// client that keeps sending a whole second's budget more is closed with 1008.
    pub max_messages_per_second: u32,
    /// Connects (handshakes) one user may make per second, in bursts of as many. Each resume
    /// reads the user's history, so a client reconnecting in a loop is refused past it with a
    /// 429 (`too_many_connects` in the metrics) and everyone else is served as before.
    pub max_connects_per_user_per_second: u32,
    /// How long a connection may take from its TCP accept to a completed WebSocket handshake;
    /// one that has not finished by then is dropped, so silent connections cannot pile up.
    pub handshake_timeout: Duration,
    /// How long the registry may take to accept a connection (over many nodes: its round trips
    /// to the store). Past it the server drops the call, answers an error frame
    /// `connect_timeout` and closes with 1013 (come back later), so that a stalled store does
    /// not hold sockets open for ever. A registry must let a dropped connect go without a
    /// trace (no connection left registered, no slot taken). `None`: the server waits as long
    /// as the registry takes.
    pub connect_timeout: Option<Duration>,
    /// The clock tokens are checked against, in ms since the epoch, read when the handshake's
    /// request arrives.
    pub now_ms: fn() -> u64,
    /// Names this server process in every welcome, so a client can tell that the server
    /// restarted (and that the recovery queues of the old process are gone). [`ServerConfig::new`]
    /// reads it from the clock.
    pub boot: u64,
    /// The node's name when it is one of several over a shared store
    /// ([`Server::with_store`]); `None` for a server on its own.
    pub node: Option<String>,
    /// Over many nodes, how long a connection's lease on one of its user's slots lasts unless
    /// its node renews it (every third of it): the connections of a node that died stop
    /// counting against their users this long after.
    pub lease: Duration,
}

impl ServerConfig {
    /// Defaults with this secret and clock.
    pub fn new(secret: &[u8], now_ms: fn() -> u64) -> Self {
        Self {
            secret: secret.to_vec(),
            registry: RegistryConfig::default(),
            max_frame_bytes: 64 * 1024,
            agent_step: Duration::from_millis(5),
            drain_timeout: Duration::from_secs(5),
            heartbeat: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            handshake_timeout: Duration::from_secs(10),
            connect_timeout: Some(Duration::from_secs(10)),
            write_timeout: Duration::from_secs(30),
            max_runs_per_user: 4,
            max_messages_per_second: 50,
            max_connects_per_user_per_second: 20,
            now_ms,
            boot: now_ms(),
            node: None,
            lease: wsreg::NodeConfig::default().lease,
        }
    }
}

/// A running server's shared state, over the real core ([`Registry`], [`Server::new`]) or any
/// other [`Backend`] ([`Server::with_backend`]).
pub struct Server {
    config: ServerConfig,
    backend: Arc<dyn Backend>,
    /// The registry, when the server built its own.
    registry: Option<Registry>,
    runs: AtomicU64,
    /// Demo runs in flight, per user id (only users with some).
    in_flight: Mutex<BTreeMap<String, usize>>,
    accept_errors: AtomicU64,
    /// Sockets past their handshake whose task has not finished (their close frame written).
    sockets: AtomicU64,
    /// Notified when `sockets` drops to zero.
    all_closed: tokio::sync::Notify,
    /// Flipped when the server shuts down; every socket's read loop then closes its socket.
    closing: tokio::sync::watch::Sender<bool>,
    /// Set when a graceful shutdown begins: no run starts any more; those in flight finish.
    draining: std::sync::atomic::AtomicBool,
    /// Each user's connect budget (users who connected within the last second or so).
    connects: Mutex<ConnectBudgets>,
    metrics: Arc<Metrics>,
}

/// Per-user connect budgets. Budgets full again are forgotten when the table reaches
/// `prune_at`, which then doubles over what is left, so pruning costs each connect a constant
/// amount however many users reconnect at once.
#[derive(Debug)]
struct ConnectBudgets {
    budgets: BTreeMap<String, MessageBudget>,
    prune_at: usize,
}

impl Default for ConnectBudgets {
    fn default() -> Self {
        Self {
            budgets: BTreeMap::new(),
            prune_at: 4096,
        }
    }
}

/// Why a `start_run` was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RunRefused {
    /// The user has `max_runs_per_user` in flight.
    Limit,
    /// The server is shutting down: runs in flight finish, none starts.
    ShuttingDown,
}

/// Counts a socket as open while it lives.
pub(crate) struct OpenSocket<'a> {
    count: &'a AtomicU64,
    all_closed: &'a tokio::sync::Notify,
    metrics: &'a Metrics,
}

impl<'a> OpenSocket<'a> {
    fn new(
        count: &'a AtomicU64,
        all_closed: &'a tokio::sync::Notify,
        metrics: &'a Metrics,
    ) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Self {
            count,
            all_closed,
            metrics,
        }
    }
}

impl Drop for OpenSocket<'_> {
    fn drop(&mut self) {
        self.metrics.socket_finished();
        if self.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.all_closed.notify_waiters();
        }
    }
}

impl Server {
    /// A server with its own registry, whose stream epochs carry this server's `boot` (unless
    /// `config.registry.boot` says otherwise), so a restart changes every epoch.
    pub fn new(config: ServerConfig) -> Arc<Self> {
        let mut registry = config.registry.clone();
        registry.boot.get_or_insert(config.boot);
        let metrics = Arc::new(Metrics::new());
        let observer: Arc<dyn wsreg::Observer> = Arc::clone(&metrics) as _;
        let registry = Registry::with_observer(registry, observer);
        Self::build(config, Arc::new(registry.clone()), Some(registry), metrics)
    }

    /// One node of several over a shared stream store (`serve --redis`): the node's registry
    /// holds this server's tabs, the store every user's stream (see [`wsreg::Node`]).
    /// `node_id` names the node in its logs and in every run id it hands out, so runs started
    /// on two nodes never share an id. Epochs this node proposes carry a boot drawn at random
    /// (unless `config.registry.boot` says otherwise): two processes started in one
    /// millisecond must not propose the same epoch.
    pub fn with_store(
        mut config: ServerConfig,
        node_id: &str,
        store: Arc<dyn wsreg::store::StreamStore>,
        live: tokio::sync::mpsc::UnboundedReceiver<wsreg::store::Live>,
    ) -> Arc<Self> {
        let metrics = Arc::new(Metrics::new());
        let observer: Arc<dyn wsreg::Observer> = Arc::clone(&metrics) as _;
        let node_config = wsreg::NodeConfig {
            registry: config.registry.clone(),
            lease: config.lease,
            ..Default::default()
        };
        config.node = Some(node_id.to_owned());
        let node = wsreg::Node::with_observer(node_config, store, live, observer);
        Self::build(config, Arc::new(node), None, metrics)
    }

    /// The registry, when the server built its own with [`Server::new`] (for inspection, and
    /// for other parts of the backend to emit through).
    pub fn registry(&self) -> Option<&Registry> {
        self.registry.as_ref()
    }

    /// A server over any `backend` (`config.registry` is then the backend's business).
    pub fn with_backend(config: ServerConfig, backend: Arc<dyn Backend>) -> Arc<Self> {
        Self::build(config, backend, None, Arc::new(Metrics::new()))
    }

    fn build(
        config: ServerConfig,
        backend: Arc<dyn Backend>,
        registry: Option<Registry>,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        Arc::new(Self {
            metrics,
            backend,
            registry,
            config,
            runs: AtomicU64::new(0),
            in_flight: Mutex::default(),
            accept_errors: AtomicU64::new(0),
            sockets: AtomicU64::new(0),
            all_closed: tokio::sync::Notify::new(),
            closing: tokio::sync::watch::Sender::new(false),
            draining: std::sync::atomic::AtomicBool::new(false),
            connects: Mutex::default(),
        })
    }

    /// The backend the server registers sockets with.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// Messages queued and not yet handed to a socket, over every user (0 when the backend
    /// cannot say).
    fn queued(&self) -> usize {
        self.backend.inspect().map_or(0, |v| v.queued())
    }

    /// The settings it runs with.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Its metrics (the core's, too, when the server built its own registry).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Prometheus's text format of every metric, with the pending-message gauge read now.
    pub fn render_metrics(&self) -> String {
        self.metrics.set_pending(self.queued());
        self.metrics.render()
    }

    /// Whether it is shutting down (health checks answer 503 from then on).
    pub fn is_closing(&self) -> bool {
        *self.closing.borrow()
    }

    /// Sockets past their handshake whose task has not finished.
    pub fn open_sockets(&self) -> u64 {
        self.sockets.load(Ordering::Acquire)
    }

    /// Wakes when the server starts shutting down.
    pub(crate) fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Counts a socket open while the guard lives.
    pub(crate) fn open_socket(&self) -> OpenSocket<'_> {
        self.metrics.socket_opened();
        OpenSocket::new(&self.sockets, &self.all_closed, &self.metrics)
    }

    /// How many times accepting a connection failed (out of file descriptors, for one); the
    /// server waits a moment and goes on accepting each time.
    pub fn accept_errors(&self) -> u64 {
        self.accept_errors.load(Ordering::Relaxed)
    }

    /// Accepts connections until `shutdown` completes, then drains every queue (up to the
    /// drain timeout) and closes every socket. A failed accept never ends it: at the open-files
    /// limit it waits (10 ms, doubling to 1 s) for sockets to close, and everyone already
    /// connected is served meanwhile.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        tokio::pin!(shutdown);
        let mut backoff = ACCEPT_BACKOFF.0;
        loop {
            let failed = tokio::select! {
                biased;
                _ = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        backoff = ACCEPT_BACKOFF.0;
                        tokio::spawn(Arc::clone(&self).handle(stream));
                        false
                    }
                    Err(_) => true,
                },
            };
            if failed {
                self.accept_errors.fetch_add(1, Ordering::Relaxed);
                self.metrics.accept_failed();
                tracing::warn!(
                    backoff_ms = backoff.as_millis() as u64,
                    "accept failed; backing off"
                );
                tokio::select! {
                    biased;
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF.1);
            }
        }
        // Draining: no run starts any more, and the runs in flight finish (their clients get
        // them whole) and every queue empties, within the drain timeout.
        self.draining.store(true, Ordering::Release);
        let deadline = tokio::time::Instant::now() + self.config.drain_timeout;
        while tokio::time::Instant::now() < deadline
            && (self.runs_in_flight() > 0 || self.queued() > 0)
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.backend.shutdown();
        self.closing.send_replace(true);
        // Every socket is told (1001, going away) and its task finishes before this returns, so
        // a process that exits next does not cut them off; bounded by the drain timeout again.
        let deadline = tokio::time::Instant::now() + self.config.drain_timeout;
        loop {
            let closed = self.all_closed.notified();
            tokio::pin!(closed);
            closed.as_mut().enable();
            if self.sockets.load(Ordering::Acquire) == 0 {
                break;
            }
            tokio::select! {
                biased;
                _ = &mut closed => {}
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        Ok(())
    }

    async fn handle(self: Arc<Self>, stream: TcpStream) {
        // Events are small frames written as they happen: without this, each one written while
        // the previous is unacknowledged waits for the client's delayed ACK (about 40 ms).
        let _ = stream.set_nodelay(true);
        let mut asked: Result<Handshake, Refusal> = Err(Refusal::Broken);
        let secret = self.config.secret.clone();
        let now_ms = self.config.now_ms;
        // The signature is tungstenite's handshake callback; its error type is an HTTP response.
        // The token's expiry is checked against the clock when the request arrives, not when the
        // TCP connection was accepted.
        #[allow(clippy::result_large_err)]
        let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
            // The endpoint is `/` (and `/ws`, where the axum path mounts it): any other path,
            // `/ws/../ws` included, is not upgraded, as axum's router would not route it.
            if !ENDPOINTS.contains(&req.uri().path()) {
                asked = Err(Refusal::NotFound);
                let mut response = ErrorResponse::new(Some("not found".to_owned()));
                *response.status_mut() = StatusCode::NOT_FOUND;
                return Err(response);
            }
            match authenticate(req.uri().query(), &secret, now_ms()) {
                Ok(handshake) if !self.may_connect(handshake.ctx.user_id()) => {
                    asked = Err(Refusal::TooManyConnects);
                    let mut response = ErrorResponse::new(Some(TOO_MANY_CONNECTS.to_owned()));
                    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
                    Err(response)
                }
                Ok(handshake) => {
                    asked = Ok(handshake);
                    Ok(resp)
                }
                Err(refused) => {
                    asked = Err(refused.reason);
                    let mut response = ErrorResponse::new(Some(refused.why));
                    *response.status_mut() =
                        StatusCode::from_u16(refused.status).unwrap_or(StatusCode::BAD_REQUEST);
                    Err(response)
                }
            }
        };
        let limits = WebSocketConfig::default()
            .max_frame_size(Some(self.config.max_frame_bytes))
            .max_message_size(Some(self.config.max_frame_bytes))
            .read_buffer_size(READ_BUFFER_BYTES);
        // The head's size is held to what the axum path holds it to (timed as a whole below).
        let stream = crate::head::RequestHead::new(stream, None);
        let handshake =
            tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(limits));
        let ws = match tokio::time::timeout(self.config.handshake_timeout, handshake).await {
            Ok(Ok(ws)) => ws,
            // Refused, broken or too slow a handshake: nothing was registered.
            Ok(Err(_)) => {
                self.metrics.refused(asked.err().unwrap_or(Refusal::Broken));
                return;
            }
            Err(_) => {
                self.metrics.refused(Refusal::Timeout);
                return;
            }
        };
        let Ok(asked) = asked else {
            return;
        };
        let (write, read) = ws.split();
        self.session(asked, write, read).await;
    }

    /// Whether `user` may connect now (its connect budget has a token). Budgets full again are
    /// forgotten once there are many (see `ConnectBudgets`).
    pub(crate) fn may_connect(&self, user: &str) -> bool {
        let now = tokio::time::Instant::now();
        let rate = self.config.max_connects_per_user_per_second;
        let mut connects = self.connects.lock().unwrap_or_else(PoisonError::into_inner);
        if connects.budgets.len() >= connects.prune_at {
            connects.budgets.retain(|_, budget| !budget.is_full(now));
            connects.prune_at = (connects.budgets.len() * 2).max(4096);
        }
        let budget = connects
            .budgets
            .entry(user.to_owned())
            .or_insert_with(|| MessageBudget::new(rate, now));
        budget.take(now) == crate::rate::Verdict::Take
    }

    /// Demo runs in flight, over every user.
    fn runs_in_flight(&self) -> usize {
        let in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        in_flight.values().sum()
    }

    /// The demo agent: a full run with `tools` nested tool calls, `agent_step` apart. Refused,
    /// starting nothing, when the user already has `max_runs_per_user` in flight, or once a
    /// graceful shutdown began.
    pub(crate) fn start_run(
        self: &Arc<Self>,
        ctx: &UserContext,
        tools: u8,
    ) -> Result<(), RunRefused> {
        {
            let mut in_flight = self
                .in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if self.draining.load(Ordering::Acquire) {
                return Err(RunRefused::ShuttingDown);
            }
            let n = in_flight.entry(ctx.user_id().to_owned()).or_insert(0);
            if *n >= self.config.max_runs_per_user {
                return Err(RunRefused::Limit);
            }
            *n += 1;
        }
        let n = self.runs.fetch_add(1, Ordering::Relaxed) + 1;
        let run_id = match &self.config.node {
            Some(node) => format!("{}/{node}-run-{n}", ctx.user_id()),
            None => format!("{}/run-{n}", ctx.user_id()),
        };
        let events = AgentEvent::example_run(&run_id, tools, 1);
        let (server, ctx, step) = (Arc::clone(self), ctx.clone(), self.config.agent_step);
        tokio::spawn(async move {
            for (i, event) in events.into_iter().enumerate() {
                if i > 0 {
                    tokio::time::sleep(step).await;
                }
                if server.backend.emit(&ctx, event).await.is_err() {
                    break; // the user is gone
                }
            }
            let mut in_flight = server
                .in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(n) = in_flight.get_mut(ctx.user_id()) {
                *n -= 1;
                if *n == 0 {
                    in_flight.remove(ctx.user_id());
                }
            }
        });
        Ok(())
    }
}
