//! B3: the registry looks the user up, and on a miss yields (an await point in a real factory:
//! a database read, a token check) before creating and inserting. Two connects that both miss
//! both create; the second insert wins and the first tab hangs off an orphan manager.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Mutex;

use wsreg::{Error, Position, Registry, Sink, UserContext, UserKey};

use super::plant::{connect_as, probe_key, Plant};
use crate::run::backend::{BoxFuture, Connected, Probe};

/// The planted B3.
#[derive(Default)]
pub struct CheckThenAct {
    /// user id → the key its newest manager lives under.
    current: Mutex<BTreeMap<String, UserKey>>,
}

impl CheckThenAct {
    fn lookup(&self, core: &Registry, ctx: &UserContext) -> Option<UserKey> {
        let current = self.current.lock().expect("map");
        let key = current.get(ctx.user_id())?;
        core.get(key).map(|_| key.clone())
    }

    fn resolve(&self, core: &Registry, ctx: &UserContext) -> Result<UserKey, Error> {
        self.lookup(core, ctx).ok_or_else(|| Error::UnknownUser {
            user: ctx.user_id().to_owned(),
        })
    }
}

impl Plant for CheckThenAct {
    fn connect<'a>(
        &'a self,
        core: &'a Registry,
        ctx: &'a UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> BoxFuture<'a, Result<Connected, Error>> {
        Box::pin(async move {
            let key = match self.lookup(core, ctx) {
                Some(key) => key,
                None => {
                    tokio::task::yield_now().await; // the window between the check and the act
                                                    // Create under the user's own key unless a manager lives there already (the
                                                    // racing creator's): then the new one is an orphan-maker under a fresh alias.
                    let key = (0u32..)
                        .map(|g| match g {
                            0 => UserKey::new(ctx.user_id()),
                            g => UserKey::new(&format!("{}#{g}", ctx.user_id())),
                        })
                        .find(|k| k.as_ref().map_or(true, |k| core.get(k).is_none()))
                        .expect("an unused alias exists")?;
                    let mut current = self.current.lock().expect("map");
                    current.insert(ctx.user_id().to_owned(), key.clone());
                    key
                }
            };
            connect_as(core, key.as_str(), sink, resume)
        })
    }

    fn key_for_calls<'a>(
        &self,
        core: &Registry,
        ctx: &'a UserContext,
    ) -> Result<Cow<'a, UserKey>, Error> {
        self.resolve(core, ctx).map(Cow::Owned)
    }

    fn probe(&self, core: &Registry, ctx: &UserContext) -> Option<Probe> {
        probe_key(core, self.lookup(core, ctx)?.as_str())
    }
}
