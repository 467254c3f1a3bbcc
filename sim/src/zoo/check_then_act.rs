//! B3: the registry looks the user up, and on a miss yields (an await point in a real factory:
//! a database read, a token check) before creating and inserting. Two connects that both miss
//! both create; the second insert wins and the first tab hangs off an orphan manager.

use std::collections::BTreeMap;
use std::sync::Mutex;

use wsreg::{
    AgentEvent, ConnectionHandle, Error, Mode, Position, RegistryConfig, Sink, UserContext, UserKey,
};

use super::plant::{connect_as, probe_key, Plant};
use crate::backend::{Connected, CoreBackend, Probe};

/// The planted B3.
pub struct CheckThenAct {
    core: CoreBackend,
    /// user id → the key its newest manager lives under.
    current: Mutex<BTreeMap<String, UserKey>>,
}

impl CheckThenAct {
    fn lookup(&self, ctx: &UserContext) -> Option<UserKey> {
        let current = self.current.lock().expect("map");
        let key = current.get(ctx.user_id())?;
        self.core.registry().get(key).map(|_| key.clone())
    }

    fn resolve(&self, ctx: &UserContext) -> Result<UserKey, Error> {
        self.lookup(ctx).ok_or_else(|| Error::UnknownUser {
            user: ctx.user_id().to_owned(),
        })
    }
}

impl Plant for CheckThenAct {
    fn plant(core: CoreBackend, _: &RegistryConfig) -> Self {
        Self {
            core,
            current: Mutex::new(BTreeMap::new()),
        }
    }

    fn core(&self) -> &CoreBackend {
        &self.core
    }

    async fn connect(
        &self,
        ctx: &UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> Result<Connected<ConnectionHandle>, Error> {
        let key = match self.lookup(ctx) {
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
                    .find(|k| {
                        k.as_ref()
                            .map_or(true, |k| self.core.registry().get(k).is_none())
                    })
                    .expect("an unused alias exists")?;
                let mut current = self.current.lock().expect("map");
                current.insert(ctx.user_id().to_owned(), key.clone());
                key
            }
        };
        connect_as(&self.core, key.as_str(), sink, resume)
    }

    fn emit(&self, ctx: &UserContext, event: AgentEvent) -> Result<Position, Error> {
        self.core.registry().emit(&self.resolve(ctx)?, event)
    }

    fn send_text(&self, ctx: &UserContext, text: &str) -> Result<Position, Error> {
        self.core.registry().send_text(&self.resolve(ctx)?, text)
    }

    fn set_mode(&self, ctx: &UserContext, mode: Mode) -> Result<(), Error> {
        self.core.registry().set_mode(&self.resolve(ctx)?, mode)
    }

    fn probe(&self, ctx: &UserContext) -> Option<Probe> {
        probe_key(&self.core, self.lookup(ctx)?.as_str())
    }
}
