//! Seed isolation: running a seed again in a fresh process.
//!
//! Every run gets a fresh thread and a fresh runtime, but not a fresh process: a backend that
//! keeps state in a `static` (a cache, an id counter, a registry of registries) carries it from
//! one seed to the next. Two runs of a seed in a row then usually agree (the state has settled),
//! yet the seed replayed on its own, by a developer, runs something else. So the determinism
//! check runs its second run in a fresh worker process, a copy of this program started for that
//! one run: whatever the first run inherited from earlier seeds, the second did not, and the two
//! traces differ.
//!
//! A worker is the same program started with [`WORKER_ENV`] set. It reads one request (a plan,
//! a runtime seed and a target) from standard input, runs it, and writes one reply line. The
//! `wsreg-sim` binary serves as its own worker; a team's binary that fuzzes its own backend
//! calls [`serve_if_worker`] first thing in `main` with its targets (as
//! [`cli::main_with`](crate::cli::main_with) does), and names itself in [`WorkerCommand`].

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::check::coverage::Coverage;
use crate::check::outcome::Outcome;
use crate::run::recorder::Stats;
use crate::run::world::RunReport;

use crate::generate::plan::Plan;
use crate::generate::seed::Seed;
use crate::run::recorder::Keep;
use crate::tooling::target::Targets;

/// Set (to anything) in a worker's environment.
pub const WORKER_ENV: &str = "WSREG_SIM_WORKER";

/// Starts a worker's reply line, so a worker may print anything else (a test harness's banner,
/// say) without confusing its parent.
const REPLY: &str = "wsreg-sim-worker-reply ";

/// How to start a worker: a program (normally this one) and its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerCommand {
    /// The executable.
    pub program: PathBuf,
    /// Its arguments (none for `wsreg-sim`; a test binary names the test that serves).
    pub args: Vec<String>,
}

impl WorkerCommand {
    /// This very program, with no arguments: right for `wsreg-sim` and for a team's binary
    /// that calls [`serve_if_worker`] first thing.
    pub fn this_program() -> std::io::Result<Self> {
        Ok(Self {
            program: std::env::current_exe()?,
            args: Vec::new(),
        })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    /// The target's name: `core`, a zoo bug's id, or a name the worker's binary registered.
    target: String,
    runtime_seed: u64,
    plan: Plan,
}

/// What a worker's run came to: enough to compare with a run elsewhere, or to stand for the
/// run itself (`fuzz --isolate`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ran {
    /// Steps.
    pub steps: u64,
    /// Trace hash.
    pub hash: u64,
    /// The verdict.
    pub outcome: Outcome,
    /// Virtual microseconds.
    pub virtual_us: u64,
    /// Coverage points hit, by name.
    pub coverage: BTreeMap<String, u64>,
}

impl Ran {
    /// The report of the run, as far as a worker tells it (no trace: a failure's trace comes
    /// from its replay).
    pub fn report(self) -> RunReport {
        let mut coverage = Coverage::default();
        for (name, hits) in &self.coverage {
            coverage.add_named(name, *hits);
        }
        RunReport {
            outcome: self.outcome,
            steps: self.steps,
            hash: self.hash,
            virtual_us: self.virtual_us,
            trace: Vec::new(),
            confirms: Vec::new(),
            learned: Vec::new(),
            coverage,
            stats: Stats::default(),
        }
    }
}

/// Why a run in a worker came to nothing.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The worker could not be started or spoken to.
    #[error("starting the worker {program}: {error}")]
    Spawn {
        /// The program.
        program: String,
        /// What the OS said.
        error: std::io::Error,
    },
    /// The worker ended without a reply: it aborted, or was killed.
    #[error("the worker process ended without a reply ({status}): the run aborted the process")]
    Died {
        /// How it ended.
        status: String,
    },
    /// The worker replied with something else.
    #[error("the worker replied {0:?}")]
    Malformed(String),
}

/// Runs `plan` once in a fresh worker process and returns its steps and trace hash.
pub fn run_in_worker(
    cmd: &WorkerCommand,
    target: &str,
    plan: &Plan,
    runtime_seed: Seed,
) -> Result<Ran, WorkerError> {
    let spawn = |error| WorkerError::Spawn {
        program: cmd.program.display().to_string(),
        error,
    };
    let mut child = Command::new(&cmd.program)
        .args(&cmd.args)
        .env(WORKER_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(spawn)?;
    let request = Request {
        target: target.to_owned(),
        runtime_seed: runtime_seed.0,
        plan: plan.clone(),
    };
    let line = serde_json::to_string(&request).expect("a request serialises");
    let mut stdin = child.stdin.take().expect("piped");
    // A worker that died at once shows below as no reply.
    let _ = writeln!(stdin, "{line}");
    drop(stdin);
    let stdout = BufReader::new(child.stdout.take().expect("piped"));
    let mut reply = None;
    for line in stdout.lines() {
        let Ok(line) = line else { break };
        // Anywhere in the line: a test harness may have printed a test's name before it.
        if let Some((_, json)) = line.split_once(REPLY) {
            reply = Some(json.to_owned());
        }
    }
    let status = child.wait().map_err(spawn)?;
    match reply {
        Some(json) => serde_json::from_str(&json).map_err(|_| WorkerError::Malformed(json)),
        None => Err(WorkerError::Died {
            status: status.to_string(),
        }),
    }
}

/// If this process was started as a worker ([`WORKER_ENV`] is set), runs the one request on
/// standard input against the target it names (one of `targets`), writes the reply and exits;
/// otherwise returns at once.
///
/// A team's fuzzing binary does this first of all, then runs its campaigns as usual:
///
/// ```no_run
/// use wsreg_sim::tooling::target::{Target, Targets};
/// let targets = Targets::builtin().with(Target::core()); // and its own
/// wsreg_sim::tooling::isolation::serve_if_worker(&targets);
/// ```
pub fn serve_if_worker(targets: &Targets) {
    if std::env::var_os(WORKER_ENV).is_none() {
        return;
    }
    let code = match serve_one(targets) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("wsreg-sim worker: {e}");
            2
        }
    };
    std::process::exit(code);
}

fn serve_one(targets: &Targets) -> Result<(), String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let request: Request = serde_json::from_str(&line).map_err(|e| e.to_string())?;
    let target = targets.get(&request.target).map_err(|e| e.to_string())?;
    let plan = Arc::new(request.plan);
    let seed = Seed(request.runtime_seed);
    let report = target
        .run(plan, seed, Keep::Tail(1))
        .map_err(|e| e.to_string())?;
    let ran = Ran {
        steps: report.steps,
        hash: report.hash,
        outcome: report.outcome,
        virtual_us: report.virtual_us,
        coverage: report
            .coverage
            .hits
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect(),
    };
    let mut out = std::io::stdout().lock();
    // On a line of its own, whatever a test harness printed before it.
    writeln!(
        out,
        "\n{REPLY}{}",
        serde_json::to_string(&ran).expect("a reply serialises")
    )
    .and_then(|()| out.flush())
    .map_err(|e| e.to_string())
}
