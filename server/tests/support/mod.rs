//! What the loopback tests share: tokens, logins, raw sockets, close codes, and a bystander
//! that must receive everything whatever another client does.
#![allow(dead_code)] // each test file uses its own subset

use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use wsreg::Position;
use wsreg_server::client::Client;
use wsreg_server::protocol::{ClientMessage, ServerMessage};
use wsreg_server::{auth, Server, ServerConfig};

pub const SECRET: &[u8] = b"test-secret";

pub fn clock() -> u64 {
    1_000_000
}

pub async fn login(addr: &str, user: &str) -> Client {
    login_after(addr, user, None).await.0
}

/// Logs in resuming after `since`; returns the client and its welcome.
pub async fn login_after(
    addr: &str,
    user: &str,
    since: Option<Position>,
) -> (Client, ServerMessage) {
    let token = auth::issue(SECRET, user, 2_000_000);
    let mut c = Client::resume(addr, &token, None, since).await.unwrap();
    let welcome = c.next().await.unwrap().unwrap();
    assert!(
        matches!(&welcome, ServerMessage::Welcome { user: u, key, conn, .. } if u == user && key == user && *conn > 0),
        "{welcome:?}"
    );
    (c, welcome)
}

/// Reads frames until `n` agent events arrived; returns (seq, kind, run_id) of each.
pub async fn events(c: &mut Client, n: usize) -> Vec<Event> {
    let mut out = Vec::new();
    while out.len() < n {
        let frame = tokio::time::timeout(Duration::from_secs(5), c.next())
            .await
            .expect("events within 5 s")
            .expect("socket open")
            .unwrap();
        if let ServerMessage::Event { seq, event, .. } = frame {
            out.push((seq, event.kind().to_owned(), event.run_id().to_owned()));
        }
    }
    out
}

pub async fn start_with(config: ServerConfig) -> (String, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = Server::new(config);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.serve(listener, async {
        let _ = stopped.await;
    }));
    (addr, stop)
}

/// How a server is put in front of its clients: its own listener, or an axum app.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Front {
    /// `Server::serve`, the endpoint at `/`.
    Native,
    /// `wsreg_server::axum::router` served through `HandshakeListener`, the endpoint at `/ws`.
    Axum,
}

/// A server with `config` behind `front`; returns the address clients use (`host:port`, with
/// `/ws` for axum) and what stops it.
#[cfg(not(madsim))]
pub async fn start_on(front: Front, config: ServerConfig) -> (String, oneshot::Sender<()>) {
    match front {
        Front::Native => start_with(config).await,
        Front::Axum => {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let host = listener.local_addr().unwrap().to_string();
            let server = Server::new(config);
            let listener = wsreg_server::axum::HandshakeListener::new(listener, &server);
            let app = wsreg_server::axum::router(server);
            let (stop, stopped) = oneshot::channel::<()>();
            tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
            });
            (format!("{host}/ws"), stop)
        }
    }
}

/// `host:port` and the endpoint's path (`/` when the address names none).
pub fn host_and_path(addr: &str) -> (&str, String) {
    match addr.split_once('/') {
        Some((host, path)) => (host, format!("/{path}")),
        None => (addr, "/".to_owned()),
    }
}

/// A raw socket past the WebSocket handshake, as `user`; `addr` may name the endpoint's path
/// (`host:port/ws`).
pub async fn raw_upgrade(addr: &str, user: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncReadExt;
    let token = auth::issue(SECRET, user, 2_000_000);
    let (host, path) = host_and_path(addr);
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    send_upgrade(&mut s, host, &format!("{path}?token={token}")).await;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        head.push(b[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    s
}

/// Writes a WebSocket upgrade request for `target` (path and query) on `s`.
pub async fn send_upgrade(s: &mut tokio::net::TcpStream, addr: &str, target: &str) {
    use tokio::io::AsyncWriteExt;
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(request.as_bytes()).await.unwrap();
}

/// The first bytes of the server's answer (a refusal's status line, headers and body).
pub async fn answer(s: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut response = vec![0u8; 512];
    let n = s.read(&mut response).await.unwrap();
    String::from_utf8_lossy(&response[..n]).into_owned()
}

/// Writes one masked client frame: `first` is the FIN bit and opcode (0x81 a whole text frame,
/// 0x82 binary, 0x01 a text fragment, 0x80 the last continuation).
pub async fn write_frame(s: &mut tokio::net::TcpStream, first: u8, payload: &[u8]) {
    use tokio::io::AsyncWriteExt;
    let mask = [7u8, 1, 8, 2];
    let mut frame = vec![first];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= usize::from(u16::MAX) => {
            frame.push(0x80 | 126);
            frame.extend((n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend((n as u64).to_be_bytes());
        }
    }
    frame.extend(mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    // The server may close before taking it all; what it says about it is what the test reads.
    let _ = s.write_all(&frame).await;
}

/// Reads server frames until a close frame; returns the text frames before it and the close's
/// status code (`None`: the socket ended without one).
pub async fn read_until_close(s: &mut tokio::net::TcpStream) -> (Vec<String>, Option<u16>) {
    use tokio::io::AsyncReadExt;
    let mut texts = Vec::new();
    loop {
        let mut h = [0u8; 2];
        if s.read_exact(&mut h).await.is_err() {
            return (texts, None);
        }
        let mut len = u64::from(h[1] & 0x7f);
        if len == 126 {
            let Ok(n) = s.read_u16().await else {
                return (texts, None);
            };
            len = u64::from(n);
        } else if len == 127 {
            let Ok(n) = s.read_u64().await else {
                return (texts, None);
            };
            len = n;
        }
        let mut payload = vec![0u8; len as usize];
        if s.read_exact(&mut payload).await.is_err() {
            return (texts, None);
        }
        match h[0] & 0x0f {
            0x8 => return (texts, Some(u16::from_be_bytes([payload[0], payload[1]]))),
            0x1 => texts.push(String::from_utf8_lossy(&payload).into_owned()),
            _ => {}
        }
    }
}

/// Reads server frames until a close frame; returns its status code (`None`: the socket ended
/// without one).
pub async fn try_close_code(s: &mut tokio::net::TcpStream) -> Option<u16> {
    read_until_close(s).await.1
}

pub async fn close_code(s: &mut tokio::net::TcpStream) -> u16 {
    try_close_code(s).await.expect("a close frame")
}

/// A user who starts agent runs before some abuse and must, after it, have received every one
/// of their events, in order, with no gap: what another client does never reaches them. It
/// reads all along, as a live client does (answering the server's pings).
pub struct Bystander {
    reading: tokio::task::JoinHandle<(Client, Vec<Event>)>,
    runs: usize,
}

/// One agent event as read: its position, kind and run id.
pub type Event = (u64, String, String);

/// Events of one demo run with `tools` tool calls: started, thinking, a pair per tool, completed.
pub fn events_per_run(tools: u8) -> usize {
    3 + 2 * usize::from(tools)
}

impl Bystander {
    /// Logs in as `bystander`, starts `runs` runs of two tools each (at most the server's
    /// runs-in-flight limit, 4 by default) and reads their events in the background.
    pub async fn start(addr: &str, runs: usize) -> Self {
        let mut client = login(addr, "bystander").await;
        for _ in 0..runs {
            client
                .send(&ClientMessage::StartRun { tools: 2 })
                .await
                .unwrap();
        }
        let want = runs * events_per_run(2);
        let reading = tokio::spawn(async move {
            let mut got = Vec::new();
            while got.len() < want {
                let frame = tokio::time::timeout(Duration::from_secs(10), client.next())
                    .await
                    .expect("the bystander's events within 10 s")
                    .expect("the bystander's socket stays open")
                    .expect("the bystander's socket stays healthy");
                if let ServerMessage::Event { seq, event, .. } = frame {
                    got.push((seq, event.kind().to_owned(), event.run_id().to_owned()));
                }
            }
            (client, got)
        });
        Self { reading, runs }
    }

    /// Asserts every event of every run arrived, numbered 1, 2, 3… with no gap, and that the
    /// server still answers a ping on this socket and serves a new login.
    pub async fn received_everything(self, addr: &str) {
        let (mut client, got) = self.reading.await.expect("the bystander's reader");
        let want = self.runs * events_per_run(2);
        let seqs: Vec<u64> = got.iter().map(|(s, _, _)| *s).collect();
        let expected: Vec<u64> = (1..=want as u64).collect();
        assert_eq!(
            seqs, expected,
            "the bystander's stream has a hole or a repeat"
        );
        let completed = got
            .iter()
            .filter(|(_, k, _)| k == "agent_completed")
            .count();
        assert_eq!(completed, self.runs);
        client.send(&ClientMessage::Ping {}).await.unwrap();
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(5), client.next())
                .await
                .expect("a pong within 5 s")
                .expect("socket open")
                .unwrap();
            if frame == ServerMessage::Pong {
                break;
            }
        }
        let mut newcomer = login(addr, "newcomer").await;
        newcomer.send(&ClientMessage::Ping {}).await.unwrap();
        assert_eq!(newcomer.next().await.unwrap().unwrap(), ServerMessage::Pong);
    }
}
