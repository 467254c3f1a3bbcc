//! B28: a resume is taken as the user's device coming back, so it drops every other tab of the
//! user from the registry ("one socket per user"). Their sockets end without a word, and their
//! clients, who still hold them, are told the tabs do not exist when they close them.

use wsreg::{Error, Position, Registry, Sink, UserContext};

use super::plant::{conn, Plant};
use crate::run::backend::{Backend, BoxFuture, Connected};

/// The planted B28.
pub struct ResumeDropsOtherTabs;

impl Plant for ResumeDropsOtherTabs {
    fn connect<'a>(
        &'a self,
        core: &'a Registry,
        ctx: &'a UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> BoxFuture<'a, Result<Connected, Error>> {
        Box::pin(async move {
            let connected = Backend::connect(core, ctx, sink, resume).await?;
            if resume.is_some() {
                let mine = conn(&connected.handle)?.id();
                if let Some(manager) = core.get(ctx.key()) {
                    for other in manager.view().connections {
                        if other.id != mine {
                            let _ = manager.remove_connection(other.id);
                        }
                    }
                }
            }
            Ok(connected)
        })
    }
}
