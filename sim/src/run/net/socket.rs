//! One simulated client socket: the real client of wsreg-server over madsim's TCP, on the
//! clients' node. It connects, reads the welcome, and once the harness has accepted the
//! connection it turns every event or text frame back into an [`Envelope`] for the harness's
//! sink, until the socket closes or the harness leaves or crashes the tab.

use tokio::sync::{mpsc, oneshot};
use wsreg::{Envelope, Payload, Position, Sink, UserKey};
use wsreg_server::client::{Client, WsError};
use wsreg_server::protocol::{ClientMessage, ServerMessage};

/// What the harness asks of an open socket.
pub(crate) enum Command {
    /// Leave gracefully (the protocol's `close`); answers once the request is written.
    Leave(oneshot::Sender<bool>),
    /// Drop the socket without a goodbye.
    Crash,
}

/// What the server said first.
pub(crate) enum Greeting {
    /// Registered by server process `boot`: the key it filed the user under, its connection
    /// and manager numbers, where its stream continues and whether the resume recovered all.
    Welcome {
        key: String,
        conn: u64,
        manager: u64,
        boot: u64,
        from: Position,
        recovered: bool,
    },
    /// The server refused the connection with this code and message.
    Refused { code: String, message: String },
    /// No answer: the connection failed, the handshake broke, or the socket closed first.
    Unreachable,
}

/// Where one socket's task reports, and what it waits for.
pub(crate) struct Wiring {
    /// The greeting goes here.
    pub(crate) greeting: oneshot::Sender<Greeting>,
    /// The harness's sink arrives here once the harness took the connection (dropped: the
    /// connection is stale and the socket is dropped).
    pub(crate) sink: oneshot::Receiver<Box<dyn Sink>>,
    /// Commands.
    pub(crate) commands: mpsc::UnboundedReceiver<Command>,
}

/// Connects to `addr` as the holder of `token` in `thread`, then serves the harness, until the
/// socket ends or `died` fires (or is dropped): the server process died. A packet the dead
/// server had in flight may never arrive, and neither may the end of its stream, so the socket
/// stops waiting then, as a real client's heartbeat timeout would.
pub(crate) async fn socket(dial: Dial, key: UserKey, w: Wiring, died: oneshot::Receiver<()>) {
    tokio::select! {
        biased;
        _ = died => {}
        _ = serve(dial, key, w) => {}
    }
}

/// Where and how a socket connects.
pub(crate) struct Dial {
    pub(crate) addr: String,
    pub(crate) token: String,
    pub(crate) thread: Option<String>,
    /// The last position the client saw (`since` and `epoch`), or none for a fresh connect.
    pub(crate) resume: Option<Position>,
}

async fn serve(dial: Dial, key: UserKey, w: Wiring) {
    let connected =
        Client::resume(&dial.addr, &dial.token, dial.thread.as_deref(), dial.resume).await;
    let mut client = match connected {
        Ok(client) => client,
        // The server answered the handshake with a refusal: retrying would not change it.
        Err(WsError::Http(response)) => {
            let status = response.status();
            let message = response
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default()
                .into_owned();
            let code = format!("http_{}", status.as_u16());
            let _ = w.greeting.send(Greeting::Refused { code, message });
            return;
        }
        Err(_) => {
            let _ = w.greeting.send(Greeting::Unreachable);
            return;
        }
    };
    let greeting = match client.next().await {
        Some(Ok(ServerMessage::Welcome {
            key,
            conn,
            manager,
            boot,
            epoch,
            seq,
            recovered,
            ..
        })) => Greeting::Welcome {
            key,
            conn,
            manager,
            boot,
            from: Position::new(epoch, seq),
            recovered,
        },
        Some(Ok(ServerMessage::Error { code, message })) => Greeting::Refused { code, message },
        _ => Greeting::Unreachable,
    };
    let welcomed = matches!(greeting, Greeting::Welcome { .. });
    if w.greeting.send(greeting).is_err() || !welcomed {
        return;
    }
    let Ok(sink) = w.sink.await else { return };
    pump(client, sink, key, w.commands).await;
}

/// Frames to the harness's sink until the socket ends; commands in between.
async fn pump(
    mut client: Client,
    mut sink: Box<dyn Sink>,
    key: UserKey,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let mut listening = true;
    loop {
        let frame = tokio::select! {
            biased;
            command = commands.recv(), if listening => {
                match command {
                    Some(Command::Leave(done)) => {
                        let sent = client.send(&ClientMessage::Close {}).await.is_ok();
                        let _ = done.send(sent);
                        listening = false; // read on until the server closes the socket
                        continue;
                    }
                    Some(Command::Crash) | None => return,
                }
            }
            frame = client.next() => frame,
        };
        let (epoch, seq, payload) = match frame {
            Some(Ok(ServerMessage::Event { epoch, seq, event })) => {
                (epoch, seq, Payload::Agent(event))
            }
            Some(Ok(ServerMessage::Text { epoch, seq, text })) => {
                (epoch, seq, Payload::Text { text })
            }
            Some(Ok(ServerMessage::Gap {
                epoch,
                from,
                to,
                reason,
            })) => (epoch, to, Payload::Gap { from, to, reason }),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return,
        };
        let at = Position::new(epoch, seq);
        if sink
            .send(Envelope::new(key.clone(), at, payload))
            .await
            .is_err()
        {
            return; // the tab crashed: its reader is gone
        }
    }
}
