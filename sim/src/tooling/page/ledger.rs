//! The per-tab delivery ledger: what each tab read, in which spans, which gaps it was told of,
//! and what went wrong with it. What went wrong is not judged here: it is every finding of the
//! black-box oracle on the run ([`crate::check::ledger`]), placed on the tab it is about, so
//! the page shows exactly what the verdict is made of, for any backend.

use std::sync::Arc;

use serde::Serialize;
use wsreg::{Epoch, Position};

use crate::check::invariant::Invariant;
use crate::check::ledger::Finding;
use crate::check::trace::{escaped, Step, What};

/// One entry of a ledger column: what, and the step that shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// What, e.g. `0.1#3..#7`.
    pub text: String,
    /// The step to jump to.
    pub step: u64,
}

/// What one tab (a connection as its client held it) read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TabLedger {
    /// The simulated user holding the tab.
    pub user: String,
    /// The connection number the backend gave it.
    pub conn: u64,
    /// The key the backend said it filed the tab under.
    pub key: String,
    /// How it connected: fresh, or resuming after a position (and whether the backend said
    /// nothing after it is missing).
    pub start: Entry,
    /// Runs of consecutive positions it read (`0.1#1..#5`), in reading order.
    pub read: Vec<Entry>,
    /// Gap markers it read: the backend's word that those positions will never come.
    pub gaps: Vec<Entry>,
    /// Findings of lost messages (I8): skipped with no gap marker, never read, a resume placed
    /// past what was asked.
    pub silent: Vec<Entry>,
    /// Findings of messages read twice (I7).
    pub duplicates: Vec<Entry>,
    /// Findings of order (I7), and anything else found on the tab.
    pub disorder: Vec<Entry>,
    /// Findings of someone else's messages (I1).
    pub foreign: Vec<Entry>,
    /// Messages that sat unread in its buffer when it crashed.
    pub lost_in_crash: usize,
    /// How it ended: closed, crashed, or still open when the run ended.
    pub end: Entry,
}

impl TabLedger {
    /// How many findings the tab shows.
    pub fn problems(&self) -> usize {
        self.silent.len() + self.duplicates.len() + self.disorder.len() + self.foreign.len()
    }

    /// Every finding the tab shows, in every column.
    pub fn findings(&self) -> impl Iterator<Item = &Entry> {
        self.silent
            .iter()
            .chain(&self.duplicates)
            .chain(&self.disorder)
            .chain(&self.foreign)
    }

    /// Files a finding in its column.
    fn file(&mut self, f: &Finding) {
        let entry = Entry {
            text: f.message.clone(),
            step: f.step,
        };
        let column = match f.invariant {
            Invariant::I1 => &mut self.foreign,
            Invariant::I8 => &mut self.silent,
            Invariant::I7 if f.message.contains(" again") || f.message.contains("a duplicate") => {
                &mut self.duplicates
            }
            _ => &mut self.disorder,
        };
        column.push(entry);
    }
}

/// A tab being followed through the trace.
struct Follow {
    ledger: TabLedger,
    /// The user holding it, as given (the ledger shows it escaped).
    user: Arc<str>,
    /// The client's own number for it, when the trace records one.
    tab: Option<u64>,
    /// The run of consecutive positions being read: (epoch, first, last, first step).
    run: Option<(Epoch, u64, u64, u64)>,
}

impl Follow {
    fn flush(&mut self) {
        if let Some((epoch, first, last, step)) = self.run.take() {
            let text = if first == last {
                format!("{epoch}#{first}")
            } else {
                format!("{epoch}#{first}..#{last}")
            };
            self.ledger.read.push(Entry { text, step });
        }
    }

    fn read(&mut self, at: Position, step: u64) {
        match &mut self.run {
            Some((epoch, _, last, _)) if *epoch == at.epoch && *last + 1 == at.seq => {
                *last = at.seq;
            }
            _ => {
                self.flush();
                self.run = Some((at.epoch, at.seq, at.seq, step));
            }
        }
    }
}

/// The ledger of every tab in the trace, in the order the tabs connected, each with the
/// `findings` about it (a finding names its tab by user and connection number; it belongs to
/// the last such tab opened before it).
pub fn ledgers(trace: &[Step], findings: &[Finding]) -> Vec<TabLedger> {
    let mut tabs: Vec<Follow> = Vec::new();
    // A step names its tab by the client's number when the trace records one, else by the
    // backend's connection number (the latest such tab opened by then).
    let find = |tabs: &[Follow], user: &str, conn: Option<u64>, tab: Option<u64>, step: u64| {
        if let Some(tab) = tab {
            return tabs.iter().rposition(|t| t.tab == Some(tab));
        }
        let conn = conn?;
        tabs.iter()
            .rposition(|t| t.ledger.conn == conn && &*t.user == user && t.ledger.start.step <= step)
    };
    for s in trace {
        match &s.what {
            What::Connected {
                key,
                asked,
                from,
                recovered,
            } => {
                let Some(conn) = s.conn else { continue };
                let start = match asked {
                    None => format!("fresh, continues after {from}"),
                    Some(a) => format!(
                        "resumed after {a}, continues after {from}{}",
                        if *recovered {
                            " (recovered)"
                        } else {
                            " (not recovered)"
                        }
                    ),
                };
                let entry = |text: &str| Entry {
                    text: text.to_owned(),
                    step: s.n,
                };
                tabs.push(Follow {
                    ledger: TabLedger {
                        user: escaped(&s.user).into_owned(),
                        conn,
                        key: escaped(key).into_owned(),
                        start: entry(&start),
                        read: Vec::new(),
                        gaps: Vec::new(),
                        silent: Vec::new(),
                        duplicates: Vec::new(),
                        disorder: Vec::new(),
                        foreign: Vec::new(),
                        lost_in_crash: 0,
                        end: entry("open when the run ended"),
                    },
                    user: Arc::clone(&s.user),
                    tab: s.tab,
                    run: None,
                });
            }
            What::Received { at, lost, .. } => {
                let Some(t) = find(&tabs, &s.user, s.conn, s.tab, s.n) else {
                    continue;
                };
                let t = &mut tabs[t];
                t.ledger.lost_in_crash += usize::from(*lost);
                t.read(*at, s.n);
            }
            What::Gap {
                at,
                from,
                reason,
                lost,
            } => {
                let Some(t) = find(&tabs, &s.user, s.conn, s.tab, s.n) else {
                    continue;
                };
                let t = &mut tabs[t];
                t.ledger.lost_in_crash += usize::from(*lost);
                t.flush();
                let span = if *from > at.seq {
                    format!("{} (nothing missing)", at.epoch)
                } else if *from == at.seq {
                    format!("{at}")
                } else {
                    format!("{}#{from}..#{}", at.epoch, at.seq)
                };
                t.ledger.gaps.push(Entry {
                    text: format!("{span} ({reason})"),
                    step: s.n,
                });
            }
            What::Close | What::Crash | What::Dropped { .. } => {
                let Some(t) = find(&tabs, &s.user, s.conn, s.tab, s.n) else {
                    continue;
                };
                let how = match s.what {
                    What::Close => "closed by its user",
                    What::Crash => "crashed",
                    _ => "dropped: its server node died",
                };
                tabs[t].ledger.end = Entry {
                    text: how.to_owned(),
                    step: s.n,
                };
            }
            _ => {}
        }
    }
    for f in findings {
        if let Some(t) = find(&tabs, &f.user, f.conn, f.tab, f.step) {
            tabs[t].ledger.file(f);
        }
    }
    tabs.into_iter()
        .map(|mut t| {
            t.flush();
            t.ledger
        })
        .collect()
}

/// The findings no tab shows: what senders were told (a position told twice), kept for the
/// page's list of the run's other findings.
pub fn about_senders(findings: &[Finding]) -> Vec<(String, Entry)> {
    findings
        .iter()
        .filter(|f| f.conn.is_none())
        .map(|f| {
            (
                escaped(&f.user).into_owned(),
                Entry {
                    text: f.message.clone(),
                    step: f.step,
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use wsreg::GapReason;

    use super::*;
    use crate::check::ledger::findings;
    use crate::check::trace::{Confirmed, MsgTag};
    use crate::generate::config::Limits;

    fn pos(seq: u64) -> Position {
        Position::new(Epoch::new(0, 1), seq)
    }

    fn step(n: u64, user: &str, what: What) -> Step {
        Step {
            n,
            t_us: n * 1000,
            user: user.into(),
            conn: Some(1),
            mgr: None,
            tab: None,
            what,
        }
    }

    fn msg(owner: &str, seq: u64) -> MsgTag {
        MsgTag {
            kind: "agent_thinking",
            tag: Arc::from(format!("{owner}/r1:step {seq}")),
        }
    }

    fn got(n: u64, user: &str, seq: u64, owner: &str) -> Step {
        step(
            n,
            user,
            What::Received {
                at: pos(seq),
                msg: msg(owner, seq),
                to: user.into(),
                lost: false,
            },
        )
    }

    fn connected(n: u64, user: &str) -> Step {
        step(
            n,
            user,
            What::Connected {
                key: user.into(),
                asked: None,
                from: pos(0),
                recovered: true,
            },
        )
    }

    /// Every message of `owner` at `seqs` told to its sender before the run.
    fn told(owner: &str, seqs: impl IntoIterator<Item = u64>) -> Vec<Confirmed> {
        seqs.into_iter()
            .map(|seq| Confirmed {
                step: 0,
                user: owner.into(),
                msg: msg(owner, seq),
                at: pos(seq),
            })
            .collect()
    }

    fn ledgers_of(trace: &[Step], told: &[Confirmed]) -> Vec<TabLedger> {
        ledgers(
            trace,
            &findings(trace, told, &[], &Limits::default(), false, 1),
        )
    }

    fn texts(entries: &[Entry]) -> Vec<&str> {
        entries.iter().map(|e| e.text.as_str()).collect()
    }

    #[test]
    fn a_clean_tab_reads_one_span_and_has_no_problems() {
        let trace = [
            connected(1, "u1"),
            got(2, "u1", 1, "u1"),
            got(3, "u1", 2, "u1"),
            got(4, "u1", 3, "u1"),
            step(5, "u1", What::Close),
        ];
        let l = &ledgers_of(&trace, &told("u1", 1..=3))[0];
        assert_eq!(texts(&l.read), ["0.1#1..#3"]);
        assert_eq!(l.problems(), 0);
        assert_eq!(l.end.text, "closed by its user");
        assert_eq!(l.start.text, "fresh, continues after 0.1#0");
    }

    #[test]
    fn each_finding_of_the_oracle_lands_in_its_column_once() {
        let trace = [
            connected(1, "u1"),
            got(2, "u1", 1, "u1"),
            got(3, "u1", 4, "u1"), // #2..#3 skipped silently
            got(4, "u1", 4, "u1"), // read twice
            got(5, "u1", 5, "u2"), // someone else's
            step(
                6,
                "u1",
                What::Gap {
                    at: pos(9),
                    from: 6,
                    reason: GapReason::Trimmed,
                    lost: false,
                },
            ),
            got(7, "u1", 10, "u1"),
        ];
        let mut told_u1 = told("u1", [1, 2, 3, 4, 10]);
        told_u1.extend(told("u2", [5]));
        let l = &ledgers_of(&trace, &told_u1)[0];
        assert_eq!(
            texts(&l.silent),
            ["u1's tab c1 received agent_thinking u1/r1:step 4 at 0.1#4 right after #1: #2..#3 were skipped without a gap marker"]
        );
        assert_eq!(l.silent[0].step, 3);
        assert_eq!(
            texts(&l.duplicates),
            ["u1's tab c1 received agent_thinking u1/r1:step 4 at 0.1#4 after #4: a duplicate"]
        );
        assert_eq!(
            texts(&l.foreign),
            ["user u1 received u2's agent_thinking u2/r1:step 5 (0.1#5 on c1)"]
        );
        assert_eq!(texts(&l.gaps), ["0.1#6..#9 (trimmed)"]);
        assert_eq!(l.problems(), 3, "one finding per fault: {l:?}");
        assert_eq!(texts(&l.read), ["0.1#1", "0.1#4", "0.1#4..#5", "0.1#10"]);
    }

    #[test]
    fn what_a_tab_never_read_once_drained_is_a_finding_on_that_tab() {
        let trace = [
            connected(1, "u1"),
            got(2, "u1", 1, "u1"),
            step(3, "-", What::Phase("heal")),
            step(4, "-", What::Phase("close every tab")),
        ];
        let l = &ledgers_of(&trace, &told("u1", 1..=2))[0];
        assert_eq!(
            texts(&l.silent),
            ["u1's tab c1 never read 0.1#2..#2, and no gap marker said they are lost"]
        );
    }

    #[test]
    fn tabs_are_told_apart_by_user_and_connection() {
        let on = |mut s: Step, conn| {
            s.conn = Some(conn);
            s
        };
        let trace = [
            connected(1, "u1"),
            on(connected(2, "u2"), 2),
            on(got(3, "u2", 1, "u2"), 2),
            got(4, "u1", 2, "u1"),
        ];
        let mut t = told("u1", [1, 2]);
        t.extend(told("u2", [1]));
        let l = ledgers_of(&trace, &t);
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].silent.len(), 1, "{:?}", l[0]);
        assert!(l[1].silent.is_empty(), "{:?}", l[1]);
    }
}
