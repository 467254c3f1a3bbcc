//! The bare fan-out server: what a team writes in an afternoon with tokio-tungstenite. A map
//! from each user to the queues of its open sockets; each event gets the user's next number and
//! goes to every queue. No history, no resume, no limits, no heartbeat.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use wsreg::{AgentEvent, Epoch};
use wsreg_server::protocol::{ClientMessage, ServerMessage};

#[derive(Default)]
struct User {
    seq: u64,
    tabs: Vec<(u64, mpsc::UnboundedSender<Message>)>,
}

#[derive(Default)]
struct Hub {
    users: Mutex<HashMap<String, User>>,
    next_tab: std::sync::atomic::AtomicU64,
    runs: std::sync::atomic::AtomicU64,
}

impl Hub {
    /// Numbers `event` in `user`'s sequence and queues it on every socket the user has open.
    fn emit(&self, user: &str, event: AgentEvent) {
        let mut users = self.users.lock().expect("hub");
        let u = users.entry(user.to_owned()).or_default();
        u.seq += 1;
        let frame = ServerMessage::Event {
            epoch: Epoch::new(0, 0),
            seq: u.seq,
            event,
        }
        .to_json();
        for (_, tab) in &u.tabs {
            let _ = tab.send(Message::text(frame.clone()));
        }
    }
}

pub async fn serve(
    listener: TcpListener,
    secret: &'static [u8],
    step: Duration,
    stop: impl Future<Output = ()>,
) {
    let hub = Arc::new(Hub::default());
    tokio::pin!(stop);
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => return,
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    tokio::spawn(socket(Arc::clone(&hub), stream, secret, step));
                }
            }
        }
    }
}

async fn socket(hub: Arc<Hub>, stream: TcpStream, secret: &'static [u8], step: Duration) {
    let _ = stream.set_nodelay(true);
    let mut user = None;
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        let token = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        match wsreg_server::auth::verify(secret, &token, 0) {
            Ok(ctx) => {
                user = Some(ctx.user_id().to_owned());
                Ok(resp)
            }
            Err(_) => {
                let mut refused = ErrorResponse::new(None);
                *refused.status_mut() = StatusCode::UNAUTHORIZED;
                Err(refused)
            }
        }
    };
    let config = WebSocketConfig::default().read_buffer_size(1024);
    let Ok(ws) =
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await
    else {
        return;
    };
    let Some(user) = user else { return };
    let (mut write, mut read) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let id = hub
        .next_tab
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let welcome = ServerMessage::Welcome {
        user: user.clone(),
        key: user.clone(),
        conn: id,
        manager: 0,
        boot: 0,
        epoch: Epoch::new(0, 0),
        seq: 0,
        recovered: false,
    };
    let _ = tx.send(Message::text(welcome.to_json()));
    hub.users
        .lock()
        .expect("hub")
        .entry(user.clone())
        .or_default()
        .tabs
        .push((id, tx));
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if write.send(m).await.is_err() {
                break;
            }
        }
    });
    while let Some(Ok(msg)) = read.next().await {
        let Message::Text(text) = msg else { continue };
        if let Ok(ClientMessage::StartRun { tools }) = serde_json::from_str(&text) {
            let n = hub.runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let events = AgentEvent::example_run(&format!("{user}/run-{n}"), tools, 1);
            let (hub, user) = (Arc::clone(&hub), user.clone());
            tokio::spawn(async move {
                for (i, event) in events.into_iter().enumerate() {
                    if i > 0 {
                        tokio::time::sleep(step).await;
                    }
                    hub.emit(&user, event);
                }
            });
        }
    }
    if let Some(u) = hub.users.lock().expect("hub").get_mut(&user) {
        u.tabs.retain(|(t, _)| *t != id);
    }
    writer.abort();
}
