//! One authenticated socket, whatever carries its frames (the server's own tungstenite listener,
//! or an axum upgrade): registered with the hub, its stream written by a writer task behind a
//! bounded queue, client messages read, heartbeats, budgets and timeouts applied.

use std::sync::Arc;

use futures_util::{Sink as FrameSink, SinkExt, Stream, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use wsreg::{Envelope, SendFuture, Sink, SinkError};

use crate::handshake::Handshake;
use crate::metrics::{Close, Refusal};
use crate::protocol::{connect_timeout, parse, refusal, ClientMessage, ServerMessage};
use crate::rate::{MessageBudget, Verdict};
use crate::server::{RunRefused, Server};

/// Frames waiting for a socket's writer.
const QUEUE: usize = 64;

/// A frame in a socket's queue, boxed: tokio's channel allocates its slots 32 at a time when
/// it is made, and 32 boxes cost a sixth of 32 messages in every idle socket.
type Queued = Box<Message>;

/// After the server closes a socket, how long it goes on reading (and discarding) what the
/// client still sends, waiting for its close reply. Closing TCP with unread input makes the
/// kernel reset the connection, and the client would lose the frames still in flight to it:
/// the close code and its reason first of all.
const LINGER: std::time::Duration = std::time::Duration::from_secs(1);

/// What a socket's read loop woke up for.
enum Next<F> {
    Shutdown,
    /// The registry let the connection go on its own (a node whose stream was lost, say).
    Ended,
    Beat,
    Frame(Option<F>),
}

/// The core's sink for one socket: frames go to that socket's writer task, after the welcome
/// (which names the connection, so it can only be written once the socket is registered).
struct Frames {
    frames: mpsc::Sender<Queued>,
    welcomed: Option<oneshot::Receiver<()>>,
    /// Dropped with the sink: the registry let the connection go.
    _ended: oneshot::Sender<()>,
}

impl Sink for Frames {
    fn send(&mut self, envelope: Envelope) -> SendFuture<'_> {
        let frame = Box::new(Message::text(
            ServerMessage::from_envelope(&envelope).to_json(),
        ));
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

pub(crate) fn close(code: CloseCode, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.to_owned().into(),
    }))
}

fn error(code: &str, message: String) -> ServerMessage {
    ServerMessage::Error {
        code: code.into(),
        message,
    }
}

impl Server {
    /// Serves one upgraded socket until either side ends it. `write` and `read` are its two
    /// halves; the socket is counted open (shutdown waits for it) until its close frame is
    /// written or the writer gave up.
    pub(crate) async fn session<W, R>(self: Arc<Self>, asked: Handshake, mut write: W, mut read: R)
    where
        W: FrameSink<Message, Error = WsError> + Unpin + Send + 'static,
        R: Stream<Item = Result<Message, WsError>> + Unpin + Send,
    {
        let Handshake { ctx, resume } = asked;
        let _open = self.open_socket();
        let config = self.config();
        let (tx, mut rx) = mpsc::channel::<Queued>(QUEUE);
        let (write_timeout, metrics) = (config.write_timeout, Arc::clone(self.metrics()));
        let writer = tokio::spawn(async move {
            while let Some(frame) = rx.recv().await {
                let last = matches!(*frame, Message::Close(_));
                // A client that stopped reading blocks the write: give up on the socket.
                let sent = tokio::time::timeout(write_timeout, write.send(*frame)).await;
                if sent.is_err() {
                    metrics.closed(Close::WriteTimeout);
                }
                if !matches!(sent, Ok(Ok(()))) || last {
                    break;
                }
            }
            let _ = tokio::time::timeout(write_timeout, write.close()).await;
        });
        let (open, welcomed) = oneshot::channel();
        let (ended, mut let_go) = oneshot::channel();
        let sink = Frames {
            frames: tx.clone(),
            welcomed: Some(welcomed),
            _ended: ended,
        };
        let connecting = self.backend().connect(&ctx, Box::new(sink), resume);
        let answer = match config.connect_timeout {
            Some(after) => tokio::time::timeout(after, connecting)
                .await
                .map_err(|_| after),
            None => Ok(connecting.await),
        };
        let refused = match answer {
            Ok(Ok(registered)) => Ok(registered),
            Ok(Err(e)) => Err((Refusal::Core, refusal(&e))),
            // The call is dropped: the registry lets it go (the sink went with it).
            Err(after) => Err((Refusal::ConnectTimeout, connect_timeout(after))),
        };
        let registered = match refused {
            Ok(registered) => registered,
            Err((why, frame)) => {
                self.metrics().refused(why);
                let _ = tx.send(Box::new(Message::text(frame.to_json()))).await;
                let _ = tx.send(Box::new(close(CloseCode::Again, "refused"))).await;
                drop(tx);
                let _ = writer.await;
                return;
            }
        };
        let welcome = ServerMessage::Welcome {
            user: ctx.user_id().to_owned(),
            key: registered.key.as_str().to_owned(),
            conn: registered.conn,
            manager: registered.manager,
            boot: config.boot,
            epoch: registered.from.epoch,
            seq: registered.from.seq,
            recovered: registered.recovered,
        };
        let welcomed = tx
            .send(Box::new(Message::text(welcome.to_json())))
            .await
            .is_ok();
        let _ = open.send(());
        let conn = registered.handle;
        if !welcomed {
            let _ = self.backend().close(&conn).await;
            return;
        }
        let mut closing = self.closing();
        let (beat, idle) = (config.heartbeat, config.idle_timeout);
        let mut heard = tokio::time::Instant::now();
        let mut next_beat = heard + beat;
        let mut budget = MessageBudget::new(config.max_messages_per_second, heard);
        // Set when the server closes the socket (not the client): then it lingers.
        let mut closed_by_us = true;
        loop {
            let next = tokio::select! {
                biased;
                _ = closing.wait_for(|c| *c) => Next::Shutdown,
                _ = &mut let_go => Next::Ended,
                _ = tokio::time::sleep_until(next_beat) => Next::Beat,
                frame = read.next() => Next::Frame(frame),
            };
            let frame = match next {
                Next::Shutdown => {
                    self.metrics().closed(Close::Shutdown);
                    let _ = tx
                        .send(Box::new(close(CloseCode::Away, "server shutting down")))
                        .await;
                    break;
                }
                Next::Ended => {
                    // What the registry handed over is written first (the queue is in order);
                    // then the client is told to come back: it resumes from its last position
                    // and is told what it can no longer get.
                    self.metrics().closed(Close::Ended);
                    let _ = tx
                        .send(Box::new(close(
                            CloseCode::Restart,
                            "the stream moved: resume",
                        )))
                        .await;
                    break;
                }
                Next::Beat if heard.elapsed() >= idle => {
                    self.metrics().closed(Close::Heartbeat);
                    let _ = tx.try_send(Box::new(close(CloseCode::Policy, "no heartbeat")));
                    break;
                }
                Next::Beat => {
                    next_beat += beat;
                    // Never waits: behind a client that stopped reading the queue is full, and
                    // this loop must stay free to notice the silence and close the socket.
                    let _ = tx.try_send(Box::new(Message::Ping(Vec::new().into())));
                    continue;
                }
                Next::Frame(None) => {
                    closed_by_us = false;
                    break;
                }
                Next::Frame(Some(frame)) => frame,
            };
            heard = tokio::time::Instant::now();
            // Unsolicited pongs cost the server a read like any frame: they count too (the one
            // pong a client owes each heartbeat is far inside the budget).
            let counted = matches!(
                frame,
                Ok(Message::Text(_) | Message::Binary(_) | Message::Ping(_) | Message::Pong(_))
            );
            if counted {
                match budget.take(heard) {
                    Verdict::Take => {}
                    Verdict::Refuse { first } => {
                        self.metrics().rate_limited();
                        if first {
                            let why = format!(
                                "at most {} messages a second; this one was ignored",
                                config.max_messages_per_second
                            );
                            let _ = tx.try_send(Box::new(Message::text(
                                error("rate_limited", why).to_json(),
                            )));
                        }
                        continue;
                    }
                    Verdict::Close => {
                        self.metrics().rate_limited();
                        self.metrics().closed(Close::Rate);
                        let _ = tx.try_send(Box::new(close(CloseCode::Policy, "message rate")));
                        break;
                    }
                }
            }
            let reply = match frame {
                Ok(Message::Text(text)) => match parse(&text) {
                    Ok(ClientMessage::Ping {}) => Some(ServerMessage::Pong),
                    // Leaving: the hub stops handing this socket messages; those it already
                    // handed over are still written, then the socket closes.
                    Ok(ClientMessage::Close {}) => {
                        closed_by_us = false;
                        break;
                    }
                    Ok(ClientMessage::StartRun { tools }) if tools <= 8 => {
                        match self.start_run(&ctx, tools) {
                            Ok(()) => None,
                            Err(RunRefused::Limit) => {
                                self.metrics().run_refused();
                                let why = format!(
                                    "at most {} runs in flight per user",
                                    config.max_runs_per_user
                                );
                                Some(error("run_limit", why))
                            }
                            Err(RunRefused::ShuttingDown) => Some(error(
                                "shutting_down",
                                "the server is shutting down: runs in flight finish, none starts"
                                    .into(),
                            )),
                        }
                    }
                    Ok(ClientMessage::StartRun { tools }) => Some(error(
                        "bad_request",
                        format!("tools must be at most 8, not {tools}"),
                    )),
                    Err(error) => Some(error),
                },
                Ok(Message::Binary(_)) => Some(error(
                    "bad_request",
                    "binary frames are not part of the protocol".into(),
                )),
                Ok(Message::Close(_)) => {
                    closed_by_us = false;
                    break;
                }
                Ok(_) => None,
                Err(e) => {
                    let code = match &e {
                        WsError::Capacity(_) => Some(CloseCode::Size),
                        WsError::Protocol(_) => Some(CloseCode::Protocol),
                        WsError::Utf8(_) => Some(CloseCode::Invalid),
                        _ => None,
                    };
                    if let Some(code) = code {
                        self.metrics().closed(Close::Protocol);
                        let _ = tx.try_send(Box::new(close(code, &e.to_string())));
                    }
                    closed_by_us = code.is_some();
                    break;
                }
            };
            if let Some(reply) = reply {
                let sent = tokio::time::timeout(
                    config.write_timeout,
                    tx.send(Box::new(Message::text(reply.to_json()))),
                );
                if !matches!(sent.await, Ok(Ok(()))) {
                    break; // the client sends but does not read its replies
                }
            }
        }
        // Already gone if the socket failed first. The socket ends only once the close
        // returned (the writer runs until every sender is dropped): a client that saw its
        // socket end may connect again at once, and over many nodes the slot this connection
        // held in the store must be back by then.
        let _ = self.backend().close(&conn).await;
        drop(tx);
        if closed_by_us {
            let drain = async { while let Some(Ok(_)) = read.next().await {} };
            let _ = tokio::time::timeout(LINGER, drain).await;
        }
        // The writer ends once it wrote the close frame (or gave up on the socket).
        let _ = writer.await;
    }
}
