//! The server: a TCP listener, a WebSocket handshake that authenticates from `?token=`, one
//! core connection per socket, a read loop for client messages, and a graceful shutdown that
//! drains every queue before closing.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use wsreg::{
    AgentEvent, Envelope, Epoch, Position, Registry, RegistryConfig, SendFuture, Sink, SinkError,
    UserContext,
};

use crate::auth;
use crate::hub::Hub;
use crate::protocol::{parse, refusal, ClientMessage, ServerMessage};

/// Each socket's read buffer. tungstenite's default (128 KiB, zeroed when the socket opens)
/// suits few sockets with heavy reads; clients here send small control messages, and a server
/// holds many sockets.
pub const READ_BUFFER_BYTES: usize = 4 * 1024;

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
    /// How long a connection may take from its TCP accept to a completed WebSocket handshake;
    /// one that has not finished by then is dropped, so silent connections cannot pile up.
    pub handshake_timeout: Duration,
    /// The clock tokens are checked against, in ms since the epoch, read when the handshake's
    /// request arrives.
    pub now_ms: fn() -> u64,
    /// Names this server process in every welcome, so a client can tell that the server
    /// restarted (and that the recovery queues of the old process are gone). [`ServerConfig::new`]
    /// reads it from the clock.
    pub boot: u64,
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
            write_timeout: Duration::from_secs(30),
            max_runs_per_user: 4,
            now_ms,
            boot: now_ms(),
        }
    }
}

/// What a socket's read loop woke up for.
enum Next<F> {
    Shutdown,
    Beat,
    Frame(Option<F>),
}

/// A running server's shared state, over the real core ([`Registry`], the default) or any
/// other [`Hub`].
pub struct Server<H: Hub = Registry> {
    config: ServerConfig,
    hub: H,
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
}

/// Counts a socket as open while it lives.
struct OpenSocket<'a> {
    count: &'a AtomicU64,
    all_closed: &'a tokio::sync::Notify,
}

impl<'a> OpenSocket<'a> {
    fn new(count: &'a AtomicU64, all_closed: &'a tokio::sync::Notify) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Self { count, all_closed }
    }
}

impl Drop for OpenSocket<'_> {
    fn drop(&mut self) {
        if self.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.all_closed.notify_waiters();
        }
    }
}

/// The core's sink for one socket: frames go to that socket's writer task, after the welcome
/// (which names the connection, so it can only be written once the socket is registered).
struct FrameSink {
    frames: mpsc::Sender<Message>,
    welcomed: Option<oneshot::Receiver<()>>,
}

impl Sink for FrameSink {
    fn send(&mut self, envelope: Envelope) -> SendFuture<'_> {
        let frame = Message::text(ServerMessage::from_envelope(&envelope).to_json());
        Box::pin(async move {
            if let Some(welcomed) = &mut self.welcomed {
                // Cancel-safe: the gate is only dropped once it has opened.
                let _ = welcomed.await;
                self.welcomed = None;
            }
            self.frames
                .send(frame)
                .await
                .map_err(|_| SinkError("the socket is gone".into()))
        })
    }
}

fn close(code: CloseCode, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.to_owned().into(),
    }))
}

/// A query parameter of the handshake request, percent-decoded.
fn param(req: &Request, name: &str) -> Option<String> {
    form_urlencoded::parse(req.uri().query()?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// What a handshake asks for: who (a verified token, 401 if not), in which `thread` (400 if
/// the core refuses it), and from where in the user's stream (`since` and `epoch`, together or
/// not at all; 400 if malformed).
struct Handshake {
    ctx: UserContext,
    resume: Option<Position>,
}

fn authenticate(
    req: &Request,
    secret: &[u8],
    now_ms: u64,
) -> Result<Handshake, (StatusCode, String)> {
    let token = param(req, "token").ok_or(auth::AuthError::Missing);
    let ctx = token
        .and_then(|t| auth::verify(secret, &t, now_ms))
        .map_err(|e| (StatusCode::UNAUTHORIZED, format!("unauthorized: {e}")))?;
    let bad = |why: String| (StatusCode::BAD_REQUEST, why);
    let ctx = match param(req, "thread") {
        Some(thread) => ctx
            .with_thread_id(&thread)
            .map_err(|e| bad(format!("bad thread: {e}")))?,
        None => ctx,
    };
    let resume = match (param(req, "since"), param(req, "epoch")) {
        (None, None) => None,
        (Some(since), Some(epoch)) => {
            let seq = since
                .parse::<u64>()
                .map_err(|_| bad(format!("bad since: {since:?} is not a sequence number")))?;
            let epoch = epoch
                .parse::<Epoch>()
                .map_err(|e| bad(format!("bad epoch: {e}")))?;
            Some(Position::new(epoch, seq))
        }
        _ => return Err(bad("since and epoch go together".into())),
    };
    Ok(Handshake { ctx, resume })
}

impl Server {
    /// A server with its own registry, whose stream epochs carry this server's `boot` (unless
    /// `config.registry.boot` says otherwise), so a restart changes every epoch.
    pub fn new(config: ServerConfig) -> Arc<Self> {
        let mut registry = config.registry.clone();
        registry.boot.get_or_insert(config.boot);
        Self::with_hub(config, Registry::new(registry))
    }

    /// The registry (for inspection, and for other parts of the backend to emit through).
    pub fn registry(&self) -> &Registry {
        &self.hub
    }
}

impl<H: Hub> Server<H> {
    /// A server over `hub` (`config.registry` is then the hub's business).
    pub fn with_hub(config: ServerConfig, hub: H) -> Arc<Self> {
        Arc::new(Self {
            hub,
            config,
            runs: AtomicU64::new(0),
            in_flight: Mutex::default(),
            accept_errors: AtomicU64::new(0),
            sockets: AtomicU64::new(0),
            all_closed: tokio::sync::Notify::new(),
            closing: tokio::sync::watch::Sender::new(false),
        })
    }

    /// The hub the server registers sockets with.
    pub fn hub(&self) -> &H {
        &self.hub
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
                tokio::select! {
                    biased;
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF.1);
            }
        }
        let deadline = tokio::time::Instant::now() + self.config.drain_timeout;
        while tokio::time::Instant::now() < deadline && self.hub.queued() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.hub.shutdown();
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
        let mut asked: Option<Handshake> = None;
        let secret = self.config.secret.clone();
        let now_ms = self.config.now_ms;
        // The signature is tungstenite's handshake callback; its error type is an HTTP response.
        // The token's expiry is checked against the clock when the request arrives, not when the
        // TCP connection was accepted.
        #[allow(clippy::result_large_err)]
        let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
            match authenticate(req, &secret, now_ms()) {
                Ok(handshake) => {
                    asked = Some(handshake);
                    Ok(resp)
                }
                Err((status, why)) => {
                    let mut refusal = ErrorResponse::new(Some(why));
                    *refusal.status_mut() = status;
                    Err(refusal)
                }
            }
        };
        let limits = WebSocketConfig::default()
            .max_frame_size(Some(self.config.max_frame_bytes))
            .max_message_size(Some(self.config.max_frame_bytes))
            .read_buffer_size(READ_BUFFER_BYTES);
        let handshake =
            tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(limits));
        let Ok(Ok(ws)) = tokio::time::timeout(self.config.handshake_timeout, handshake).await
        else {
            return; // refused, broken or too slow a handshake: nothing was registered
        };
        let Some(Handshake { ctx, resume }) = asked else {
            return;
        };
        let _open = OpenSocket::new(&self.sockets, &self.all_closed);
        let (mut write, mut read) = ws.split();
        let (tx, mut rx) = mpsc::channel::<Message>(64);
        let write_timeout = self.config.write_timeout;
        let writer = tokio::spawn(async move {
            while let Some(frame) = rx.recv().await {
                let last = matches!(frame, Message::Close(_));
                // A client that stopped reading blocks the write: give up on the socket.
                let sent = tokio::time::timeout(write_timeout, write.send(frame)).await;
                if !matches!(sent, Ok(Ok(()))) || last {
                    break;
                }
            }
            let _ = tokio::time::timeout(write_timeout, write.close()).await;
        });
        let (open, welcomed) = oneshot::channel();
        let sink = FrameSink {
            frames: tx.clone(),
            welcomed: Some(welcomed),
        };
        let registered = match self.hub.connect(&ctx, Box::new(sink), resume).await {
            Ok(registered) => registered,
            Err(e) => {
                let _ = tx.send(Message::text(refusal(&e).to_json())).await;
                let _ = tx.send(close(CloseCode::Again, "refused")).await;
                return;
            }
        };
        let welcome = ServerMessage::Welcome {
            user: ctx.user_id().to_owned(),
            key: registered.key.as_str().to_owned(),
            conn: registered.id,
            manager: registered.manager,
            boot: self.config.boot,
            epoch: registered.from.epoch,
            seq: registered.from.seq,
            recovered: registered.recovered,
        };
        let welcomed = tx.send(Message::text(welcome.to_json())).await.is_ok();
        let _ = open.send(());
        let conn = registered.conn;
        if !welcomed {
            let _ = self.hub.disconnect(&conn).await;
            return;
        }
        let mut closing = self.closing.subscribe();
        let (beat, idle) = (self.config.heartbeat, self.config.idle_timeout);
        let mut heard = tokio::time::Instant::now();
        let mut next_beat = heard + beat;
        loop {
            let next = tokio::select! {
                biased;
                _ = closing.wait_for(|c| *c) => Next::Shutdown,
                _ = tokio::time::sleep_until(next_beat) => Next::Beat,
                frame = read.next() => Next::Frame(frame),
            };
            let frame = match next {
                Next::Shutdown => {
                    let _ = tx
                        .send(close(CloseCode::Away, "server shutting down"))
                        .await;
                    break;
                }
                Next::Beat if heard.elapsed() >= idle => {
                    let _ = tx.try_send(close(CloseCode::Policy, "no heartbeat"));
                    break;
                }
                Next::Beat => {
                    next_beat += beat;
                    // Never waits: behind a client that stopped reading the queue is full, and
                    // this loop must stay free to notice the silence and close the socket.
                    let _ = tx.try_send(Message::Ping(Vec::new().into()));
                    continue;
                }
                Next::Frame(None) => break,
                Next::Frame(Some(frame)) => frame,
            };
            heard = tokio::time::Instant::now();
            let reply = match frame {
                Ok(Message::Text(text)) => match parse(&text) {
                    Ok(ClientMessage::Ping {}) => Some(ServerMessage::Pong),
                    // Leaving: the hub stops handing this socket messages; those it already
                    // handed over are still written, then the socket closes.
                    Ok(ClientMessage::Close {}) => break,
                    Ok(ClientMessage::StartRun { tools }) if tools <= 8 => {
                        if self.start_run(&ctx, tools) {
                            None
                        } else {
                            Some(ServerMessage::Error {
                                code: "run_limit".into(),
                                message: format!(
                                    "at most {} runs in flight per user",
                                    self.config.max_runs_per_user
                                ),
                            })
                        }
                    }
                    Ok(ClientMessage::StartRun { tools }) => Some(ServerMessage::Error {
                        code: "bad_request".into(),
                        message: format!("tools must be at most 8, not {tools}"),
                    }),
                    Err(error) => Some(error),
                },
                Ok(Message::Binary(_)) => Some(ServerMessage::Error {
                    code: "bad_request".into(),
                    message: "binary frames are not part of the protocol".into(),
                }),
                Ok(Message::Close(_)) => break,
                Ok(_) => None,
                Err(WsError::Capacity(e)) => {
                    let _ = tx.try_send(close(CloseCode::Size, &e.to_string()));
                    break;
                }
                Err(WsError::Protocol(e)) => {
                    let _ = tx.try_send(close(CloseCode::Protocol, &e.to_string()));
                    break;
                }
                Err(WsError::Utf8(e)) => {
                    let _ = tx.try_send(close(CloseCode::Invalid, &e));
                    break;
                }
                Err(_) => break,
            };
            if let Some(reply) = reply {
                let sent = tokio::time::timeout(
                    self.config.write_timeout,
                    tx.send(Message::text(reply.to_json())),
                );
                if !matches!(sent.await, Ok(Ok(()))) {
                    break; // the client sends but does not read its replies
                }
            }
        }
        drop(tx);
        let _ = self.hub.disconnect(&conn).await; // already gone if the socket failed first
                                                  // The writer ends once it wrote the close frame (or gave up on the socket).
        let _ = writer.await;
    }

    /// The demo agent: a full run with `tools` nested tool calls, `agent_step` apart. Returns
    /// false, starting nothing, when the user already has `max_runs_per_user` in flight.
    fn start_run(self: &Arc<Self>, ctx: &UserContext, tools: u8) -> bool {
        {
            let mut in_flight = self
                .in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let n = in_flight.entry(ctx.user_id().to_owned()).or_insert(0);
            if *n >= self.config.max_runs_per_user {
                return false;
            }
            *n += 1;
        }
        let n = self.runs.fetch_add(1, Ordering::Relaxed) + 1;
        let run_id = format!("{}/run-{n}", ctx.user_id());
        let events = AgentEvent::example_run(&run_id, tools, 1);
        let (server, ctx, step) = (Arc::clone(self), ctx.clone(), self.config.agent_step);
        tokio::spawn(async move {
            for (i, event) in events.into_iter().enumerate() {
                if i > 0 {
                    tokio::time::sleep(step).await;
                }
                if server.hub.emit(&ctx, event).is_err() {
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
        true
    }
}
