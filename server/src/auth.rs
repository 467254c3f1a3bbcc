//! Signed tokens: `base64url(user_id "." expiry_ms) "." base64url(HMAC-SHA256(secret, payload))`.
//! The clock is the caller's (`now_ms`), so tests and the simulator decide what time it is.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;
use wsreg::{ContextError, UserContext};

type HmacSha256 = Hmac<Sha256>;

/// Why a token was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AuthError {
    /// No token was presented.
    #[error("no token: connect with ?token=...")]
    Missing,
    /// The token is not of the form `payload.signature`, or not base64.
    #[error("malformed token")]
    Malformed,
    /// The signature does not match (forged or for another secret).
    #[error("bad signature")]
    Forged,
    /// The token has expired.
    #[error("token expired at {expired_ms} (now {now_ms})")]
    Expired {
        /// When it expired, in ms since the epoch.
        expired_ms: u64,
        /// The time it was checked.
        now_ms: u64,
    },
    /// The user id in it is not a valid one.
    #[error(transparent)]
    Context(#[from] ContextError),
}

fn mac(secret: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length")
}

/// A token for `user_id`, valid until `expires_ms` (ms since the epoch).
///
/// ```
/// let t = wsreg_server::auth::issue(b"secret", "alice", 2_000);
/// assert_eq!(wsreg_server::auth::verify(b"secret", &t, 1_000).unwrap().user_id(), "alice");
/// assert!(wsreg_server::auth::verify(b"other", &t, 1_000).is_err());
/// ```
pub fn issue(secret: &[u8], user_id: &str, expires_ms: u64) -> String {
    let payload = format!("{user_id}.{expires_ms}");
    let mut m = mac(secret);
    m.update(payload.as_bytes());
    let sig = m.finalize().into_bytes();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(sig)
    )
}

/// Checks a token and returns the context it names.
pub fn verify(secret: &[u8], token: &str, now_ms: u64) -> Result<UserContext, AuthError> {
    let (payload_b64, sig_b64) = token.split_once('.').ok_or(AuthError::Malformed)?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .map_err(|_| AuthError::Malformed)?;
    let sig = URL_SAFE_NO_PAD
        .decode(sig_b64)
        .map_err(|_| AuthError::Malformed)?;
    let mut m = mac(secret);
    m.update(&payload);
    m.verify_slice(&sig).map_err(|_| AuthError::Forged)?;
    let payload = String::from_utf8(payload).map_err(|_| AuthError::Malformed)?;
    let (user, expiry) = payload.rsplit_once('.').ok_or(AuthError::Malformed)?;
    let expired_ms: u64 = expiry.parse().map_err(|_| AuthError::Malformed)?;
    if now_ms >= expired_ms {
        return Err(AuthError::Expired { expired_ms, now_ms });
    }
    Ok(UserContext::new(user)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_expired_and_malformed_tokens_are_refused() {
        let t = issue(b"k", "bob", 100);
        assert!(verify(b"k", &t, 99).is_ok());
        assert!(matches!(
            verify(b"k", &t, 100),
            Err(AuthError::Expired { .. })
        ));
        assert_eq!(verify(b"x", &t, 1), Err(AuthError::Forged));
        let (payload, sig) = t.split_once('.').unwrap();
        let other = URL_SAFE_NO_PAD.encode("mallory.100");
        assert_eq!(
            verify(b"k", &format!("{other}.{sig}"), 1),
            Err(AuthError::Forged)
        );
        assert_eq!(verify(b"k", payload, 1), Err(AuthError::Malformed));
        assert_eq!(verify(b"k", "!!.!!", 1), Err(AuthError::Malformed));
        assert!(matches!(
            verify(b"k", &issue(b"k", "", 100), 1),
            Err(AuthError::Context(_))
        ));
    }
}
