//! The five agent events, the per-run lifecycle they must follow, and the [`Envelope`] that carries
//! any outbound message to a connection.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::LifecycleError;
use crate::identity::UserKey;
use crate::stream::{Epoch, GapReason, Position};

/// One of the five critical agent events. Every event names the run it belongs to.
///
/// Per run the lifecycle is: [`AgentEvent::AgentStarted`] first; then any number of
/// [`AgentEvent::AgentThinking`] and [`AgentEvent::ToolExecuting`]/[`AgentEvent::ToolCompleted`]
/// pairs, where tools nest like a stack (a completion closes the innermost open tool, by name);
/// [`AgentEvent::AgentCompleted`] last, with no tool open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentEvent {
    /// The run began.
    AgentStarted {
        /// The run.
        run_id: String,
    },
    /// The agent is reasoning.
    AgentThinking {
        /// The run.
        run_id: String,
        /// What it is thinking about.
        reasoning: String,
    },
    /// A tool call began.
    ToolExecuting {
        /// The run.
        run_id: String,
        /// The tool.
        tool_name: String,
        /// Its parameters, as JSON text.
        parameters: String,
    },
    /// A tool call finished.
    ToolCompleted {
        /// The run.
        run_id: String,
        /// The tool; must match the innermost open tool.
        tool_name: String,
        /// Its results, as JSON text.
        results: String,
        /// How long it took.
        duration_ms: u64,
        /// Whether it succeeded.
        success: bool,
    },
    /// The run ended.
    AgentCompleted {
        /// The run.
        run_id: String,
        /// Final status, e.g. `ok` or `error`.
        status: String,
        /// The agent's answer.
        final_response: String,
    },
}

impl AgentEvent {
    /// The run this event belongs to.
    pub fn run_id(&self) -> &str {
        match self {
            AgentEvent::AgentStarted { run_id }
            | AgentEvent::AgentThinking { run_id, .. }
            | AgentEvent::ToolExecuting { run_id, .. }
            | AgentEvent::ToolCompleted { run_id, .. }
            | AgentEvent::AgentCompleted { run_id, .. } => run_id,
        }
    }

    /// A complete, valid run: `agent_started`, `thinking` thoughts, `tools` nested tool calls
    /// (opened in order, closed in reverse), `agent_completed`. For demos, tests and benchmarks.
    ///
    /// ```
    /// let run = wsreg::AgentEvent::example_run("r1", 2, 1);
    /// assert_eq!(run.len(), 1 + 1 + 2 * 2 + 1);
    /// assert_eq!(run.last().unwrap().kind(), "agent_completed");
    /// ```
    pub fn example_run(run_id: &str, tools: u8, thinking: u8) -> Vec<AgentEvent> {
        let run = || run_id.to_owned();
        let mut events = vec![AgentEvent::AgentStarted { run_id: run() }];
        for i in 0..thinking {
            events.push(AgentEvent::AgentThinking {
                run_id: run(),
                reasoning: format!("step {i}"),
            });
        }
        for t in 0..tools {
            events.push(AgentEvent::ToolExecuting {
                run_id: run(),
                tool_name: format!("tool{t}"),
                parameters: format!("{{\"n\":{t}}}"),
            });
        }
        for t in (0..tools).rev() {
            events.push(AgentEvent::ToolCompleted {
                run_id: run(),
                tool_name: format!("tool{t}"),
                results: "[]".into(),
                duration_ms: u64::from(t) + 1,
                success: true,
            });
        }
        events.push(AgentEvent::AgentCompleted {
            run_id: run(),
            status: "ok".into(),
            final_response: "done".into(),
        });
        events
    }

    /// The wire name: `agent_started`, `agent_thinking`, `tool_executing`, `tool_completed` or
    /// `agent_completed`.
    pub fn kind(&self) -> &'static str {
        match self {
            AgentEvent::AgentStarted { .. } => "agent_started",
            AgentEvent::AgentThinking { .. } => "agent_thinking",
            AgentEvent::ToolExecuting { .. } => "tool_executing",
            AgentEvent::ToolCompleted { .. } => "tool_completed",
            AgentEvent::AgentCompleted { .. } => "agent_completed",
        }
    }
}

/// What goes out to a connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Payload {
    /// An agent event.
    Agent(AgentEvent),
    /// A plain text message to the user.
    Text {
        /// The text.
        text: String,
    },
    /// A gap marker: this connection will never receive the messages numbered `from..=to` of
    /// its stream's epoch. Its envelope is numbered `to`, so a client's last position after
    /// a gap is the end of the gap.
    Gap {
        /// The first message missed.
        from: u64,
        /// The last message missed (`from - 1` when nothing of this epoch is missing: see
        /// [`GapReason::EpochChanged`]).
        to: u64,
        /// Why.
        reason: GapReason,
    },
}

impl Payload {
    /// Whether this is a gap marker rather than a message.
    pub fn is_gap(&self) -> bool {
        matches!(self, Payload::Gap { .. })
    }
}

/// One item of a user's stream on its way to a connection: a message or a gap marker, with its
/// position. A message is shared by every connection it reaches.
///
/// Every connection sees strictly increasing positions of one epoch, contiguous except where a
/// gap marker says what is missing: that is how a client knows it lost nothing silently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    inner: Arc<EnvelopeInner>,
}

#[derive(Debug, PartialEq, Eq)]
struct EnvelopeInner {
    to: UserKey,
    at: Position,
    payload: Payload,
}

impl Envelope {
    /// An envelope as the core numbers them. Transports that carry messages over a wire use it
    /// to rebuild what the core sent on the other side; the core makes its own.
    ///
    /// ```
    /// use wsreg::{Envelope, Epoch, Payload, Position, UserContext};
    /// let alice = UserContext::new("alice")?;
    /// let at = Position::new(Epoch::new(1, 1), 7);
    /// let env = Envelope::new(alice.key().clone(), at, Payload::Text { text: "hi".into() });
    /// assert_eq!((env.to().as_str(), env.seq()), ("alice", 7));
    /// # Ok::<(), wsreg::ContextError>(())
    /// ```
    pub fn new(to: UserKey, at: Position, payload: Payload) -> Self {
        Self {
            inner: Arc::new(EnvelopeInner { to, at, payload }),
        }
    }

    /// The user this message is addressed to.
    pub fn to(&self) -> &UserKey {
        &self.inner.to
    }

    /// Its position in the user's stream (for a gap marker: the last position it covers).
    pub fn position(&self) -> Position {
        self.inner.at
    }

    /// Its number within its epoch (1-based).
    pub fn seq(&self) -> u64 {
        self.inner.at.seq
    }

    /// Its stream's epoch.
    pub fn epoch(&self) -> Epoch {
        self.inner.at.epoch
    }

    /// What it carries.
    pub fn payload(&self) -> &Payload {
        &self.inner.payload
    }
}

/// Where one run is in its lifecycle.
#[derive(Clone, Debug, Default)]
struct RunState {
    open_tools: Vec<String>,
    /// The number of its `agent_started`.
    started_at: u64,
}

/// Per-user lifecycle bookkeeping: which runs are open and which tools each has open.
#[derive(Clone, Debug, Default)]
pub(crate) struct Lifecycles {
    open: BTreeMap<String, RunState>,
}

impl Lifecycles {
    /// Checks that `event`, to be numbered `seq`, may be emitted now, and if so records it.
    pub(crate) fn admit(&mut self, event: &AgentEvent, seq: u64) -> Result<(), LifecycleError> {
        let run = event.run_id();
        let err = |reason: LifecycleReason| LifecycleError {
            run_id: run.to_owned(),
            event: event.kind(),
            reason,
        };
        match event {
            AgentEvent::AgentStarted { .. } => {
                if self.open.contains_key(run) {
                    return Err(err(LifecycleReason::AlreadyStarted));
                }
                let state = RunState {
                    open_tools: Vec::new(),
                    started_at: seq,
                };
                self.open.insert(run.to_owned(), state);
            }
            AgentEvent::AgentThinking { .. } => {
                self.open
                    .get(run)
                    .ok_or_else(|| err(LifecycleReason::NotStarted))?;
            }
            AgentEvent::ToolExecuting { tool_name, .. } => {
                let state = self
                    .open
                    .get_mut(run)
                    .ok_or_else(|| err(LifecycleReason::NotStarted))?;
                state.open_tools.push(tool_name.clone());
            }
            AgentEvent::ToolCompleted { tool_name, .. } => {
                let state = self
                    .open
                    .get_mut(run)
                    .ok_or_else(|| err(LifecycleReason::NotStarted))?;
                match state.open_tools.last() {
                    Some(top) if top == tool_name => {
                        state.open_tools.pop();
                    }
                    Some(top) => return Err(err(LifecycleReason::WrongTool { open: top.clone() })),
                    None => return Err(err(LifecycleReason::NoToolOpen)),
                }
            }
            AgentEvent::AgentCompleted { .. } => {
                let state = self
                    .open
                    .get(run)
                    .ok_or_else(|| err(LifecycleReason::NotStarted))?;
                if let Some(top) = state.open_tools.last() {
                    return Err(err(LifecycleReason::ToolStillOpen { open: top.clone() }));
                }
                self.open.remove(run);
            }
        }
        Ok(())
    }

    /// The number of the oldest open run's `agent_started`, if a run is open.
    pub(crate) fn oldest_start(&self) -> Option<u64> {
        self.open.values().map(|r| r.started_at).min()
    }

    /// How many runs are open.
    pub(crate) fn open_runs(&self) -> usize {
        self.open.len()
    }
}

/// Why an event was out of lifecycle order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LifecycleReason {
    /// `agent_started` for a run that is already open.
    AlreadyStarted,
    /// An event for a run that was never started, or has completed.
    NotStarted,
    /// `tool_completed` with no tool open.
    NoToolOpen,
    /// `tool_completed` for a tool other than the innermost open one.
    WrongTool {
        /// The innermost open tool.
        open: String,
    },
    /// `agent_completed` while a tool is still open.
    ToolStillOpen {
        /// The innermost open tool.
        open: String,
    },
}

impl fmt::Display for LifecycleReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LifecycleReason::AlreadyStarted => f.write_str("the run is already started"),
            LifecycleReason::NotStarted => f.write_str("the run is not started (or has completed)"),
            LifecycleReason::NoToolOpen => f.write_str("no tool is executing"),
            LifecycleReason::WrongTool { open } => {
                write!(f, "the innermost executing tool is {open:?}")
            }
            LifecycleReason::ToolStillOpen { open } => {
                write!(f, "tool {open:?} is still executing")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(r: &str) -> AgentEvent {
        AgentEvent::AgentStarted { run_id: r.into() }
    }
    fn exec(r: &str, t: &str) -> AgentEvent {
        AgentEvent::ToolExecuting {
            run_id: r.into(),
            tool_name: t.into(),
            parameters: "{}".into(),
        }
    }
    fn done(r: &str, t: &str) -> AgentEvent {
        AgentEvent::ToolCompleted {
            run_id: r.into(),
            tool_name: t.into(),
            results: "{}".into(),
            duration_ms: 1,
            success: true,
        }
    }
    fn completed(r: &str) -> AgentEvent {
        AgentEvent::AgentCompleted {
            run_id: r.into(),
            status: "ok".into(),
            final_response: "".into(),
        }
    }

    #[test]
    fn nested_tools_close_like_a_stack() {
        let mut l = Lifecycles::default();
        for e in [
            started("r"),
            exec("r", "a"),
            exec("r", "b"),
            done("r", "b"),
            done("r", "a"),
            completed("r"),
        ] {
            l.admit(&e, 1).unwrap();
        }
        assert_eq!(l.open_runs(), 0);
    }

    #[test]
    fn out_of_order_is_rejected_and_changes_nothing() {
        let mut l = Lifecycles::default();
        assert_eq!(
            l.admit(&completed("r"), 1).unwrap_err().reason,
            LifecycleReason::NotStarted
        );
        l.admit(&started("r"), 1).unwrap();
        assert_eq!(
            l.admit(&started("r"), 1).unwrap_err().reason,
            LifecycleReason::AlreadyStarted
        );
        assert_eq!(
            l.admit(&done("r", "a"), 1).unwrap_err().reason,
            LifecycleReason::NoToolOpen
        );
        l.admit(&exec("r", "a"), 1).unwrap();
        assert!(matches!(
            l.admit(&done("r", "b"), 1).unwrap_err().reason,
            LifecycleReason::WrongTool { .. }
        ));
        assert!(matches!(
            l.admit(&completed("r"), 1).unwrap_err().reason,
            LifecycleReason::ToolStillOpen { .. }
        ));
        l.admit(&done("r", "a"), 1).unwrap();
        l.admit(&completed("r"), 1).unwrap();
        assert_eq!(
            l.admit(&exec("r", "a"), 1).unwrap_err().reason,
            LifecycleReason::NotStarted
        );
    }
}
