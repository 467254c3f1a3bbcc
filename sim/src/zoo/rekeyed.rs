//! Key-derivation bugs: the registry files users under a key that is not (only) their user id.
//! B1 a new manager per request, B5 a hash into a bounded space, B6 an identity-derived key,
//! B7 sanitising, B8 per-request keys, B18 one key for everyone.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use wsreg::{Error, Position, Registry, Sink, UserContext, UserKey};

use super::plant::{connect_as, probe_key, Plant};
use crate::run::backend::{BoxFuture, Connected, Probe};

/// How a buggy registry derives keys.
pub trait KeyFn: Default + Send + Sync + 'static {
    /// The key a connect is filed under.
    fn on_connect(&self, ctx: &UserContext) -> String;
    /// The key an emit, send or mode change goes to.
    fn on_call(&self, ctx: &UserContext) -> String;
    /// The key an inspection looks at, without counting as a request.
    fn current(&self, ctx: &UserContext) -> String {
        self.on_call(ctx)
    }
    /// Whether a call creates the manager it addresses (a factory called per request).
    fn creates_on_call(&self) -> bool {
        false
    }
}

/// The real core behind a buggy key function.
#[derive(Default)]
pub struct Rekeyed<K> {
    keys: K,
}

impl<K: KeyFn> Rekeyed<K> {
    fn target(&self, core: &Registry, ctx: &UserContext) -> Result<UserKey, Error> {
        let key = UserKey::new(&self.keys.on_call(ctx))?;
        if self.keys.creates_on_call() {
            core.get_or_create(&UserContext::new(key.as_str())?)?;
        }
        Ok(key)
    }
}

impl<K: KeyFn> Plant for Rekeyed<K> {
    fn connect<'a>(
        &'a self,
        core: &'a Registry,
        ctx: &'a UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> BoxFuture<'a, Result<Connected, Error>> {
        Box::pin(async move { connect_as(core, &self.keys.on_connect(ctx), sink, resume) })
    }

    fn key_for_calls<'a>(
        &self,
        core: &Registry,
        ctx: &'a UserContext,
    ) -> Result<Cow<'a, UserKey>, Error> {
        self.target(core, ctx).map(Cow::Owned)
    }

    fn probe(&self, core: &Registry, ctx: &UserContext) -> Option<Probe> {
        probe_key(core, &self.keys.current(ctx))
    }
}

/// A per-user counter of requests.
#[derive(Default)]
pub struct Counter(Mutex<BTreeMap<String, u64>>);

impl Counter {
    fn next(&self, user: &str) -> u64 {
        let mut c = self.0.lock().expect("counter");
        let n = c.entry(user.to_owned()).or_insert(0);
        *n += 1;
        *n
    }

    fn current(&self, user: &str) -> u64 {
        self.0
            .lock()
            .expect("counter")
            .get(user)
            .copied()
            .unwrap_or(0)
    }
}

/// B1: every request builds (and registers) a manager of its own.
#[derive(Default)]
pub struct PerCall(Counter);

impl KeyFn for PerCall {
    fn on_connect(&self, ctx: &UserContext) -> String {
        format!("{}#{}", ctx.user_id(), self.0.next(ctx.user_id()))
    }
    fn on_call(&self, ctx: &UserContext) -> String {
        format!("{}#{}", ctx.user_id(), self.0.next(ctx.user_id()))
    }
    fn current(&self, ctx: &UserContext) -> String {
        format!("{}#{}", ctx.user_id(), self.0.current(ctx.user_id()))
    }
    fn creates_on_call(&self) -> bool {
        true
    }
}

/// B5: the key is a hash of the user id modulo a small number.
#[derive(Default)]
pub struct BoundedHash;

impl BoundedHash {
    fn key(ctx: &UserContext) -> String {
        let mut h = fnv::FnvHasher::default();
        ctx.user_id().hash(&mut h);
        format!("h{}", h.finish() % 16)
    }
}

impl KeyFn for BoundedHash {
    fn on_connect(&self, ctx: &UserContext) -> String {
        Self::key(ctx)
    }
    fn on_call(&self, ctx: &UserContext) -> String {
        Self::key(ctx)
    }
}

/// B6: the key is an object address; addresses are reused once freed, so a later user can
/// inherit an earlier one's key, and one user gets a new key per connection.
#[derive(Default)]
pub struct Identity {
    next: Mutex<u64>,
    last: Mutex<BTreeMap<String, String>>,
}

impl KeyFn for Identity {
    fn on_connect(&self, ctx: &UserContext) -> String {
        let mut next = self.next.lock().expect("next");
        *next += 1;
        let key = format!("0x{:04x}", (*next % 24) * 0x40);
        self.last
            .lock()
            .expect("last")
            .insert(ctx.user_id().to_owned(), key.clone());
        key
    }
    fn on_call(&self, ctx: &UserContext) -> String {
        let last = self.last.lock().expect("last");
        last.get(ctx.user_id())
            .cloned()
            .unwrap_or_else(|| "0x0000".into())
    }
}

/// B7: the user id is "sanitised" into the key, so `team|1` and `team_1` become one.
#[derive(Default)]
pub struct Sanitised;

impl KeyFn for Sanitised {
    fn on_connect(&self, ctx: &UserContext) -> String {
        ctx.user_id().replace(['|', ' ', '/'], "_")
    }
    fn on_call(&self, ctx: &UserContext) -> String {
        self.on_connect(ctx)
    }
}

/// B8: the key is the thread id plus a per-request id.
#[derive(Default)]
pub struct PerRequest(Counter);

impl KeyFn for PerRequest {
    fn on_connect(&self, ctx: &UserContext) -> String {
        let thread = ctx.thread_id().unwrap_or("none");
        format!("{thread}:{}:{}", ctx.user_id(), self.0.next(ctx.user_id()))
    }
    fn on_call(&self, ctx: &UserContext) -> String {
        let thread = ctx.thread_id().unwrap_or("none");
        format!(
            "{thread}:{}:{}",
            ctx.user_id(),
            self.0.current(ctx.user_id())
        )
    }
}

/// B18: one manager for every user.
#[derive(Default)]
pub struct Singleton;

impl KeyFn for Singleton {
    fn on_connect(&self, _: &UserContext) -> String {
        "singleton".into()
    }
    fn on_call(&self, _: &UserContext) -> String {
        "singleton".into()
    }
}
