//! What a client holds, from its own side: each connect attempt (by the client's number for
//! it) from the moment it was asked to the moment the client knows the backend let it go, and
//! the refusals and closes judged against that (I5, I6). A refusal at a limit is checked
//! against every tab that could have been counted while the connect was in flight (closes and
//! crash cleanups still in flight included), so a correct registry is never blamed for a race
//! it won fairly; a held tab that the backend forgot, closed without a reason, or registered
//! after its client gave up is a finding.

use std::collections::{BTreeMap, BTreeSet};

use fnv::FnvHashMap;

use super::{Checked, Failed, Invariant, Key};
use crate::generate::config::Limits;

/// What a client learned that the trace does not show as a step of its own.
#[derive(Clone, Debug)]
pub enum Learned {
    /// The close of a tab (or the server's cleanup of a crashed one) returned: the backend has
    /// let it go.
    Released,
    /// The tab's socket ended while its client neither closed nor crashed it.
    Ended,
    /// The typed error of the refusal the step before records.
    Refusal(wsreg::Error),
}

/// What a client learned, as a run keeps it beside its trace (with every step kept), so the
/// run can be judged again from its record.
#[derive(Clone, Debug)]
pub struct Noted {
    /// The last step before the client learned it.
    pub step: u64,
    /// The simulated user.
    pub user: Key,
    /// The client's number for the tab it is about, if any.
    pub tab: Option<u64>,
    /// What it learned.
    pub learned: Learned,
}

/// Where one connect attempt stands, as its client knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Asked; no answer yet.
    Connecting,
    /// Accepted, and the client holds it.
    Held,
    /// Its client closed it; the close has not returned.
    Closing,
    /// Its client crashed; nobody has told the client the backend let it go.
    Crashed,
    /// The backend ended it without being asked.
    Ended,
    /// Its client gave up waiting for the connect.
    Abandoned,
    /// The client knows the backend holds nothing of it since this step.
    Gone(u64),
}

#[derive(Clone, Debug)]
struct Attempt {
    /// The step it was asked at.
    asked: u64,
    state: State,
}

impl Attempt {
    /// Whether a backend could have counted it at some moment since step `since`.
    fn counted_since(&self, since: u64) -> bool {
        match self.state {
            State::Gone(at) => at > since,
            _ => true,
        }
    }
}

/// A refusal that is wrong unless one of `tabs` turns out to have been ended by the backend
/// (a close or timeout the client had not heard of yet): judged when the run ends.
#[derive(Clone, Debug)]
struct Doubt {
    step: u64,
    tabs: Vec<u64>,
    failed: Failed,
}

/// The model of what each client holds.
#[derive(Debug, Default)]
pub(crate) struct Holding {
    attempts: BTreeMap<u64, Attempt>,
    by_user: FnvHashMap<Key, Vec<u64>>,
    /// Tabs the backend ended (or lost with its process): a client holding one may be told it
    /// does not exist.
    ended: BTreeSet<u64>,
    doubts: Vec<Doubt>,
    /// Attempts their clients gave up on.
    given_up: BTreeSet<u64>,
    /// Tabs their clients crashed (whatever became of them since).
    crashed: BTreeSet<u64>,
    /// Through the real server a close always carries its code and reason, and a crashed or
    /// abandoned socket is let go whenever the server notices.
    network: bool,
}

impl Holding {
    pub(crate) fn new(network: bool) -> Self {
        Self {
            network,
            ..Self::default()
        }
    }

    /// A client asked to connect; `tab` is its number for the attempt.
    pub(crate) fn asked(&mut self, user: &Key, tab: u64, step: u64) {
        let list = self.by_user.entry(user.clone()).or_default();
        // What was let go before every attempt still in flight began can count no more.
        let oldest = list
            .iter()
            .filter_map(|t| self.attempts.get(t))
            .filter(|a| a.state == State::Connecting)
            .map(|a| a.asked)
            .min()
            .unwrap_or(step);
        list.retain(|t| match self.attempts.get(t).map(|a| a.state) {
            Some(State::Gone(at)) if at < oldest => {
                self.attempts.remove(t);
                false
            }
            Some(_) => true,
            None => false,
        });
        list.push(tab);
        self.attempts.insert(
            tab,
            Attempt {
                asked: step,
                state: State::Connecting,
            },
        );
    }

    fn set(&mut self, tab: u64, state: State) -> Option<State> {
        let a = self.attempts.get_mut(&tab)?;
        Some(std::mem::replace(&mut a.state, state))
    }

    /// The backend accepted the attempt.
    pub(crate) fn accepted(&mut self, tab: u64) {
        self.set(tab, State::Held);
    }

    /// The client closed the tab (`crashed`: dropped it without closing).
    pub(crate) fn left(&mut self, tab: u64, crashed: bool) {
        if crashed {
            self.crashed.insert(tab);
        }
        self.set(
            tab,
            if crashed {
                State::Crashed
            } else {
                State::Closing
            },
        );
    }

    /// The tab dropped with its server node, which died: the node holds nothing of it any
    /// more (the slot it took in the store may count until its lease runs out, which the
    /// many-node judgment allows for).
    pub(crate) fn dropped(&mut self, tab: u64, step: u64) {
        self.ended.insert(tab);
        self.set(tab, State::Gone(step));
    }

    /// The world settled: every tab was closed (or dropped) and no server holds a connection
    /// any more, so nothing asked before `step` counts from now on.
    pub(crate) fn settled(&mut self, step: u64) {
        for a in self.attempts.values_mut() {
            if !matches!(a.state, State::Gone(_)) {
                a.state = State::Gone(step);
            }
        }
    }

    /// The client gave up on a connect. In process a correct backend's connect, dropped, holds
    /// nothing; through the server the socket is let go whenever the server notices.
    pub(crate) fn gave_up(&mut self, tab: u64, step: u64) {
        self.given_up.insert(tab);
        let state = if self.network {
            State::Abandoned
        } else {
            State::Gone(step)
        };
        self.set(tab, state);
    }

    /// The step a connect its client gave up on was asked at (`None`: `tab` is not one).
    pub(crate) fn abandoned(&self, tab: u64) -> Option<u64> {
        self.given_up.contains(&tab).then(|| self.asked_at(tab))
    }

    /// The step `tab`'s connect was asked at (0 when the model no longer holds it).
    fn asked_at(&self, tab: u64) -> u64 {
        self.attempts.get(&tab).map_or(0, |a| a.asked)
    }

    /// The server process died: every tab it held is gone (and its clients know).
    pub(crate) fn server_lost(&mut self, step: u64) {
        for (tab, a) in &mut self.attempts {
            if a.state != State::Connecting {
                if matches!(a.state, State::Held | State::Closing | State::Ended) {
                    self.ended.insert(*tab);
                }
                if !matches!(a.state, State::Gone(_)) {
                    a.state = State::Gone(step);
                }
            }
        }
    }

    /// What a client learned about `tab` (or, for a refusal of a call about no tab, about
    /// `user`), after step `step`.
    pub(crate) fn learned(
        &mut self,
        user: &Key,
        tab: Option<u64>,
        learned: &Learned,
        step: u64,
        limits: &Limits,
    ) -> Checked {
        match (learned, tab) {
            // Through the server a close returns once it is sent; the socket's end, after the
            // server let the tab go, is what says it is gone.
            (Learned::Released, Some(tab)) if !self.network => {
                self.set(tab, State::Gone(step));
                Ok(())
            }
            (Learned::Ended, Some(tab)) => self.ended(user, tab, step),
            (Learned::Refusal(error), tab) => self.refused(user, tab, error, step, limits),
            _ => Ok(()),
        }
    }

    fn ended(&mut self, user: &Key, tab: u64, step: u64) -> Checked {
        self.ended.insert(tab);
        if self.set(tab, State::Ended) != Some(State::Held) {
            // A close or crash was already under way: the end is its answer.
            self.set(tab, State::Gone(step));
            return Ok(());
        }
        if self.network {
            return Ok(()); // the server's close frame carries its reason
        }
        let asked = self.asked_at(tab);
        fail!(
            Invariant::I5,
            "{user}'s tab (asked for at step {asked}) was closed by the backend while its client held it, without being asked and without a reason the client could be told: a tab its client holds must go on being served (a slow one gets gap markers)"
        )
    }

    /// Tabs of `user` whose connect was asked before step `now` and that a backend could have
    /// counted at some moment since step `since`, but `except`.
    fn could_count(&self, user: Option<&Key>, except: u64, since: u64, now: u64) -> usize {
        let counts =
            |(tab, a): (&u64, &Attempt)| *tab != except && a.asked < now && a.counted_since(since);
        match user {
            Some(user) => self.by_user.get(user).map_or(0, |list| {
                list.iter()
                    .filter_map(|t| self.attempts.get_key_value(t))
                    .filter(|&entry| counts(entry))
                    .count()
            }),
            None => self.attempts.iter().filter(|&entry| counts(entry)).count(),
        }
    }

    fn refused(
        &mut self,
        user: &Key,
        tab: Option<u64>,
        error: &wsreg::Error,
        step: u64,
        limits: &Limits,
    ) -> Checked {
        use wsreg::Error as E;
        let attempt = tab.and_then(|t| self.attempts.get(&t).map(|a| (t, a.asked, a.state)));
        match (error, attempt) {
            (E::UserConnectionLimit { .. }, Some((tab, asked, State::Connecting))) => {
                self.set(tab, State::Gone(step));
                let max = limits.max_connections_per_user;
                let open = self.could_count(Some(user), tab, asked, step);
                if open < max {
                    return fail!(Invariant::I6, "{user}'s connect of step {asked} was refused at the per-user limit of {max}, but at most {open} of its tabs could have been open while it was in flight (closes in flight counted): a false refusal");
                }
                Ok(())
            }
            (E::ConnectionLimit { .. }, Some((tab, asked, State::Connecting))) => {
                self.set(tab, State::Gone(step));
                let max = limits.max_connections;
                let open = self.could_count(None, tab, asked, step);
                if open < max {
                    return fail!(Invariant::I6, "{user}'s connect of step {asked} was refused at the limit of {max} connections, but at most {open} tabs could have been open while it was in flight (closes in flight counted): a false refusal");
                }
                Ok(())
            }
            (_, Some((tab, _, State::Connecting))) => {
                self.set(tab, State::Gone(step));
                Ok(())
            }
            (
                E::UnknownConnection { .. } | E::UnknownUser { .. } | E::ManagerClosed { .. },
                Some((tab, _, State::Closing)),
            ) => {
                if self.ended.contains(&tab) {
                    return Ok(());
                }
                let asked = self.asked_at(tab);
                let failed: Checked = fail!(Invariant::I5, "{user} closed its tab (asked for at step {asked}), which the backend accepted and never ended, and was told: {error}");
                self.doubt(step, vec![tab], failed);
                Ok(())
            }
            (E::UnknownUser { .. } | E::ManagerClosed { .. }, None) => {
                let held: Vec<u64> = self
                    .by_user
                    .get(user)
                    .into_iter()
                    .flatten()
                    .filter(|t| self.attempts.get(t).map(|a| a.state) == Some(State::Held))
                    .copied()
                    .collect();
                if let Some(&first) = held.first() {
                    let asked = self.asked_at(first);
                    let failed: Checked = fail!(Invariant::I5, "{user} holds a tab (asked for at step {asked}) that the backend accepted and never ended, yet its call was refused: {error}");
                    self.doubt(step, held, failed);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn doubt(&mut self, step: u64, tabs: Vec<u64>, failed: Checked) {
        if let Err(failed) = failed {
            self.doubts.push(Doubt { step, tabs, failed });
        }
    }

    /// At the end of the run: the first refusal that told a client a tab it held did not
    /// exist, where the backend never ended that tab (with the step it was refused at).
    /// A tab its client later dropped without reading its end counts as explained when
    /// `crashed_explains` (over many nodes a node closes tabs on its
    /// own, and a client that drops one before the close reaches it never learns of it).
    pub(crate) fn unexplained_unless(&self, crashed_explains: bool) -> Option<(u64, Failed)> {
        let explained =
            |t: &u64| self.ended.contains(t) || (crashed_explains && self.crashed.contains(t));
        self.doubts
            .iter()
            .find(|d| !d.tabs.iter().all(explained))
            .map(|d| (d.step, d.failed.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT_OF_TWO: Limits = Limits {
        max_managers: 100,
        max_connections: 100,
        max_connections_per_user: 2,
        history_capacity: 8,
        history_ttl_ms: 1_000,
        idle_ttl_ms: 100,
    };

    fn at_limit(user: &str) -> Learned {
        Learned::Refusal(wsreg::Error::UserConnectionLimit {
            user: user.into(),
            max: 2,
        })
    }

    fn unknown(user: &str) -> Learned {
        Learned::Refusal(wsreg::Error::UnknownConnection {
            user: user.into(),
            conn: "c1".into(),
        })
    }

    /// u1 holds tab 1 (asked at step 1, accepted); its tab 2 is asked at step `asked2`.
    fn one_held(network: bool) -> (Holding, Key) {
        let mut h = Holding::new(network);
        let u: Key = "u1".into();
        h.asked(&u, 1, 1);
        h.accepted(1);
        (h, u)
    }

    fn judge(h: &mut Holding, u: &Key, tab: u64, learned: &Learned, step: u64) -> Checked {
        h.learned(u, Some(tab), learned, step, &LIMIT_OF_TWO)
    }

    #[test]
    fn a_refusal_at_the_limit_below_it_is_a_false_refusal() {
        let (mut h, u) = one_held(false);
        h.asked(&u, 2, 5);
        let f = judge(&mut h, &u, 2, &at_limit("u1"), 6).unwrap_err();
        assert_eq!(f.invariant, Invariant::I6);
        assert!(f.message.contains("of step 5"), "{}", f.message);
        assert!(f.message.contains("at most 1 of its tabs"), "{}", f.message);
    }

    #[test]
    fn a_refusal_at_the_limit_allows_for_closes_and_connects_in_flight() {
        // Two held, the second closing (its close has not returned): the limit may stand.
        let (mut h, u) = one_held(false);
        h.asked(&u, 2, 2);
        h.accepted(2);
        h.left(2, false);
        h.asked(&u, 3, 4);
        assert!(judge(&mut h, &u, 3, &at_limit("u1"), 5).is_ok());
        // Released after the refused connect was asked: it may still have counted.
        let (mut h, u) = one_held(false);
        h.asked(&u, 2, 2);
        h.accepted(2);
        h.asked(&u, 3, 4);
        judge(&mut h, &u, 2, &Learned::Released, 5).unwrap();
        assert!(judge(&mut h, &u, 3, &at_limit("u1"), 6).is_ok());
        // Released before it was asked: it could not count.
        let (mut h, u) = one_held(false);
        h.asked(&u, 2, 2);
        h.accepted(2);
        judge(&mut h, &u, 2, &Learned::Released, 3).unwrap();
        h.asked(&u, 3, 4);
        assert!(judge(&mut h, &u, 3, &at_limit("u1"), 6).is_err());
        // Another connect in flight counts.
        let (mut h, u) = one_held(false);
        h.asked(&u, 2, 2);
        h.asked(&u, 3, 3);
        assert!(judge(&mut h, &u, 3, &at_limit("u1"), 4).is_ok());
    }

    #[test]
    fn through_the_server_a_close_counts_until_its_socket_ends() {
        let (mut h, u) = one_held(true);
        h.asked(&u, 2, 2);
        h.accepted(2);
        h.left(2, false);
        judge(&mut h, &u, 2, &Learned::Released, 3).unwrap(); // sent, not yet done
        h.asked(&u, 3, 4);
        assert!(judge(&mut h, &u, 3, &at_limit("u1"), 5).is_ok());
    }

    #[test]
    fn a_held_tab_ended_unasked_is_a_finding_in_process_only() {
        let (mut h, u) = one_held(false);
        let f = judge(&mut h, &u, 1, &Learned::Ended, 2).unwrap_err();
        assert_eq!(f.invariant, Invariant::I5);
        let (mut h, u) = one_held(true);
        assert!(judge(&mut h, &u, 1, &Learned::Ended, 2).is_ok());
        // The end of a tab its client is closing is the close's answer.
        let (mut h, u) = one_held(false);
        h.left(1, false);
        assert!(judge(&mut h, &u, 1, &Learned::Ended, 2).is_ok());
    }

    #[test]
    fn a_held_tab_refused_as_unknown_is_a_finding_unless_the_backend_ended_it() {
        let (mut h, u) = one_held(true);
        h.left(1, false);
        judge(&mut h, &u, 1, &unknown("u1"), 3).unwrap();
        let (step, f) = h.unexplained_unless(false).expect("a doubt");
        assert_eq!((step, f.invariant), (3, Invariant::I5));
        // The server had ended it: the client just had not heard yet.
        judge(&mut h, &u, 1, &Learned::Ended, 4).unwrap();
        assert!(h.unexplained_unless(false).is_none());
    }

    #[test]
    fn a_call_refused_for_no_manager_while_a_tab_is_held_is_a_finding() {
        let (mut h, u) = one_held(false);
        let no_manager = Learned::Refusal(wsreg::Error::UnknownUser { user: "u1".into() });
        h.learned(&u, None, &no_manager, 3, &LIMIT_OF_TWO).unwrap();
        assert!(h.unexplained_unless(false).is_some());
        // With nothing held, "no manager" is the truth.
        let mut h = Holding::new(false);
        h.learned(&u, None, &no_manager, 3, &LIMIT_OF_TWO).unwrap();
        assert!(h.unexplained_unless(false).is_none());
    }

    #[test]
    fn an_attempt_given_up_on_is_known_as_such() {
        let (mut h, u) = one_held(false);
        h.asked(&u, 2, 2);
        h.gave_up(2, 3);
        assert_eq!((h.abandoned(2), h.abandoned(1)), (Some(2), None));
        // In process, a connect given up on holds nothing from then on.
        h.asked(&u, 3, 4);
        assert!(judge(&mut h, &u, 3, &at_limit("u1"), 5).is_err());
    }
}
