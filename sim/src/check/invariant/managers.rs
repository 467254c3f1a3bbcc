//! I2 one manager per user and I9 nothing handed out after removal, as the backend reports its
//! managers (the white-box oracle; keys as connects return them are the black-box oracle's).

use wsreg::Mode;

use super::oracle::Verdict;
use super::white_box::{WhiteBox, MANAGER_HANDED, TWO_MANAGERS};
use super::{Checked, Invariant, Key};

impl WhiteBox {
    pub(super) fn manager_created(&mut self, key: &Key, mgr: u64) -> Checked {
        if let Some(live) = self.live_mgr.get(key) {
            return fail!(
                Invariant::I2,
                "key {key} got a second live manager m{mgr} while m{live} is still registered"
            );
        }
        if self.live_mgr.len() >= self.limits.max_managers {
            return fail!(
                Invariant::I6,
                "manager m{mgr} for {key} is one more than the limit of {}",
                self.limits.max_managers
            );
        }
        self.live_mgr.insert(key.clone(), mgr);
        self.mode_of_key.insert(key.clone(), Mode::Unified);
        Ok(())
    }

    pub(super) fn manager_removed(&mut self, key: &Key, mgr: u64) -> Checked {
        match self.live_mgr.get(key) {
            Some(&live) if live == mgr => {}
            other => {
                return fail!(
                    Invariant::I5,
                    "manager m{mgr} of {key} was removed, but the registry held {other:?}"
                )
            }
        }
        let live = self.live_by_key.get(key).copied().unwrap_or(0);
        if live > 0 {
            return fail!(
                Invariant::I5,
                "manager m{mgr} of {key} was removed with {live} connection(s) still on it"
            );
        }
        // A new manager of this key numbers its messages from 1 again.
        self.live_mgr.remove(key);
        self.mode_of_key.remove(key);
        self.removed_mgr.insert((key.clone(), mgr));
        Ok(())
    }

    /// A client learned which key, manager and connection it got: a key that moved while the
    /// user's old manager lives is a second manager; the manager handed out must be the one
    /// the registry holds, and never one it removed.
    pub(super) fn connected(&mut self, user: &Key, key: &Key, mgr: u64, conn: u64) -> Verdict {
        if let Some(old) = self.key_of_user.get(user).filter(|old| *old != key) {
            if let Some(old_mgr) = self.live_mgr.get(old) {
                return fail!(Invariant::I2, "user {user} now has two live managers: m{old_mgr} (key {old}) and m{mgr} (key {key}); events sent through one never reach tabs on the other")
                    .map_err(|f| (TWO_MANAGERS, f));
            }
        }
        self.handed(user, key, mgr)
            .map_err(|f| (MANAGER_HANDED, f))?;
        self.key_of_user.insert(user.clone(), key.clone());
        self.user_of_key.insert(key.clone(), user.clone());
        if let Some(c) = self.conns.get_mut(&conn) {
            c.owner = Some(user.clone());
        }
        Ok(())
    }

    /// The manager a connect handed out: the registry's, and not one it removed.
    fn handed(&self, user: &Key, key: &Key, mgr: u64) -> Checked {
        if self.checks.unique_ids && self.removed_mgr.contains(&(key.clone(), mgr)) {
            return fail!(
                Invariant::I9,
                "{user} was handed manager m{mgr}, which had already been removed"
            );
        }
        match self.live_mgr.get(key) {
            Some(&live) if live == mgr => Ok(()),
            other => fail!(
                Invariant::I2,
                "{user} was handed manager m{mgr}, but the registry holds {} for key {key}",
                other.map_or("none".to_owned(), |m| format!("m{m}"))
            ),
        }
    }
}
