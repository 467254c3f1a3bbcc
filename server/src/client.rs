//! A small client over `client_async` (it works over any stream, so it runs the same on real
//! tokio and on madsim's simulated TCP).

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
/// What a client's calls fail with: tungstenite's error (`Http` for a refused handshake).
pub use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use wsreg::Position;

use crate::protocol::{ClientMessage, ServerMessage};
/// A client reads a stream of events: it reads in larger chunks than the server does.
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// A connected client.
pub struct Client {
    ws: WebSocketStream<TcpStream>,
}

impl Client {
    /// Connects to `ws://{addr}/?token={token}`. `addr` is `host:port`, optionally followed by
    /// a path (`host:port/ws`, for an endpoint mounted in an axum app). A refused token is an
    /// `Http` error (401).
    pub async fn connect(addr: &str, token: &str) -> Result<Client, WsError> {
        Self::connect_in_thread(addr, token, None).await
    }

    /// Connects, naming the conversation thread the socket belongs to (`&thread=`).
    pub async fn connect_in_thread(
        addr: &str,
        token: &str,
        thread: Option<&str>,
    ) -> Result<Client, WsError> {
        Self::resume(addr, token, thread, None).await
    }

    /// Connects, resuming the user's stream after `since`, the last position this client saw
    /// (`&since=<seq>&epoch=<epoch>`), or fresh with `None`.
    pub async fn resume(
        addr: &str,
        token: &str,
        thread: Option<&str>,
        since: Option<Position>,
    ) -> Result<Client, WsError> {
        let query = {
            let mut query = form_urlencoded::Serializer::new(String::new());
            query.append_pair("token", token);
            if let Some(thread) = thread {
                query.append_pair("thread", thread);
            }
            if let Some(p) = since {
                query.append_pair("since", &p.seq.to_string());
                query.append_pair("epoch", &p.epoch.to_string());
            }
            query.finish()
        };
        let (host, path) = addr.split_once('/').unwrap_or((addr, ""));
        let url = format!("ws://{host}/{path}?{query}");
        let stream = TcpStream::connect(host).await?;
        // Small frames, sent as they come: no waiting for the previous one's acknowledgement.
        let _ = stream.set_nodelay(true);
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER_BYTES);
        let (ws, _) =
            tokio_tungstenite::client_async_with_config(url, stream, Some(config)).await?;
        Ok(Client { ws })
    }

    /// Sends a client message.
    pub async fn send(&mut self, msg: &ClientMessage) -> Result<(), WsError> {
        let text = serde_json::to_string(msg).expect("client messages serialise");
        self.ws.send(Message::text(text)).await
    }

    /// Sends raw text (for testing bad input).
    pub async fn send_raw(&mut self, text: String) -> Result<(), WsError> {
        self.ws.send(Message::text(text)).await
    }

    /// The next server message; `None` when the server closed the socket.
    pub async fn next(&mut self) -> Option<Result<ServerMessage, WsError>> {
        loop {
            match self.ws.next().await? {
                Ok(Message::Text(t)) => {
                    return Some(Ok(serde_json::from_str(&t).unwrap_or(
                        ServerMessage::Error {
                            code: "unparsable".into(),
                            message: t.to_string(),
                        },
                    )))
                }
                Ok(Message::Close(_)) => return None,
                Ok(_) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// Closes the socket at once (a WebSocket close frame): messages the server was still
    /// writing are lost. [`ClientMessage::Close`] is the graceful way to leave.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
