//! The per-tab delivery ledger: what each tab read, in which spans, which gaps it was told of,
//! and what went wrong as the tab itself could see it (positions skipped silently, read twice,
//! read out of order, or someone else's messages). Computed from the client steps alone, so it
//! means the same for any backend.

use std::collections::BTreeSet;

use serde::Serialize;
use wsreg::{Epoch, Position};

use crate::trace::{escaped, Step, What};

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
    /// Positions skipped with no gap marker covering them.
    pub silent: Vec<Entry>,
    /// Positions read more than once.
    pub duplicates: Vec<Entry>,
    /// Positions read after a later one.
    pub disorder: Vec<Entry>,
    /// Messages read that were addressed to another user.
    pub foreign: Vec<Entry>,
    /// Messages that sat unread in its buffer when it crashed.
    pub lost_in_crash: usize,
    /// How it ended: closed, crashed, or still open when the run ended.
    pub end: Entry,
}

impl TabLedger {
    /// How many problems the tab could see for itself.
    pub fn problems(&self) -> usize {
        self.silent.len() + self.duplicates.len() + self.disorder.len() + self.foreign.len()
    }
}

/// A tab being followed through the trace.
struct Follow {
    ledger: TabLedger,
    epoch: Epoch,
    next: u64,
    seen: BTreeSet<(Epoch, u64)>,
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

    /// Positions `self.next..until` were skipped with nothing said.
    fn skipped(&mut self, until: u64, step: u64) {
        if until <= self.next {
            return;
        }
        let last = until - 1;
        let text = if self.next == last {
            format!("{}#{last}", self.epoch)
        } else {
            format!("{}#{}..#{last}", self.epoch, self.next)
        };
        self.ledger.silent.push(Entry { text, step });
    }

    /// The tab read the message at `at`.
    fn receive(&mut self, at: Position, step: u64) {
        if at.epoch != self.epoch {
            // Its connect said which stream it reads; another one with no gap marker saying
            // why silently drops the rest of the old one.
            self.ledger.silent.push(Entry {
                text: format!(
                    "switched from epoch {} to {} without a gap marker",
                    self.epoch, at.epoch
                ),
                step,
            });
            self.epoch = at.epoch;
            self.next = at.seq;
        }
        if !self.seen.insert((at.epoch, at.seq)) {
            self.ledger.duplicates.push(Entry {
                text: format!("{at}"),
                step,
            });
            return;
        }
        if at.seq < self.next {
            self.ledger.disorder.push(Entry {
                text: format!("{at} after #{}", self.next - 1),
                step,
            });
            return;
        }
        self.skipped(at.seq, step);
        self.next = at.seq + 1;
    }

    /// The tab read a gap marker: `from..=at.seq` of `at.epoch` will never come.
    fn gap(&mut self, at: Position, from: u64, step: u64) {
        if at.epoch != self.epoch {
            self.epoch = at.epoch;
            self.next = from;
        }
        self.skipped(from, step);
        self.next = self.next.max(at.seq + 1);
    }
}

/// The ledger of every tab in the trace, in the order the tabs connected.
pub fn ledgers(trace: &[Step]) -> Vec<TabLedger> {
    let mut tabs: Vec<Follow> = Vec::new();
    let find = |tabs: &mut Vec<Follow>, s: &Step| {
        let conn = s.conn?;
        tabs.iter()
            .rposition(|t| t.ledger.conn == conn && *t.ledger.user == *s.user)
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
                tabs.push(Follow {
                    ledger: TabLedger {
                        user: escaped(&s.user).into_owned(),
                        conn,
                        key: escaped(key).into_owned(),
                        start: Entry {
                            text: start,
                            step: s.n,
                        },
                        read: Vec::new(),
                        gaps: Vec::new(),
                        silent: Vec::new(),
                        duplicates: Vec::new(),
                        disorder: Vec::new(),
                        foreign: Vec::new(),
                        lost_in_crash: 0,
                        end: Entry {
                            text: "open when the run ended".to_owned(),
                            step: s.n,
                        },
                    },
                    epoch: from.epoch,
                    next: from.seq + 1,
                    seen: BTreeSet::new(),
                    run: None,
                });
            }
            What::Received { at, msg, lost, .. } => {
                let Some(i) = find(&mut tabs, s) else {
                    continue;
                };
                let t = &mut tabs[i];
                if *lost {
                    t.ledger.lost_in_crash += 1;
                }
                if msg.owner() != &*s.user {
                    t.ledger.foreign.push(Entry {
                        text: format!("{at} {msg}"),
                        step: s.n,
                    });
                }
                t.receive(*at, s.n);
                t.read(*at, s.n);
            }
            What::Gap {
                at,
                from,
                reason,
                lost,
            } => {
                let Some(i) = find(&mut tabs, s) else {
                    continue;
                };
                let t = &mut tabs[i];
                if *lost {
                    t.ledger.lost_in_crash += 1;
                }
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
                t.gap(*at, *from, s.n);
            }
            What::Close | What::Crash => {
                let Some(i) = find(&mut tabs, s) else {
                    continue;
                };
                let how = if s.what == What::Close {
                    "closed by its user"
                } else {
                    "crashed"
                };
                tabs[i].ledger.end = Entry {
                    text: how.to_owned(),
                    step: s.n,
                };
            }
            _ => {}
        }
    }
    tabs.into_iter()
        .map(|mut t| {
            t.flush();
            t.ledger
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use wsreg::GapReason;

    use super::*;
    use crate::trace::MsgTag;

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
            what,
        }
    }

    fn got(n: u64, user: &str, seq: u64, owner: &str) -> Step {
        step(
            n,
            user,
            What::Received {
                at: pos(seq),
                msg: MsgTag {
                    kind: "agent_thinking",
                    tag: Arc::from(format!("{owner}/r1")),
                },
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
        let l = &ledgers(&trace)[0];
        assert_eq!(texts(&l.read), ["0.1#1..#3"]);
        assert_eq!(l.problems(), 0);
        assert_eq!(l.end.text, "closed by its user");
        assert_eq!(l.start.text, "fresh, continues after 0.1#0");
    }

    #[test]
    fn each_kind_of_damage_lands_in_its_column() {
        let trace = [
            connected(1, "u1"),
            got(2, "u1", 1, "u1"),
            got(3, "u1", 4, "u1"), // #2..#3 skipped silently
            got(4, "u1", 4, "u1"), // read twice
            got(5, "u1", 3, "u1"), // read late
            got(6, "u1", 5, "u2"), // someone else's
            step(
                7,
                "u1",
                What::Gap {
                    at: pos(9),
                    from: 6,
                    reason: GapReason::Trimmed,
                    lost: false,
                },
            ),
            got(8, "u1", 10, "u1"),
        ];
        let l = &ledgers(&trace)[0];
        assert_eq!(texts(&l.silent), ["0.1#2..#3"]);
        assert_eq!(l.silent[0].step, 3);
        assert_eq!(texts(&l.duplicates), ["0.1#4"]);
        assert_eq!(texts(&l.disorder), ["0.1#3 after #4"]);
        assert_eq!(texts(&l.foreign), ["0.1#5 agent_thinking u2/r1"]);
        assert_eq!(texts(&l.gaps), ["0.1#6..#9 (trimmed)"]);
        assert_eq!(l.problems(), 4);
        assert_eq!(
            texts(&l.read),
            ["0.1#1", "0.1#4", "0.1#4", "0.1#3", "0.1#5", "0.1#10"]
        );
    }

    #[test]
    fn tabs_are_told_apart_by_user_and_connection() {
        let trace = [
            connected(1, "u1"),
            connected(2, "u2"),
            got(3, "u2", 1, "u2"),
            got(4, "u1", 2, "u1"),
        ];
        let l = ledgers(&trace);
        assert_eq!(l.len(), 2);
        assert_eq!(texts(&l[0].silent), ["0.1#1"]);
        assert!(l[1].silent.is_empty());
    }
}
