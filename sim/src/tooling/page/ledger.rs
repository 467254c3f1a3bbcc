//! The per-tab delivery ledger: what each tab read, in which spans, which gaps it was told of,
//! and what went wrong as the tab itself could see it (positions skipped silently, read twice,
//! read out of order, or someone else's messages). Computed from the client steps alone, so it
//! means the same for any backend.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;
use wsreg::{Epoch, Position};

use crate::check::trace::{escaped, MsgTag, Step, What};

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
    /// The user holding it, as given (the ledger shows it escaped).
    user: Arc<str>,
    /// The key the backend filed it under, as given.
    key: Arc<str>,
    /// Whether it ended (closed or crashed) before every tab was closed at the end.
    ended_early: bool,
    /// Per agent run, the furthest lifecycle stage read so far.
    stages: BTreeMap<Arc<str>, u8>,
    epoch: Epoch,
    next: u64,
    seen: BTreeSet<(Epoch, u64)>,
    /// Every message read, by kind and tag, with where it was first read.
    messages: BTreeMap<(&'static str, Arc<str>), Position>,
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

    /// An agent event read: a run's events come started, then steps, then completed.
    fn lifecycle(&mut self, msg: &MsgTag, at: Position, step: u64) {
        let stage = match msg.kind {
            "agent_started" => 0,
            "agent_completed" => 2,
            "text" => return,
            _ => 1,
        };
        let furthest = self.stages.entry(Arc::clone(&msg.tag)).or_insert(stage);
        if stage < *furthest {
            self.ledger.disorder.push(Entry {
                text: format!("{at} {msg} after a later stage of its run"),
                step,
            });
        }
        *furthest = (*furthest).max(stage);
    }

    /// The tab read a gap marker: `from..=at.seq` of `at.epoch` will never come.
    fn gap(&mut self, at: Position, from: u64, step: u64) {
        if at.epoch != self.epoch {
            self.epoch = at.epoch;
            self.next = from;
        }
        // A marker for positions the tab already read, or one placed behind them.
        if (from < self.next && from <= at.seq) || at.seq + 1 < self.next {
            self.ledger.disorder.push(Entry {
                text: format!(
                    "gap marker at {at} (from #{from}) after #{} was read",
                    self.next - 1
                ),
                step,
            });
        }
        self.skipped(from, step);
        self.next = self.next.max(at.seq + 1);
    }
}

/// Positions `seqs` (sorted) as runs: `0.1#3`, `0.1#5..#7`.
fn spans(epoch: Epoch, seqs: &[u64]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < seqs.len() {
        let mut j = i;
        while j + 1 < seqs.len() && seqs[j + 1] == seqs[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            format!("{epoch}#{}", seqs[i])
        } else {
            format!("{epoch}#{}..#{}", seqs[i], seqs[j])
        });
        i = j + 1;
    }
    out
}

/// The ledger of every tab in the trace, in the order the tabs connected.
///
/// Besides what each tab read, it flags what the tab could see go wrong: positions skipped with
/// no gap marker (including a resume into another epoch reported as fully recovered), positions
/// read twice or after later ones, a gap marker for positions already read, a run's events read
/// out of their lifecycle order, someone else's messages, and, once the run had healed and
/// drained, positions of its stream that exist (the backend accepted them, or another tab of the
/// same key read them) but that the tab never read nor was told it lost.
pub fn ledgers(trace: &[Step]) -> Vec<TabLedger> {
    // Where the run had healed and drained: the end phase that closes every tab, or the end of
    // a run stopped while waiting for the drain. Before healing, messages may still be in flight.
    let healed = trace.iter().any(|s| s.what == What::Phase("heal"));
    let drained = trace
        .iter()
        .position(|s| s.what == What::Phase("close every tab"))
        .unwrap_or(trace.len());
    let mut known: BTreeMap<(Arc<str>, Epoch), BTreeSet<u64>> = BTreeMap::new();
    let mut tabs: Vec<Follow> = Vec::new();
    let find = |tabs: &mut Vec<Follow>, s: &Step| {
        let conn = s.conn?;
        tabs.iter()
            .rposition(|t| t.ledger.conn == conn && t.user == s.user)
    };
    for (i, s) in trace.iter().enumerate() {
        match &s.what {
            What::Accepted { at, .. } if i < drained => {
                known
                    .entry((Arc::clone(&s.user), at.epoch))
                    .or_default()
                    .insert(at.seq);
            }
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
                let mut silent = Vec::new();
                if let Some(a) = asked.filter(|a| *recovered && a.epoch != from.epoch) {
                    silent.push(Entry {
                        text: format!(
                            "resumed after {a} but moved to epoch {} as fully recovered: the rest of {} is gone unsaid",
                            from.epoch, a.epoch
                        ),
                        step: s.n,
                    });
                }
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
                        silent,
                        duplicates: Vec::new(),
                        disorder: Vec::new(),
                        foreign: Vec::new(),
                        lost_in_crash: 0,
                        end: Entry {
                            text: "open when the run ended".to_owned(),
                            step: s.n,
                        },
                    },
                    user: Arc::clone(&s.user),
                    key: Arc::clone(key),
                    ended_early: false,
                    stages: BTreeMap::new(),
                    epoch: from.epoch,
                    next: from.seq + 1,
                    seen: BTreeSet::new(),
                    messages: BTreeMap::new(),
                    run: None,
                });
            }
            What::Received { at, msg, lost, .. } => {
                let Some(t) = find(&mut tabs, s) else {
                    continue;
                };
                let t = &mut tabs[t];
                if *lost {
                    t.ledger.lost_in_crash += 1;
                }
                if msg.owner() != &*t.user {
                    t.ledger.foreign.push(Entry {
                        text: format!("{at} {msg}"),
                        step: s.n,
                    });
                }
                if i < drained {
                    known
                        .entry((Arc::clone(&t.key), at.epoch))
                        .or_default()
                        .insert(at.seq);
                }
                if let Some(first) = t.messages.get(&(msg.kind, Arc::clone(&msg.tag))) {
                    if *first != *at {
                        t.ledger.duplicates.push(Entry {
                            text: format!("{msg} again at {at} (first at {first})"),
                            step: s.n,
                        });
                    }
                } else {
                    t.messages.insert((msg.kind, Arc::clone(&msg.tag)), *at);
                }
                t.lifecycle(msg, *at, s.n);
                t.receive(*at, s.n);
                t.read(*at, s.n);
            }
            What::Gap {
                at,
                from,
                reason,
                lost,
            } => {
                let Some(t) = find(&mut tabs, s) else {
                    continue;
                };
                let t = &mut tabs[t];
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
                let Some(t) = find(&mut tabs, s) else {
                    continue;
                };
                let how = if s.what == What::Close {
                    "closed by its user"
                } else {
                    "crashed"
                };
                tabs[t].ledger.end = Entry {
                    text: how.to_owned(),
                    step: s.n,
                };
                tabs[t].ended_early |= i < drained;
            }
            // The socket went away under the tab: the server died, or the backend removed it.
            What::ServerDown if i < drained => {
                for t in &mut tabs {
                    t.ended_early = true;
                }
            }
            What::ConnRemoved { .. } if i < drained => {
                for t in tabs
                    .iter_mut()
                    .filter(|t| Some(t.ledger.conn) == s.conn && t.key == s.user)
                {
                    t.ended_early = true;
                }
            }
            _ => {}
        }
    }
    let last = trace.last().map_or(0, |s| s.n);
    tabs.into_iter()
        .map(|mut t| {
            t.flush();
            if healed && !t.ended_early {
                let never: Vec<u64> = known
                    .get(&(Arc::clone(&t.key), t.epoch))
                    .map(|seqs| seqs.range(t.next..).copied().collect())
                    .unwrap_or_default();
                for span in spans(t.epoch, &never) {
                    t.ledger.silent.push(Entry {
                        text: format!("{span} never read, though the run had healed and drained"),
                        step: last,
                    });
                }
            }
            t.ledger
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use wsreg::GapReason;

    use super::*;
    use crate::check::trace::MsgTag;

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
                    tag: Arc::from(format!("{owner}/r1:step {seq}")),
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
        assert_eq!(texts(&l.foreign), ["0.1#5 agent_thinking u2/r1:step 5"]);
        assert_eq!(texts(&l.gaps), ["0.1#6..#9 (trimmed)"]);
        assert_eq!(l.problems(), 4);
        assert_eq!(
            texts(&l.read),
            ["0.1#1", "0.1#4", "0.1#4", "0.1#3", "0.1#5", "0.1#10"]
        );
    }

    #[test]
    fn what_a_tab_can_see_beyond_its_positions() {
        let event = |n, seq, kind| {
            step(
                n,
                "u1",
                What::Received {
                    at: pos(seq),
                    msg: MsgTag {
                        kind,
                        tag: "u1/r1".into(),
                    },
                    to: "u1".into(),
                    lost: false,
                },
            )
        };
        let mut resumed = connected(1, "u1");
        resumed.what = What::Connected {
            key: "u1".into(),
            asked: Some(Position::new(Epoch::new(0, 9), 4)),
            from: pos(0),
            recovered: true,
        };
        let mut other = connected(8, "u2");
        other.conn = Some(2);
        other.what = What::Connected {
            key: "u1".into(),
            asked: None,
            from: pos(0),
            recovered: true,
        };
        let mut other_read = event(9, 5, "agent_completed");
        other_read.user = "u2".into();
        other_read.conn = Some(2);
        let trace = [
            resumed,
            event(2, 1, "agent_thinking"),
            event(3, 2, "agent_started"),
            step(
                4,
                "u1",
                What::Gap {
                    at: pos(3),
                    from: 2,
                    reason: GapReason::Trimmed,
                    lost: false,
                },
            ),
            event(5, 4, "agent_completed"),
            step(6, "-", What::Phase("heal")),
            other,
            other_read,
        ];
        let l = &ledgers(&trace)[0];
        assert_eq!(
            texts(&l.disorder),
            [
                "0.1#2 agent_started u1/r1 after a later stage of its run",
                "gap marker at 0.1#3 (from #2) after #2 was read"
            ]
        );
        assert_eq!(
            texts(&l.silent),
            [
                "resumed after 0.9#4 but moved to epoch 0.1 as fully recovered: the rest of 0.9 is gone unsaid",
                "0.1#5 never read, though the run had healed and drained"
            ]
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
