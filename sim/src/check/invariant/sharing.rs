//! I4 nothing shared: a user's mode changes only when that user changes it, and what the registry
//! shows for a user matches that user's own history (checked by a probe before each action).

use wsreg::backend::Probe;
use wsreg::Mode;

use super::white_box::WhiteBox;
use super::{Checked, Invariant, Key};

impl WhiteBox {
    pub(super) fn mode_changed(&mut self, key: &Key, from: Mode, to: Mode) -> Checked {
        let asker = self.mode_request.as_ref();
        if asker.is_none() || self.user_of_key.get(key).is_some_and(|u| Some(u) != asker) {
            return fail!(Invariant::I4, "{key}'s mode changed from {from} to {to} when {} asked for a mode change: the mode is shared between users",
                    asker.map_or("nobody".to_owned(), |a| a.to_string()));
        }
        let expected = self.mode_of_key.get(key).copied().unwrap_or_default();
        if expected != from {
            return fail!(Invariant::I4, "{key}'s mode changed from {from} to {to}, but {key} had set {expected}: another user's change reached it");
        }
        self.mode_of_key.insert(key.clone(), to);
        Ok(())
    }

    /// Compares what the backend shows for `user` with the model, before the user acts.
    pub(super) fn probe(&self, user: &Key, probe: Option<Probe>) -> Checked {
        let Some(key) = self.key_of_user.get(user) else {
            return Ok(());
        };
        let held = self.live_mgr.get(key);
        let Some(p) = probe else {
            if let Some(m) = held {
                return fail!(
                    Invariant::I5,
                    "the registry shows no manager for {user}, but m{m} was never removed"
                );
            }
            return Ok(());
        };
        if held != Some(&p.manager) {
            return fail!(
                Invariant::I2,
                "the registry shows m{} for {user}; its history says {held:?}",
                p.manager
            );
        }
        let mode = self.mode_of_key.get(key).copied().unwrap_or_default();
        if p.mode != mode {
            return fail!(Invariant::I4, "{user}'s manager is in mode {}, but {user} only ever set {mode}: its mode is shared with another user", p.mode);
        }
        let live = self.live_by_key.get(key).copied().unwrap_or(0);
        if p.connections != live {
            return fail!(
                Invariant::I5,
                "{user}'s manager holds {} connections; the history says {live}",
                p.connections
            );
        }
        Ok(())
    }
}
