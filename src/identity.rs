//! Who a request is for: [`UserContext`] (validated untrusted input) and [`UserKey`] (the registry key).

use std::fmt;
use std::sync::Arc;

use crate::error::ContextError;

/// The longest accepted id, in bytes. Longer ids are rejected, never truncated (truncation would
/// make two different ids share a key).
pub const MAX_ID_LEN: usize = 256;

/// What a request knows about its caller.
///
/// Built from untrusted input, so every constructor validates: the `user_id` is required and every
/// id must be non-empty, at most [`MAX_ID_LEN`] bytes and free of control characters. Only the
/// `user_id` decides routing; the other ids are carried for tracing and never change the key.
///
/// ```
/// use wsreg::UserContext;
///
/// let ctx = UserContext::new("alice")?.with_thread_id("t-1")?.with_request_id("req-9")?;
/// assert_eq!(ctx.user_id(), "alice");
/// assert_eq!(ctx.key(), UserContext::new("alice")?.key());
/// assert!(UserContext::new("").is_err());
/// # Ok::<(), wsreg::ContextError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserContext {
    key: UserKey,
    thread_id: Option<Arc<str>>,
    run_id: Option<Arc<str>>,
    request_id: Option<Arc<str>>,
    client_id: Option<Arc<str>>,
}

/// Which field of a [`UserContext`] a validation error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContextField {
    /// `user_id`
    UserId,
    /// `thread_id`
    ThreadId,
    /// `run_id`
    RunId,
    /// `request_id`
    RequestId,
    /// `client_id`
    ClientId,
}

impl fmt::Display for ContextField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ContextField::UserId => "user_id",
            ContextField::ThreadId => "thread_id",
            ContextField::RunId => "run_id",
            ContextField::RequestId => "request_id",
            ContextField::ClientId => "client_id",
        })
    }
}

fn validate(field: ContextField, value: &str) -> Result<Arc<str>, ContextError> {
    if value.is_empty() {
        return Err(ContextError::Empty { field });
    }
    if value.len() > MAX_ID_LEN {
        return Err(ContextError::TooLong {
            field,
            len: value.len(),
            max: MAX_ID_LEN,
        });
    }
    if let Some(at) = value.chars().position(char::is_control) {
        return Err(ContextError::ControlCharacter { field, at });
    }
    if value.trim().is_empty() {
        return Err(ContextError::Blank { field });
    }
    Ok(Arc::from(value))
}

impl UserContext {
    /// A context for `user_id`, validated.
    pub fn new(user_id: &str) -> Result<Self, ContextError> {
        Ok(Self {
            key: UserKey(validate(ContextField::UserId, user_id)?),
            thread_id: None,
            run_id: None,
            request_id: None,
            client_id: None,
        })
    }

    /// Builds a context from optional parts, as they arrive from a request. A missing `user_id`
    /// is [`ContextError::MissingUserId`].
    pub fn from_parts(
        user_id: Option<&str>,
        thread_id: Option<&str>,
        request_id: Option<&str>,
    ) -> Result<Self, ContextError> {
        let mut ctx = Self::new(user_id.ok_or(ContextError::MissingUserId)?)?;
        if let Some(t) = thread_id {
            ctx = ctx.with_thread_id(t)?;
        }
        if let Some(r) = request_id {
            ctx = ctx.with_request_id(r)?;
        }
        Ok(ctx)
    }

    /// Sets the thread id (validated).
    pub fn with_thread_id(mut self, id: &str) -> Result<Self, ContextError> {
        self.thread_id = Some(validate(ContextField::ThreadId, id)?);
        Ok(self)
    }

    /// Sets the run id (validated).
    pub fn with_run_id(mut self, id: &str) -> Result<Self, ContextError> {
        self.run_id = Some(validate(ContextField::RunId, id)?);
        Ok(self)
    }

    /// Sets the request id (validated).
    pub fn with_request_id(mut self, id: &str) -> Result<Self, ContextError> {
        self.request_id = Some(validate(ContextField::RequestId, id)?);
        Ok(self)
    }

    /// Sets the client id (validated).
    pub fn with_client_id(mut self, id: &str) -> Result<Self, ContextError> {
        self.client_id = Some(validate(ContextField::ClientId, id)?);
        Ok(self)
    }

    /// The user id.
    pub fn user_id(&self) -> &str {
        self.key.as_str()
    }

    /// The registry key: a function of the user id alone.
    pub fn key(&self) -> &UserKey {
        &self.key
    }

    /// The thread id, if any.
    pub fn thread_id(&self) -> Option<&str> {
        self.thread_id.as_deref()
    }

    /// The run id, if any.
    pub fn run_id(&self) -> Option<&str> {
        self.run_id.as_deref()
    }

    /// The request id, if any.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// The client id, if any.
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }
}

/// The registry key of one user.
///
/// The guarantee: the key *is* the validated user id, byte for byte. So the derivation is
/// injective (two different user ids never share a key), deterministic (one user id gets the same
/// key in every process, forever) and depends on nothing else: no hashing into a bounded space, no
/// sanitising that could merge `a|b` with `a_b`, no object identity. Keys order like their ids.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserKey(Arc<str>);

impl UserKey {
    /// The key for a user id, validated exactly like [`UserContext::new`].
    ///
    /// ```
    /// use wsreg::UserKey;
    /// assert_ne!(UserKey::new("a|b")?, UserKey::new("a_b")?);
    /// # Ok::<(), wsreg::ContextError>(())
    /// ```
    pub fn new(user_id: &str) -> Result<Self, ContextError> {
        Ok(UserKey(validate(ContextField::UserId, user_id)?))
    }

    /// The user id this key stands for.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The user id as a shared string (a reference-count increment, no copy).
    pub fn to_shared(&self) -> Arc<str> {
        Arc::clone(&self.0)
    }
}

impl fmt::Debug for UserKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserKey({:?})", &*self.0)
    }
}

impl fmt::Display for UserKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ignores_everything_but_the_user_id() {
        let a = UserContext::new("u1")
            .unwrap()
            .with_thread_id("t1")
            .unwrap()
            .with_request_id("r1")
            .unwrap();
        let b = UserContext::new("u1")
            .unwrap()
            .with_thread_id("t2")
            .unwrap()
            .with_run_id("run")
            .unwrap();
        assert_eq!(a.key(), b.key());
    }

    #[test]
    fn keys_that_sanitising_would_merge_stay_apart() {
        let ids = ["a|b", "a_b", "a b", "A|b", "a|b "];
        for (i, x) in ids.iter().enumerate() {
            for y in &ids[i + 1..] {
                assert_ne!(
                    UserKey::new(x).unwrap(),
                    UserKey::new(y).unwrap(),
                    "{x} vs {y}"
                );
            }
        }
    }

    #[test]
    fn rejects_bad_ids_with_the_field_named() {
        assert_eq!(
            UserContext::new(""),
            Err(ContextError::Empty {
                field: ContextField::UserId
            })
        );
        assert_eq!(
            UserContext::new("   "),
            Err(ContextError::Blank {
                field: ContextField::UserId
            })
        );
        assert_eq!(
            UserContext::new("ab\ncd"),
            Err(ContextError::ControlCharacter {
                field: ContextField::UserId,
                at: 2
            })
        );
        let long = "x".repeat(MAX_ID_LEN + 1);
        assert!(matches!(
            UserContext::new(&long),
            Err(ContextError::TooLong { len, .. }) if len == MAX_ID_LEN + 1
        ));
        assert!(UserContext::new(&"x".repeat(MAX_ID_LEN)).is_ok());
        assert_eq!(
            UserContext::new("u").unwrap().with_thread_id(""),
            Err(ContextError::Empty {
                field: ContextField::ThreadId
            })
        );
        assert_eq!(
            UserContext::from_parts(None, Some("t"), None),
            Err(ContextError::MissingUserId)
        );
    }
}
