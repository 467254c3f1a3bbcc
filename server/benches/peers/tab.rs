//! The servers measured, and one client socket to any of them.

use wsreg::Position;
use wsreg_server::auth;
use wsreg_server::client::Client;
use wsreg_server::protocol::{ClientMessage, ServerMessage};

use crate::real::SECRET;
use crate::sio::SioClient;

/// A server the bench measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    Bare,
    Wsreg,
    WsregAxum,
    SocketIo,
}

impl Peer {
    pub const ALL: [Peer; 4] = [Peer::Bare, Peer::Wsreg, Peer::WsregAxum, Peer::SocketIo];

    pub fn name(self) -> &'static str {
        match self {
            Peer::Bare => "bare",
            Peer::Wsreg => "wsreg",
            Peer::WsregAxum => "wsreg-axum",
            Peer::SocketIo => "socketioxide",
        }
    }

    pub fn named(name: &str) -> Option<Peer> {
        Peer::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The row's title.
    pub fn title(self) -> &'static str {
        match self {
            Peer::Bare => "bare fan-out (tokio-tungstenite)",
            Peer::Wsreg => "wsreg, its own listener",
            Peer::WsregAxum => "wsreg, axum path",
            Peer::SocketIo => "socketioxide 0.18",
        }
    }

    /// Whether a reconnecting client can ask for what it missed.
    pub fn resumes(self) -> bool {
        matches!(self, Peer::Wsreg | Peer::WsregAxum)
    }
}

/// One client socket, on the wsreg protocol or socket.io's.
pub enum Tab {
    Ws(Client),
    Sio(SioClient),
}

impl Tab {
    /// Connects `user` (resuming after `since` where the server can) and reads its welcome.
    pub async fn connect(
        peer: Peer,
        addr: &str,
        user: &str,
        since: Option<Position>,
    ) -> Result<(Tab, ServerMessage), String> {
        let token = auth::issue(SECRET, user, u64::MAX);
        let since = since.filter(|_| peer.resumes());
        let mut tab = match peer {
            Peer::Bare | Peer::Wsreg => Tab::Ws(
                Client::resume(addr, &token, None, since)
                    .await
                    .map_err(|e| e.to_string())?,
            ),
            Peer::WsregAxum => Tab::Ws(
                Client::resume(&format!("{addr}/ws"), &token, None, since)
                    .await
                    .map_err(|e| e.to_string())?,
            ),
            Peer::SocketIo => Tab::Sio(SioClient::connect(addr, &token).await?),
        };
        match tab.next().await {
            Some(welcome @ ServerMessage::Welcome { .. }) => Ok((tab, welcome)),
            other => Err(format!("no welcome: {other:?}")),
        }
    }

    pub async fn start_run(&mut self) -> Result<(), String> {
        match self {
            Tab::Ws(c) => c
                .send(&ClientMessage::StartRun { tools: 2 })
                .await
                .map_err(|e| e.to_string()),
            Tab::Sio(c) => c.start_run().await,
        }
    }

    /// The next frame of the server's protocol; `None` once the socket ended.
    pub async fn next(&mut self) -> Option<ServerMessage> {
        match self {
            Tab::Ws(c) => c.next().await?.ok(),
            Tab::Sio(c) => c.next().await,
        }
    }
}
