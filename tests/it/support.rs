//! A recording observer and small builders shared by the test modules.

use std::sync::{Arc, Mutex};

use wsreg::{AgentEvent, Observation, Observer};

/// Records every observation as one line, in order.
#[derive(Default)]
pub struct Recorder {
    lines: Mutex<Vec<String>>,
}

impl Observer for Recorder {
    fn observe(&self, o: &Observation<'_>) {
        let line = match o {
            Observation::ManagerCreated { user, manager, .. } => {
                format!("created {user} {manager}")
            }
            Observation::ManagerRemoved { user, manager, .. } => {
                format!("removed {user} {manager}")
            }
            other => format!("{other:?}"),
        };
        self.lines.lock().unwrap().push(line);
    }
}

impl Recorder {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn matching(&self, prefix: &str) -> Vec<String> {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .filter(|l| l.starts_with(prefix))
            .cloned()
            .collect()
    }
}

pub fn started(run: &str) -> AgentEvent {
    AgentEvent::AgentStarted { run_id: run.into() }
}

pub fn executing(run: &str, tool: &str) -> AgentEvent {
    AgentEvent::ToolExecuting {
        run_id: run.into(),
        tool_name: tool.into(),
        parameters: "{}".into(),
    }
}

pub fn tool_done(run: &str, tool: &str) -> AgentEvent {
    AgentEvent::ToolCompleted {
        run_id: run.into(),
        tool_name: tool.into(),
        results: "[]".into(),
        duration_ms: 3,
        success: true,
    }
}

pub fn completed(run: &str) -> AgentEvent {
    AgentEvent::AgentCompleted {
        run_id: run.into(),
        status: "ok".into(),
        final_response: "done".into(),
    }
}
