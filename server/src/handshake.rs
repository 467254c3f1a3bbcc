//! What a WebSocket upgrade request asks for, checked before anything is registered: who (a
//! verified token in `?token=`), in which `thread`, and from where in the user's stream
//! (`since` and `epoch`, together or not at all). Shared by the server's own listener and the
//! axum integration, so both refuse the same requests the same way.

use wsreg::{Epoch, Position, UserContext};

use crate::auth;
use crate::metrics::Refusal;

/// An accepted upgrade request.
#[derive(Debug, Clone)]
pub struct Handshake {
    /// The verified user.
    pub ctx: UserContext,
    /// The last position the client saw, if it resumes.
    pub resume: Option<Position>,
}

/// A refused upgrade request: the HTTP status to answer with and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// 401 for a missing, forged or expired token; 400 for a malformed parameter.
    pub status: u16,
    /// The response body.
    pub why: String,
    /// The metrics label.
    pub(crate) reason: Refusal,
}

/// A query parameter, percent-decoded.
fn param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Checks an upgrade request's query string against the secret and the clock (`now_ms`, read
/// when the request arrives).
pub fn authenticate(query: Option<&str>, secret: &[u8], now_ms: u64) -> Result<Handshake, Refused> {
    let token = param(query, "token").ok_or(auth::AuthError::Missing);
    let ctx = token
        .and_then(|t| auth::verify(secret, &t, now_ms))
        .map_err(|e| Refused {
            status: 401,
            why: format!("unauthorized: {e}"),
            reason: Refusal::Unauthorized,
        })?;
    let bad = |why: String| Refused {
        status: 400,
        why,
        reason: Refusal::BadRequest,
    };
    let ctx = match param(query, "thread") {
        Some(thread) => ctx
            .with_thread_id(&thread)
            .map_err(|e| bad(format!("bad thread: {e}")))?,
        None => ctx,
    };
    let resume = match (param(query, "since"), param(query, "epoch")) {
        (None, None) => None,
        (Some(since), Some(epoch)) => {
            let seq = since.parse::<u64>().map_err(|_| {
                // Cut, as the epoch's error is: an answer never echoes a client's kilobytes.
                let shown: String = since.chars().take(64).collect();
                let cut = if shown.len() < since.len() { "..." } else { "" };
                bad(format!(
                    "bad since: {shown:?}{cut} is not a sequence number"
                ))
            })?;
            let epoch = epoch
                .parse::<Epoch>()
                .map_err(|e| bad(format!("bad epoch: {e}")))?;
            Some(Position::new(epoch, seq))
        }
        _ => return Err(bad("since and epoch go together".into())),
    };
    Ok(Handshake { ctx, resume })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_since_is_cut_in_the_answer() {
        let token = auth::issue(b"secret", "alice", 2_000);
        let long = "9".repeat(10_000) + "x";
        let query = format!("token={token}&since={long}&epoch=1.1");
        let Err(refused) = authenticate(Some(&query), b"secret", 1_000) else {
            panic!("a since of 10,000 characters was accepted");
        };
        assert_eq!(refused.status, 400);
        assert!(
            refused.why.len() < 200,
            "{} bytes echoed",
            refused.why.len()
        );
        assert!(
            refused.why.contains("is not a sequence number"),
            "{}",
            refused.why
        );
    }
}
