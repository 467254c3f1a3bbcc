//! The one reading of what the tabs of a run received: every finding the black-box oracle
//! makes on the run, judged again from what the run recorded (its steps, and what senders were
//! told). The run's verdict is the first finding that counts; the report page shows them all,
//! tab by tab; they cannot disagree, because they are the same checks on the same record.
//!
//! A finding is typed by the invariant it breaks and the rule that fired (the check's message
//! template). After a finding on a tab's read, the tab's reading moves on past what it read, so
//! one fault is one finding rather than one per later message.

use std::sync::Arc;

use super::coverage::Coverage;
use super::invariant::holding::{Holding, Noted};
use super::invariant::{BlackBox, Invariant, Judge};
use super::trace::{Confirmed, Step, What};
use crate::generate::config::Limits;

/// What the black-box oracle found at one step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The step after which it was found.
    pub step: u64,
    /// The simulated user it is about (the tab's holder, or the sender).
    pub user: Arc<str>,
    /// The tab's connection (the backend's number), when it is about one.
    pub conn: Option<u64>,
    /// The client's own number for that tab, when it is about one.
    pub tab: Option<u64>,
    /// The invariant it breaks.
    pub invariant: Invariant,
    /// The check that fired: its message's template.
    pub rule: &'static str,
    /// What happened, in a user's words.
    pub message: String,
}

/// Every black-box finding of a recorded run, in order: its steps, what senders were told and
/// what clients learned beside them, under its limits (`network`: through the real server).
pub fn findings(
    trace: &[Step],
    confirms: &[Confirmed],
    learned: &[Noted],
    limits: &Limits,
    network: bool,
    nodes: u32,
) -> Vec<Finding> {
    let mut black = BlackBox::new(limits.clone());
    black.holding = Holding::new(network);
    if nodes > 1 {
        black.over_many_nodes();
    }
    let mut noted = learned.iter().peekable();
    let mut coverage = Coverage::default();
    let mut out = Vec::new();
    let mut told = confirms.iter().peekable();
    // A tab, as a finding names it: the client's number for it (if recorded) and the backend's.
    let mut found = |step: u64,
                     user: &Arc<str>,
                     tab: Option<(Option<u64>, u64)>,
                     f: super::invariant::Failed| {
        out.push(Finding {
            step,
            user: Arc::clone(user),
            conn: tab.map(|(_, conn)| conn),
            tab: tab.and_then(|(tab, _)| tab),
            invariant: f.invariant,
            rule: f.rule,
            message: f.message,
        })
    };
    while let Some(c) = told.next_if(|c| c.step == 0) {
        if let Err((_, f)) = black.confirmed(&c.user, &c.msg, c.at, c.step) {
            found(c.step, &c.user, None, f);
        }
    }
    for s in trace {
        match &s.what {
            What::ServerDown => {
                black.holding.server_lost(s.n);
                black.server_lost();
            }
            What::Phase("heal") if nodes == 1 => {
                if let Some((tab, user, f)) = black.split_tab() {
                    found(s.n, &user, Some(black.names(tab)), f);
                }
            }
            What::Phase("close every tab") => {
                for (tab, user, f) in black.still_behind() {
                    found(s.n, &user, Some(black.names(tab)), f);
                }
            }
            _ => {
                if let Err((_, f)) = black.step(s, &mut coverage) {
                    found(s.n, &s.user, s.conn.map(|conn| (s.tab, conn)), f);
                    black.move_past(s);
                }
            }
        }
        while let Some(c) = told.next_if(|c| c.step <= s.n) {
            if let Err((_, f)) = black.confirmed(&c.user, &c.msg, c.at, c.step) {
                found(c.step, &c.user, None, f);
            }
        }
        while let Some(n) = noted.next_if(|n| n.step <= s.n) {
            if let Err((_, f)) = black.learned(&n.user, n.tab, &n.learned, n.step) {
                found(n.step, &n.user, None, f);
            }
        }
    }
    // Refusals that told a client a tab it held did not exist, where nothing ever ended it.
    if phase_reached(trace, "reap") {
        let last = trace.last().map_or(0, |s| s.n);
        let held_back = black.later.as_ref().and_then(|l| l.verdict(last));
        let doubts = black.holding.unexplained_unless(nodes > 1);
        for (step, f) in doubts.into_iter().chain(held_back) {
            let user = trace
                .iter()
                .find(|s| s.n == step)
                .map_or_else(|| Arc::from("-"), |s| Arc::clone(&s.user));
            found(step, &user, None, f);
        }
    }
    // A run stopped while it waited for its tabs to drain (at the liveness bound): what they
    // still missed then.
    let phase = |name| phase_reached(trace, name);
    if let Some(last) = trace
        .last()
        .filter(|_| phase("heal") && !phase("close every tab"))
    {
        for (tab, user, f) in black.still_behind() {
            found(last.n, &user, Some(black.names(tab)), f);
        }
    }
    out
}

/// Whether the run reached the phase `name`.
fn phase_reached(trace: &[Step], name: &'static str) -> bool {
    trace.iter().any(|s| s.what == What::Phase(name))
}
