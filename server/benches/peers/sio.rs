//! socketioxide as a server of the bench, and the bench's socket.io client.
//!
//! The server: each user (from a signed token in the socket.io `auth` payload) joins a room of
//! its own; `start_run` runs the demo agent, whose events get the user's next number and are
//! emitted to the room, as `msg` events carrying the same JSON frames the wsreg protocol sends.
//!
//! The client speaks socket.io v5 over Engine.IO v4 on a WebSocket from the first request (as
//! socket.io clients do with `transports: ["websocket"]`): the open packet, a connect packet
//! with the auth payload, event packets, and the pong owed to each ping.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use socketioxide::extract::{SocketRef, TryData};
use socketioxide::SocketIo;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use wsreg::{AgentEvent, Epoch};
use wsreg_server::protocol::ServerMessage;

/// The server's state: each user's last number, the runs started, the agent's step.
struct Hub {
    seqs: Mutex<HashMap<String, u64>>,
    runs: std::sync::atomic::AtomicU64,
    secret: &'static [u8],
    step: Duration,
}

static HUB: OnceLock<Hub> = OnceLock::new();

#[derive(Deserialize)]
struct Auth {
    token: String,
}

pub async fn serve(
    listener: TcpListener,
    secret: &'static [u8],
    step: Duration,
    stop: impl Future<Output = ()> + Send + 'static,
) {
    let _ = HUB.set(Hub {
        seqs: Mutex::default(),
        runs: Default::default(),
        secret,
        step,
    });
    let (layer, io) = SocketIo::builder().build_layer();
    io.ns("/", on_connect);
    let app = axum::Router::new().layer(layer);
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await;
}

async fn on_connect(s: SocketRef, TryData(auth): TryData<Auth>) {
    let hub = HUB.get().expect("the hub is set before serving");
    let user = auth
        .ok()
        .and_then(|a| wsreg_server::auth::verify(hub.secret, &a.token, 0).ok());
    let Some(ctx) = user else {
        let _ = s.disconnect();
        return;
    };
    let user = ctx.user_id().to_owned();
    s.join(user.clone());
    let welcome = ServerMessage::Welcome {
        user: user.clone(),
        key: user.clone(),
        conn: 0,
        manager: 0,
        boot: 0,
        epoch: Epoch::new(0, 0),
        seq: 0,
        recovered: false,
    };
    let _ = s.emit("msg", &welcome);
    s.on("start_run", move |io: SocketIo| {
        let user = user.clone();
        async move {
            let n = hub.runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let events = AgentEvent::example_run(&format!("{user}/run-{n}"), 2, 1);
            for (i, event) in events.into_iter().enumerate() {
                if i > 0 {
                    tokio::time::sleep(hub.step).await;
                }
                let seq = {
                    let mut seqs = hub.seqs.lock().expect("hub");
                    let seq = seqs.entry(user.clone()).or_default();
                    *seq += 1;
                    *seq
                };
                let frame = ServerMessage::Event {
                    epoch: Epoch::new(0, 0),
                    seq,
                    event,
                };
                let _ = io.to(user.clone()).emit("msg", &frame).await;
            }
        }
    });
}

/// A socket.io client on one WebSocket.
pub struct SioClient {
    ws: WebSocketStream<TcpStream>,
}

impl SioClient {
    /// Connects to the default namespace with `{"token": token}` as its auth payload.
    pub async fn connect(addr: &str, token: &str) -> Result<SioClient, String> {
        let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let config = WebSocketConfig::default().read_buffer_size(4 * 1024);
        let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
            .await
            .map_err(|e| e.to_string())?;
        let mut c = SioClient { ws };
        match c.text().await {
            Some(open) if open.starts_with('0') => {}
            other => return Err(format!("no Engine.IO open packet: {other:?}")),
        }
        let auth = serde_json::json!({ "token": token });
        c.send(format!("40{auth}")).await?;
        loop {
            match c.text().await {
                Some(t) if t.starts_with("40") => return Ok(c),
                Some(t) if t.starts_with("44") => return Err(format!("refused: {t}")),
                Some(_) => {}
                None => return Err("the socket ended before the connect".into()),
            }
        }
    }

    async fn send(&mut self, packet: String) -> Result<(), String> {
        self.ws
            .send(Message::text(packet))
            .await
            .map_err(|e| e.to_string())
    }

    /// The next text packet that is not a ping (each ping answered with its pong).
    async fn text(&mut self) -> Option<String> {
        loop {
            match self.ws.next().await? {
                Ok(Message::Text(t)) if t.as_str() == "2" => {
                    self.send("3".into()).await.ok()?;
                }
                Ok(Message::Text(t)) => return Some(t.to_string()),
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    pub async fn start_run(&mut self) -> Result<(), String> {
        self.send(r#"42["start_run"]"#.into()).await
    }

    /// The next `msg` event's frame; `None` once the socket ended or the server disconnected it.
    pub async fn next(&mut self) -> Option<ServerMessage> {
        loop {
            let t = self.text().await?;
            if t.starts_with("41") {
                return None;
            }
            let Some(body) = t.strip_prefix("42") else {
                continue;
            };
            if let Ok((name, frame)) = serde_json::from_str::<(String, ServerMessage)>(body) {
                if name == "msg" {
                    return Some(frame);
                }
            }
        }
    }
}
