//! The server: a TCP listener, a WebSocket handshake that authenticates from `?token=`, one
//! core connection per socket, a read loop for client messages, and a graceful shutdown that
//! drains every queue before closing.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use wsreg::{
    AgentEvent, Envelope, Registry, RegistryConfig, SendFuture, Sink, SinkError, UserContext,
};

use crate::auth;
use crate::protocol::{parse, ClientMessage, ServerMessage};

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
    /// The clock tokens are checked against, in ms since the epoch.
    pub now_ms: fn() -> u64,
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
            now_ms,
        }
    }
}

/// A running server's shared state.
pub struct Server {
    config: ServerConfig,
    registry: Registry,
    runs: AtomicU64,
    /// Flipped when the server shuts down; every socket's read loop then closes its socket.
    closing: tokio::sync::watch::Sender<bool>,
}

/// The core's sink for one socket: frames go to that socket's writer task.
struct FrameSink(mpsc::Sender<Message>);

impl Sink for FrameSink {
    fn send(&mut self, envelope: Envelope) -> SendFuture<'_> {
        let frame = Message::text(ServerMessage::from_envelope(&envelope).to_json());
        Box::pin(async move {
            self.0
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

fn token_of(req: &Request) -> Option<String> {
    let query = req.uri().query()?;
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .map(str::to_owned)
}

impl Server {
    /// A server with its own registry.
    pub fn new(config: ServerConfig) -> Arc<Self> {
        Arc::new(Self {
            registry: Registry::new(config.registry.clone()),
            config,
            runs: AtomicU64::new(0),
            closing: tokio::sync::watch::Sender::new(false),
        })
    }

    /// The registry (for inspection, and for other parts of the backend to emit through).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Accepts connections until `shutdown` completes, then drains every queue (up to the
    /// drain timeout) and closes every socket.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                _ = &mut shutdown => break,
                accepted = listener.accept() => {
                    let (stream, _) = accepted?;
                    tokio::spawn(Arc::clone(&self).handle(stream));
                }
            }
        }
        let deadline = tokio::time::Instant::now() + self.config.drain_timeout;
        while tokio::time::Instant::now() < deadline {
            let queued: usize = self
                .registry
                .inspect()
                .managers
                .iter()
                .flat_map(|m| m.connections.iter().map(|c| c.1))
                .sum();
            if queued == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.registry.shutdown();
        self.closing.send_replace(true);
        Ok(())
    }

    async fn handle(self: Arc<Self>, stream: TcpStream) {
        let mut ctx: Option<UserContext> = None;
        let secret = self.config.secret.clone();
        let now = (self.config.now_ms)();
        // The signature is tungstenite's handshake callback; its error type is an HTTP response.
        #[allow(clippy::result_large_err)]
        let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
            let verified = token_of(req)
                .ok_or(auth::AuthError::Missing)
                .and_then(|t| auth::verify(&secret, &t, now));
            match verified {
                Ok(c) => {
                    ctx = Some(c);
                    Ok(resp)
                }
                Err(e) => {
                    let mut refusal = ErrorResponse::new(Some(format!("unauthorized: {e}")));
                    *refusal.status_mut() = StatusCode::UNAUTHORIZED;
                    Err(refusal)
                }
            }
        };
        let limits = WebSocketConfig::default()
            .max_frame_size(Some(self.config.max_frame_bytes))
            .max_message_size(Some(self.config.max_frame_bytes));
        let Ok(ws) =
            tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(limits)).await
        else {
            return; // refused or broken handshake: nothing was registered
        };
        let Some(ctx) = ctx else { return };
        let (mut write, mut read) = ws.split();
        let (tx, mut rx) = mpsc::channel::<Message>(64);
        tokio::spawn(async move {
            while let Some(frame) = rx.recv().await {
                let last = matches!(frame, Message::Close(_));
                if write.send(frame).await.is_err() || last {
                    break;
                }
            }
            let _ = write.close().await;
        });
        let welcome = ServerMessage::Welcome {
            user: ctx.user_id().to_owned(),
        };
        if tx.send(Message::text(welcome.to_json())).await.is_err() {
            return;
        }
        let conn = match self.registry.connect(&ctx, FrameSink(tx.clone())) {
            Ok(conn) => conn,
            Err(e) => {
                let refused = ServerMessage::Error {
                    code: "refused".into(),
                    message: e.to_string(),
                };
                let _ = tx.send(Message::text(refused.to_json())).await;
                let _ = tx.send(close(CloseCode::Again, "limit reached")).await;
                return;
            }
        };
        let mut closing = self.closing.subscribe();
        loop {
            let next = tokio::select! {
                biased;
                _ = closing.wait_for(|c| *c) => None,
                frame = read.next() => Some(frame),
            };
            let frame = match next {
                None => {
                    let _ = tx
                        .send(close(CloseCode::Away, "server shutting down"))
                        .await;
                    break;
                }
                Some(None) => break,
                Some(Some(frame)) => frame,
            };
            let reply = match frame {
                Ok(Message::Text(text)) => match parse(&text) {
                    Ok(ClientMessage::Ping) => Some(ServerMessage::Pong),
                    Ok(ClientMessage::StartRun { tools }) if tools <= 8 => {
                        self.start_run(&ctx, tools);
                        None
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
                    let _ = tx.send(close(CloseCode::Size, &e.to_string())).await;
                    break;
                }
                Err(_) => break,
            };
            if let Some(reply) = reply {
                if tx.send(Message::text(reply.to_json())).await.is_err() {
                    break;
                }
            }
        }
        let _ = conn.close(); // already gone if the socket failed first
    }

    /// The demo agent: a full run with `tools` nested tool calls, `agent_step` apart.
    fn start_run(&self, ctx: &UserContext, tools: u8) {
        let n = self.runs.fetch_add(1, Ordering::Relaxed) + 1;
        let run_id = format!("{}/run-{n}", ctx.user_id());
        let events = AgentEvent::example_run(&run_id, tools, 1);
        let (registry, key, step) = (
            self.registry.clone(),
            ctx.key().clone(),
            self.config.agent_step,
        );
        tokio::spawn(async move {
            for event in events {
                if registry.emit(&key, event).is_err() {
                    return; // the user is gone
                }
                tokio::time::sleep(step).await;
            }
        });
    }
}
