//! The [`Recorder`]: the core's observer and the clients' log in one. Every observation and every
//! client action becomes a numbered [`Step`], is hashed, kept (all, or the last few), and checked
//! by the [`Checker`] before the next step happens.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::time::Instant;
use wsreg::{Observation, Observer, Payload};

use crate::check::coverage::Coverage;
use crate::check::invariant::holding::{Learned, Noted};
use crate::check::invariant::violation;
use crate::check::invariant::{Checker, Violation};
use crate::check::trace::{Confirmed, MsgTag, Step, TraceHash, What};
use crate::generate::config::Limits;
use crate::generate::sites::{Site, SITES};
use crate::run::backend::Probe;

/// How much of the trace to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Every step (for single runs, replays and snapshots).
    All,
    /// The last `n` steps (for campaigns).
    Tail(usize),
    /// Nothing: no observer installed, no checks, no trace; only client steps are counted.
    /// The benchmark's bare-madsim baseline, never a way to test.
    Nothing,
    /// The way such tests are usually written: no observer and no per-step model; at the end,
    /// only what clients received is checked (each message was addressed to its reader), plus
    /// the world's end checks (idle managers gone, no stall). The zoo benchmark's baseline.
    EndOfRun,
}

/// Counts of what a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Connections opened.
    pub connections: u64,
    /// Messages accepted by the core.
    pub accepted: u64,
    /// Messages read by simulated clients.
    pub received: u64,
    /// Managers created.
    pub managers: u64,
    /// Per simulated user (by name): what was accepted for it and what its tabs read.
    pub per_user: BTreeMap<String, Receipts>,
}

/// The user's receipts, made on first use.
fn receipts<'a>(stats: &'a mut Stats, user: &str) -> &'a mut Receipts {
    if !stats.per_user.contains_key(user) {
        stats.per_user.insert(user.to_owned(), Receipts::default());
    }
    stats.per_user.get_mut(user).expect("inserted above")
}

/// What was sent to one user and what its tabs read, over all its tabs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Receipts {
    /// Messages the backend accepted for the user.
    pub accepted: u64,
    /// Messages its tabs read (a message read by two tabs counts twice).
    pub received: u64,
    /// Gap markers its tabs read.
    pub gaps: u64,
    /// Messages or gap markers that reached a tab's buffer but were lost unread when the tab
    /// crashed.
    pub lost_unread: u64,
}

/// What a finished recorder hands back.
#[derive(Debug)]
pub struct Recording {
    /// Steps taken.
    pub steps: u64,
    /// The running hash after the last step.
    pub hash: u64,
    /// The kept steps.
    pub trace: Vec<Step>,
    /// What senders were told, in order (with every step kept; see [`Confirmed`]).
    pub confirms: Vec<Confirmed>,
    /// What clients learned that no step shows, beside the trace (with every step kept).
    pub learned: Vec<Noted>,
    /// The first violation, if any.
    pub violation: Option<Violation>,
    /// Coverage points hit.
    pub coverage: Coverage,
    /// Counts.
    pub stats: Stats,
}

struct State {
    n: u64,
    hash: TraceHash,
    keep: Keep,
    trace: VecDeque<Step>,
    confirms: Vec<Confirmed>,
    learned: Vec<Noted>,
    checker: Checker,
    violation: Option<Violation>,
    stats: Stats,
}

/// Records and checks every step of one run.
pub struct Recorder {
    start: Instant,
    checking: bool,
    end_of_run: bool,
    end_violation: Mutex<Option<Violation>>,
    unchecked_steps: std::sync::atomic::AtomicU64,
    failed: AtomicBool,
    /// Times buggify fired, per site (in [`SITES`] order).
    buggified: [AtomicU64; SITES.len()],
    state: Mutex<State>,
}

impl Recorder {
    /// The end-of-run baseline keeps only the first misaddressed receipt, to report at the end.
    fn note_for_the_end(&self, user: &Arc<str>, n: u64, what: &What) {
        if let What::Received { msg, at, .. } = what {
            let mut first = self
                .end_violation
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if first.is_none() && msg.owner() != &**user {
                *first = Some(violation!(
                    n,
                    crate::check::invariant::Invariant::I1,
                    "at the end: user {user} had received {}'s {} ({at})",
                    msg.owner(),
                    msg.kind
                ));
            }
        }
    }

    /// Counts a yield buggify added at `site` (coverage, not a step: traces stay as they were).
    pub fn buggified(&self, site: Site) {
        self.buggified[site as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Whether steps are checked (every mode but [`Keep::Nothing`] and [`Keep::EndOfRun`]).
    pub fn checking(&self) -> bool {
        self.checking
    }

    /// Applies only `checks` from now on (set once the backend says what it offers).
    pub fn set_checks(&self, checks: crate::check::invariant::Checks) {
        self.lock().checker.set_checks(checks);
    }

    /// A recorder for a run with these limits (`network`: a run through the server, whose
    /// coverage counts the network points too).
    pub fn new(limits: Limits, keep: Keep, network: bool) -> Self {
        Self {
            start: Instant::now(),
            checking: !matches!(keep, Keep::Nothing | Keep::EndOfRun),
            end_of_run: keep == Keep::EndOfRun,
            end_violation: Mutex::new(None),
            unchecked_steps: std::sync::atomic::AtomicU64::new(0),
            failed: AtomicBool::new(false),
            buggified: Default::default(),
            state: Mutex::new(State {
                n: 0,
                hash: TraceHash::default(),
                keep,
                trace: VecDeque::new(),
                confirms: Vec::new(),
                learned: Vec::new(),
                checker: if network {
                    Checker::new(limits).over_network()
                } else {
                    Checker::new(limits)
                },
                violation: None,
                stats: Stats::default(),
            }),
        }
    }

    /// Judges the run as one over many nodes (see the checker's `over_many_nodes`).
    pub fn over_many_nodes(&self) {
        self.lock().checker.over_many_nodes();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether an invariant has broken (the run then winds down).
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// Records one step and checks it. After a violation, further steps are ignored.
    pub fn record(&self, user: Arc<str>, conn: Option<u64>, mgr: Option<u64>, what: What) {
        self.record_tab(user, conn, mgr, None, what);
    }

    /// Records one step about a client's tab (`tab`: the client's own number for it).
    pub fn record_tab(
        &self,
        user: Arc<str>,
        conn: Option<u64>,
        mgr: Option<u64>,
        tab: Option<u64>,
        what: What,
    ) {
        if !self.checking {
            let n = self.unchecked_steps.fetch_add(1, Ordering::Relaxed) + 1;
            if self.end_of_run {
                self.note_for_the_end(&user, n, &what);
            }
            return;
        }
        let mut st = self.lock();
        if st.violation.is_some() {
            return;
        }
        st.n += 1;
        let step = Step {
            n: st.n,
            t_us: self.start.elapsed().as_micros() as u64,
            user,
            conn,
            mgr,
            tab,
            what,
        };
        match &step.what {
            What::ConnAdded { .. } => st.stats.connections += 1,
            What::Accepted { .. } => {
                st.stats.accepted += 1;
                receipts(&mut st.stats, &step.user).accepted += 1;
            }
            What::Received { lost, .. } => {
                st.stats.received += 1;
                let r = receipts(&mut st.stats, &step.user);
                if *lost {
                    r.lost_unread += 1;
                } else {
                    r.received += 1;
                }
            }
            What::Gap { lost, .. } => {
                let r = receipts(&mut st.stats, &step.user);
                if *lost {
                    r.lost_unread += 1;
                } else {
                    r.gaps += 1;
                }
            }
            What::ManagerCreated { .. } => st.stats.managers += 1,
            _ => {}
        }
        st.hash.add(&step);
        let checked = st.checker.on_step(&step);
        if let Keep::Tail(n) = st.keep {
            if st.trace.len() >= n {
                st.trace.pop_front();
            }
        }
        st.trace.push_back(step);
        if let Err(v) = checked {
            st.violation = Some(v);
            self.failed.store(true, Ordering::Relaxed);
        }
    }

    /// Checks a probe of `user`'s manager against the model.
    pub fn probe(&self, user: &Arc<str>, probe: Option<Probe>) {
        let mut st = self.lock();
        if st.violation.is_some() {
            return;
        }
        if let Err(v) = st.checker.on_probe(user, probe, st.n) {
            st.violation = Some(v);
            self.failed.store(true, Ordering::Relaxed);
        }
    }

    /// Checks that a message its sender was told is accepted (at `at`) really was, and files
    /// it as what the user's tabs must receive at that position.
    pub fn confirm(&self, user: &Arc<str>, msg: &MsgTag, at: wsreg::Position) {
        if !self.checking {
            return;
        }
        let mut st = self.lock();
        let step = st.n;
        if st.keep == Keep::All {
            st.confirms.push(Confirmed {
                step,
                user: Arc::clone(user),
                msg: msg.clone(),
                at,
            });
        }
        if st.violation.is_some() {
            return;
        }
        if let Err(v) = st.checker.on_confirm(user, msg, at, step) {
            st.violation = Some(v);
            self.failed.store(true, Ordering::Relaxed);
        }
    }

    /// Judges what a client learned that no step shows: a close returned, a socket ended, a
    /// refusal's typed error (about its tab `tab`, or about no tab).
    pub fn learned(&self, user: &Arc<str>, tab: Option<u64>, learned: &Learned) {
        if !self.checking {
            return;
        }
        let mut st = self.lock();
        if st.violation.is_some() {
            return;
        }
        let step = st.n;
        if st.keep == Keep::All {
            st.learned.push(Noted {
                step,
                user: Arc::clone(user),
                tab,
                learned: learned.clone(),
            });
        }
        if let Err(v) = st.checker.on_learned(user, tab, learned, step) {
            st.violation = Some(v);
            self.failed.store(true, Ordering::Relaxed);
        }
    }

    /// Checks that every open tab of a user is on the stream its user's messages went to
    /// (once everything has healed); records the violation if not.
    pub fn check_fan_out(&self) {
        let v = {
            let st = self.lock();
            st.checker.fan_out(st.n).err()
        };
        if let Some(v) = v {
            self.violate(v);
        }
    }

    /// Open tabs that have not yet read everything their senders were told about.
    pub fn in_flight(&self) -> usize {
        self.lock().checker.in_flight()
    }

    /// What each tab that is behind still misses, in a user's words.
    pub fn in_flight_by_tab(&self) -> Vec<String> {
        self.lock().checker.in_flight_by_tab()
    }

    /// Records a violation found outside the step checks (the liveness phase's).
    pub fn violate(&self, v: Violation) {
        let mut st = self.lock();
        if st.violation.is_none() {
            st.violation = Some(v);
            self.failed.store(true, Ordering::Relaxed);
        }
    }

    /// The number of the last step.
    pub fn last_step(&self) -> u64 {
        self.lock().n
    }

    /// Runs the end-of-run history checks and hands everything back.
    pub fn finish(&self, history: bool) -> Recording {
        let mut st = self.lock();
        if st.violation.is_none() {
            let end = self
                .end_violation
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            st.violation = end.clone();
        }
        if history && st.violation.is_none() {
            if let Err(v) = st.checker.finish(st.n) {
                st.violation = Some(v);
            }
        }
        Recording {
            steps: st.n + self.unchecked_steps.load(Ordering::Relaxed),
            hash: st.hash.value(),
            trace: std::mem::take(&mut st.trace).into(),
            confirms: std::mem::take(&mut st.confirms),
            learned: std::mem::take(&mut st.learned),
            violation: st.violation.clone(),
            coverage: {
                let mut coverage = st.checker.coverage().clone();
                for (site, fired) in SITES.iter().zip(&self.buggified) {
                    match fired.load(Ordering::Relaxed) {
                        0 => {}
                        n => coverage.add_named(site.1, n),
                    }
                }
                coverage
            },
            stats: std::mem::take(&mut st.stats),
        }
    }
}

/// The harness's tag of a payload: its kind and its run id or text, plus what tells one run's
/// events of a kind apart (the tool, or the thought), so every message the harness sends has a
/// tag of its own.
pub fn tag(payload: &Payload) -> MsgTag {
    use wsreg::AgentEvent::*;
    let tag = match payload {
        Payload::Agent(e @ (AgentStarted { .. } | AgentCompleted { .. })) => Arc::from(e.run_id()),
        Payload::Agent(AgentThinking {
            run_id, reasoning, ..
        }) => Arc::from(format!("{run_id}:{reasoning}")),
        Payload::Agent(ToolExecuting {
            run_id, tool_name, ..
        })
        | Payload::Agent(ToolCompleted {
            run_id, tool_name, ..
        }) => Arc::from(format!("{run_id}:{tool_name}")),
        Payload::Text { text } => Arc::from(text.as_str()),
        Payload::Gap { from, to, reason } => Arc::from(format!("{from}..{to} {reason}")),
    };
    let kind = match payload {
        Payload::Agent(e) => e.kind(),
        Payload::Text { .. } => "text",
        Payload::Gap { .. } => "gap",
    };
    MsgTag { kind, tag }
}

impl Observer for Recorder {
    fn observe(&self, o: &Observation<'_>) {
        let (user, conn, mgr, what) = match *o {
            Observation::ManagerCreated {
                user,
                manager,
                epoch,
            } => (user, None, manager, What::ManagerCreated { epoch }),
            Observation::ManagerRemoved {
                user,
                manager,
                reason,
            } => (user, None, manager, What::ManagerRemoved(reason)),
            Observation::ConnectionAdded {
                user,
                manager,
                conn,
                live,
                ..
            } => (user, Some(conn), manager, What::ConnAdded { live }),
            Observation::ConnectionRemoved {
                user,
                manager,
                conn,
                reason,
                live,
            } => (
                user,
                Some(conn),
                manager,
                What::ConnRemoved { reason, live },
            ),
            Observation::Accepted {
                user,
                manager,
                at,
                payload,
            } => (
                user,
                None,
                manager,
                What::Accepted {
                    at,
                    msg: tag(payload),
                },
            ),
            Observation::Delivered {
                user,
                manager,
                conn,
                envelope,
            } => (
                user,
                Some(conn),
                manager,
                What::Delivered {
                    seq: envelope.seq(),
                },
            ),
            Observation::Trimmed {
                user,
                manager,
                from,
                to,
                ..
            } => (user, None, manager, What::Trimmed { from, to }),
            Observation::ModeChanged {
                user,
                manager,
                from,
                to,
            } => (user, None, manager, What::ModeChanged { from, to }),
            _ => return,
        };
        self.record(
            user.to_shared(),
            conn.map(|c| c.get()),
            Some(mgr.get()),
            what,
        );
    }
}
