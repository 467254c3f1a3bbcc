//! The JSON protocol. Client to server: `start_run` (a demo agent then emits a full lifecycle
//! with tool calls), `ping` and `close`. Server to client: `welcome`, the user's stream (`event`
//! and `text` frames with their position `epoch`/`seq`, and `gap` frames for what the socket will
//! never get), `pong`, and `error` frames for bad input.
//!
//! A client resumes by connecting with `since=<seq>&epoch=<epoch>`, the last position it saw
//! (after a gap frame: the gap's `to`).

use serde::{Deserialize, Serialize};
use wsreg::{AgentEvent, Envelope, Epoch, Error, GapReason, Payload};

/// What a client may send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Start a demo agent run with `tools` nested tool calls (at most 8).
    StartRun {
        /// Tool calls.
        #[serde(default)]
        tools: u8,
    },
    /// Liveness check. (Struct variants, so that a field they do not take is refused rather
    /// than ignored.)
    Ping {},
    /// Leaving: the server stops queueing for this socket, writes what it had already sent on
    /// its way, then closes the socket. (A WebSocket close frame instead makes the server close
    /// at once, and whatever was still being written is lost.)
    Close {},
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Sent once the socket is registered, before anything else.
    Welcome {
        /// The authenticated user.
        user: String,
        /// The key the registry filed the user under.
        key: String,
        /// The connection's number (for logs and support).
        conn: u64,
        /// The number of the user's manager.
        manager: u64,
        /// Which server process this is; a new value after a reconnect means the server
        /// restarted and anything it held for this user is gone.
        boot: u64,
        /// The epoch of the stream this socket reads.
        epoch: Epoch,
        /// The stream continues after this number: the next frame is `seq + 1`, or a gap
        /// frame starting there.
        seq: u64,
        /// Whether the resume position was honoured in full (false for a fresh connect, and
        /// when a gap frame follows).
        recovered: bool,
    },
    /// An agent event.
    Event {
        /// Its stream's epoch.
        epoch: Epoch,
        /// Its number in the user's stream.
        seq: u64,
        /// The event.
        event: AgentEvent,
    },
    /// A text message.
    Text {
        /// Its stream's epoch.
        epoch: Epoch,
        /// Its number in the user's stream.
        seq: u64,
        /// The text.
        text: String,
    },
    /// This socket will never receive messages `from..=to` of `epoch` (after an
    /// `epoch_changed` gap, `to` may be `from - 1`: nothing of the new epoch is missing).
    Gap {
        /// The stream's epoch.
        epoch: Epoch,
        /// The first message missed.
        from: u64,
        /// The last message missed; resume after it.
        to: u64,
        /// `trimmed` or `epoch_changed`.
        reason: GapReason,
    },
    /// Answer to `ping`.
    Pong,
    /// The last client message was refused; the connection stays open.
    Error {
        /// `bad_json`, `unknown_type` or `bad_request`; when a connection is refused (and
        /// then closed): `connection_limit`, `user_connection_limit`, `manager_limit`,
        /// `shutting_down`, `resume_ahead` (a resume position the stream never reached),
        /// `store_unavailable`, `connect_timeout` (the core did not accept it in time) or
        /// `refused`.
        code: String,
        /// What was wrong.
        message: String,
    },
}

impl ServerMessage {
    /// The frame for a core message.
    pub fn from_envelope(env: &Envelope) -> Self {
        let (epoch, seq) = (env.epoch(), env.seq());
        match env.payload() {
            Payload::Agent(event) => ServerMessage::Event {
                epoch,
                seq,
                event: event.clone(),
            },
            Payload::Text { text } => ServerMessage::Text {
                epoch,
                seq,
                text: text.clone(),
            },
            Payload::Gap { from, to, reason } => ServerMessage::Gap {
                epoch,
                from: *from,
                to: *to,
                reason: *reason,
            },
        }
    }

    /// The position a client has reached once it read this frame (for stream frames).
    pub fn position(&self) -> Option<wsreg::Position> {
        match self {
            ServerMessage::Event { epoch, seq, .. } | ServerMessage::Text { epoch, seq, .. } => {
                Some(wsreg::Position::new(*epoch, *seq))
            }
            ServerMessage::Gap { epoch, to, .. } => Some(wsreg::Position::new(*epoch, *to)),
            ServerMessage::Welcome { epoch, seq, .. } => Some(wsreg::Position::new(*epoch, *seq)),
            _ => None,
        }
    }

    /// As JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages serialise")
    }
}

/// The error frame for a refused connection; its code names the limit.
pub fn refusal(error: &Error) -> ServerMessage {
    let code = match error {
        Error::ConnectionLimit { .. } => "connection_limit",
        Error::UserConnectionLimit { .. } => "user_connection_limit",
        Error::ManagerLimit { .. } => "manager_limit",
        Error::ShuttingDown => "shutting_down",
        Error::ResumeAhead { .. } => "resume_ahead",
        Error::Store(_) => "store_unavailable",
        _ => "refused",
    };
    ServerMessage::Error {
        code: code.into(),
        message: error.to_string(),
    }
}

/// The error frame of a connect the core did not accept within `after`.
pub fn connect_timeout(after: std::time::Duration) -> ServerMessage {
    ServerMessage::Error {
        code: "connect_timeout".into(),
        message: format!(
            "the registry did not accept the connection within {} ms: come back later",
            after.as_millis()
        ),
    }
}

/// Parses a client frame; the error is the `error` frame to answer with.
pub fn parse(text: &str) -> Result<ClientMessage, ServerMessage> {
    serde_json::from_str(text).map_err(|e| {
        let known = serde_json::from_str::<serde_json::Value>(text).is_ok();
        let code = if !known {
            "bad_json"
        } else if e.to_string().contains("unknown variant") {
            "unknown_type"
        } else {
            "bad_request"
        };
        ServerMessage::Error {
            code: code.into(),
            message: e.to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_gets_the_right_error_code() {
        let code = |t: &str| match parse(t) {
            Err(ServerMessage::Error { code, .. }) => code,
            other => panic!("{other:?}"),
        };
        assert_eq!(code("{not json"), "bad_json");
        assert_eq!(code(r#"{"type":"launch_missiles"}"#), "unknown_type");
        assert_eq!(
            code(r#"{"type":"start_run","tools":"many"}"#),
            "bad_request"
        );
        assert_eq!(
            parse(r#"{"type":"start_run","tools":2}"#),
            Ok(ClientMessage::StartRun { tools: 2 })
        );
        assert_eq!(parse(r#"{"type":"ping"}"#), Ok(ClientMessage::Ping {}));
        assert_eq!(parse(r#"{"type":"close"}"#), Ok(ClientMessage::Close {}));
        for unknown in [
            r#"{"type":"ping","at":1}"#,
            r#"{"type":"close","now":true}"#,
            r#"{"type":"start_run","tools":1,"tool":2}"#,
        ] {
            assert_eq!(code(unknown), "bad_request", "{unknown}");
        }
    }
}
