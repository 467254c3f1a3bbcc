//! How a team fuzzes its own WebSocket layer with wsreg-sim: implement [`Backend`] for it,
//! hand [`runner`] to a campaign, read the summary. Here "their" layer is a deliberately naive
//! registry: a plain map of user id to manager, looked up and filled in two steps with an
//! await between (check-then-act), over wsreg's managers.
//!
//! Run it (it needs the madsim build):
//! `cargo run --release --config "build.rustflags=['--cfg','madsim']" --target-dir target/madsim -p wsreg-sim --example own_backend`

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use wsreg::{
    AgentEvent, ConnectionHandle, Error, Mode, Observer, Position, Registry, RegistryConfig,
    RegistryView, Sink, UserContext, UserKey,
};
use wsreg_sim::backend::{connected, probe_registry, Backend, Connected, Probe};
use wsreg_sim::campaign::{run_campaign, runner, CampaignOptions};

/// A team's registry: it keeps its own index of which key serves which user.
struct TheirRegistry {
    registry: Registry,
    index: Mutex<BTreeMap<String, UserKey>>,
}

impl Backend for TheirRegistry {
    type Handle = ConnectionHandle;

    fn build(config: RegistryConfig, observer: Option<Arc<dyn Observer>>) -> Self {
        let registry = match observer {
            Some(o) => Registry::with_observer(config, o),
            None => Registry::new(config),
        };
        Self {
            registry,
            index: Mutex::new(BTreeMap::new()),
        }
    }

    async fn connect(
        &self,
        ctx: &UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> Result<Connected<ConnectionHandle>, Error> {
        let known = self.index.lock().unwrap().get(ctx.user_id()).cloned();
        let key = match known {
            Some(key) => key,
            None => {
                tokio::task::yield_now().await; // e.g. loading the user's profile
                let mut index = self.index.lock().unwrap();
                let n = index.len();
                // Their bug: a fresh key per first connect, even when another connect just made one.
                let key = UserKey::new(&format!("{}@{n}", ctx.user_id()))?;
                index.insert(ctx.user_id().to_owned(), key.clone());
                key
            }
        };
        let filed = UserContext::new(key.as_str())?;
        self.registry.resume(&filed, sink, resume).map(connected)
    }

    async fn close(&self, handle: &ConnectionHandle) -> Result<(), Error> {
        handle.close()
    }

    fn emit(&self, ctx: &UserContext, event: AgentEvent) -> Result<Position, Error> {
        self.registry.emit(&self.key_of(ctx)?, event)
    }

    fn send_text(&self, ctx: &UserContext, text: &str) -> Result<Position, Error> {
        self.registry.send_text(&self.key_of(ctx)?, text)
    }

    fn set_mode(&self, ctx: &UserContext, mode: Mode) -> Result<(), Error> {
        self.registry.set_mode(&self.key_of(ctx)?, mode)
    }

    fn probe(&self, ctx: &UserContext) -> Option<Probe> {
        probe_registry(&self.registry, &self.key_of(ctx).ok()?)
    }

    fn inspect(&self) -> RegistryView {
        self.registry.inspect()
    }
}

impl TheirRegistry {
    fn key_of(&self, ctx: &UserContext) -> Result<UserKey, Error> {
        let index = self.index.lock().unwrap();
        index.get(ctx.user_id()).cloned().ok_or(Error::UnknownUser {
            user: ctx.user_id().to_owned(),
        })
    }
}

fn main() {
    let opts = CampaignOptions {
        backend: Some(runner::<TheirRegistry>()),
        ..CampaignOptions::new("0..200".parse().expect("a seed range"))
    };
    let summary = run_campaign(&opts, &|_, _, _| {}).expect("runs (build with --cfg madsim)");
    print!("{}", wsreg_sim::report::campaign(&summary));
    for (label, group) in &summary.failures {
        println!("{label}: first at seed {}", group.first_seed);
    }
}
