//! Snapshots: a failing, shrunk run as a file a reviewer can read and anyone can replay, in
//! insta's `.snap` format under `snapshots/`, named by invariant and a short hash of the plan.
//!
//! The body has two parts. The header lines (`verdict`, `story`, `target`, `expect`,
//! `runtime seed`, `found`, `replay`) and the plan are what was recorded; everything from the
//! trace on is re-derived from the plan on replay, so the regression corpus test re-renders it
//! and lets insta show any change of behaviour as a diff.

use std::fmt::Write as _;
use std::hash::Hasher;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::check::outcome::Exit;
use crate::check::outcome::Outcome;
use crate::check::trace::{Side, Step, What, HEADER, LEGEND};
use crate::generate::plan::{Plan, PlanError};
use crate::generate::seed::Seed;
use crate::run::world::RunReport;
use crate::tooling::report;
use crate::zoo::Bug;

/// What replaying a snapshot is expected to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The recorded violation, at the recorded step (planted bugs).
    Fail,
    /// A pass: the snapshot records a core bug that has since been fixed.
    Pass,
}

/// A snapshot, parsed.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Its name (the file stem).
    pub name: String,
    /// The name of the target it runs against: `core`, a planted bug (`B3`), or the name a
    /// team's binary registered its own backend under.
    pub target: String,
    /// What replaying should show.
    pub expect: Expect,
    /// The runtime seed.
    pub runtime_seed: Seed,
    /// The recorded verdict line.
    pub verdict: String,
    /// Recorded lines kept as they were (story, found, replay).
    pub recorded: Vec<String>,
    /// The shrunk plan.
    pub plan: Plan,
}

/// A snapshot file that cannot be used.
#[derive(Debug, Error)]
pub enum SnapshotError {
    /// Unreadable or unwritable.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not a snapshot this build can read.
    #[error("{path}: {problem}")]
    Malformed {
        /// The file.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// Its plan is invalid.
    #[error("{path}: its plan: {source}")]
    Plan {
        /// The file.
        path: String,
        /// Why.
        source: PlanError,
    },
}

/// The file name stem for a shrunk failure: `I2-one-manager-per-user-1a2b3c4d`.
pub fn name_for(outcome: &Outcome, target: &str, plan: &Plan) -> String {
    format!("{}-{}", kind_of(outcome), plan_hash(plan, target))
}

/// How a snapshot's name starts for this outcome: `I2-one-manager-per-user`, `panic`...
pub fn kind_of(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Violation(v) => format!("{:?}-{}", v.invariant, v.invariant.name()),
        Outcome::Stuck { .. } => "I10-liveness".to_owned(),
        Outcome::Panic { .. } => "panic".to_owned(),
        Outcome::Pass => "pass".to_owned(),
    }
}

/// The short hash a snapshot's name ends in: FNV-1a over the plan's JSON (as stored in the
/// file) and the target's name, so it never depends on how Rust lays out or numbers types.
pub fn plan_hash(plan: &Plan, target: &str) -> String {
    let mut h = fnv::FnvHasher::default();
    h.write(plan.to_json().as_bytes());
    h.write(target.as_bytes());
    format!("{:08x}", h.finish() as u32)
}

/// A target name as a snapshot records it: `core`, a planted bug's id (checked), or a team's
/// own name, one word of printable characters.
fn target_name(t: &str) -> Result<String, String> {
    let looks_like_a_bug =
        t.len() > 1 && t.starts_with('B') && t[1..].bytes().all(|b| b.is_ascii_digit());
    if looks_like_a_bug {
        t.parse::<Bug>().map_err(|e| e.to_string())?;
    }
    if t.is_empty() || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "target {t:?} is not a name: one word, no spaces or control characters"
        ));
    }
    Ok(t.to_owned())
}

/// Where snapshots live: `snapshots/` at the workspace root.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../snapshots")
}

/// A user's name as the diagram shows it: escaped as in the trace (non-ASCII and whitespace as
/// `\u{…}`), with Mermaid's special characters as entity codes. Distinct names stay distinct.
fn shown(name: &str) -> String {
    mermaid_text(&crate::check::trace::escaped(name))
}

/// Text with Mermaid's special characters as entity codes.
fn mermaid_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '#' => out.push_str("#35;"),
            ';' => out.push_str("#59;"),
            c => out.push(c),
        }
    }
    out
}

/// A Mermaid sequence diagram of the steps, the violating one highlighted: one lane per
/// distinct user (lanes are numbered, so `team|2` and `team_2` never share one), and a note
/// where the backend filed a user under a key other than the user's own id.
pub fn diagram(steps: &[Step], violation: Option<u64>) -> String {
    let mut users: Vec<&str> = Vec::new();
    for s in steps {
        if &*s.user != "-" && !users.contains(&&*s.user) {
            users.push(&s.user);
        }
    }
    let lane = |user: &str| {
        users
            .iter()
            .position(|u| *u == user)
            .map_or_else(|| "core".to_owned(), |i| format!("u{i}"))
    };
    let mut out =
        String::from("```mermaid\nsequenceDiagram\n    participant core as registry + managers\n");
    // Core observations name the key a backend filed a user under; client steps name the user.
    // A lane that only the core names is a key no user has as its id.
    for u in &users {
        let is_user = steps
            .iter()
            .any(|s| &*s.user == *u && s.what.side() == Side::Client);
        let title = if is_user {
            shown(u)
        } else {
            format!("key {}", shown(u))
        };
        let _ = writeln!(out, "    participant {} as {title}", lane(u));
    }
    let mut keyed: Vec<(&str, &str)> = Vec::new();
    for s in steps {
        let who = lane(&s.user);
        let conn = s.conn.map_or(String::new(), |c| format!(" c{c}"));
        let text = mermaid_text(&s.what.to_string());
        let line = match &s.what {
            What::Phase(_) => format!("    Note over core: {text}"),
            What::Received { .. } => {
                format!("    core-->>{who}: {}{conn}", text.trim_start_matches("< "))
            }
            w if w.to_string().starts_with('>') || w.to_string().starts_with('!') => {
                format!("    {who}->>core: {}{conn}", text.trim_start_matches("> "))
            }
            _ => format!("    Note over core,{who}: {text}{conn}"),
        };
        if Some(s.n) == violation {
            let _ = writeln!(out, "    rect rgb(255, 200, 200)\n    {line}\n    Note over core,{who}: VIOLATION at step {}\n    end", s.n);
        } else {
            let _ = writeln!(out, "{line}");
        }
        if let What::Connected { key, .. } = &s.what {
            if **key != *s.user && !keyed.contains(&(&*s.user, &**key)) {
                keyed.push((&s.user, key));
                let _ = writeln!(
                    out,
                    "    Note over {who}: filed under key {}, not {}",
                    shown(key),
                    shown(&s.user)
                );
            }
        }
    }
    out.push_str("```\n");
    out
}

/// The part of a snapshot that replaying re-derives: the trace and the diagram.
pub fn derived(report: &RunReport) -> String {
    let violation = match &report.outcome {
        Outcome::Violation(v) => Some(v.step),
        _ => None,
    };
    let mut out = format!("trace ({LEGEND}):\n{HEADER}\n");
    for s in &report.trace {
        let mark = if Some(s.n) == violation {
            "   <-- violation"
        } else {
            ""
        };
        let _ = writeln!(out, "{s}{mark}");
    }
    out.push_str("diagram:\n");
    out.push_str(&diagram(&report.trace, violation));
    out
}

/// How a snapshot names the network mode (a plan with a `net` section).
const TRANSPORT: &str = "the real WebSocket server on a simulated node, clients over simulated TCP";

/// The network a plan runs over, as snapshots and report pages name it (`None`: in process).
pub fn transport(plan: &Plan) -> Option<String> {
    plan.net.as_ref().map(|net| {
        let [lo, hi] = net.latency_ms;
        let transport = match net.nodes {
            1 => TRANSPORT.to_owned(),
            n => format!("the real WebSocket server on {n} simulated nodes over a simulated stream store, clients over simulated TCP"),
        };
        format!(
            "{transport}, latency {lo}-{hi} ms, {}% loss, {} fault(s)",
            net.loss_percent,
            net.faults.len()
        )
    })
}

impl Snapshot {
    /// The whole body.
    pub fn body(&self, report: &RunReport) -> String {
        let mut out = format!("{}\n", self.verdict);
        for line in &self.recorded {
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(out, "target: {}", self.target);
        if let Some(transport) = transport(&self.plan) {
            let _ = writeln!(out, "transport: {transport}");
        }
        let _ = writeln!(
            out,
            "expect: {}",
            match self.expect {
                Expect::Fail => "fail",
                Expect::Pass => "pass",
            }
        );
        let _ = writeln!(out, "runtime seed: {}", self.runtime_seed);
        out.push_str("plan:\n");
        out.push_str(&self.plan.to_json());
        out.push_str(&derived(report));
        out
    }

    /// The insta file text.
    pub fn file_text(&self, report: &RunReport) -> String {
        format!(
            "---\nsource: sim/src/tooling/snapshot.rs\nexpression: {}\n---\n{}",
            self.name,
            self.body(report)
        )
    }

    /// A snapshot of a freshly shrunk failure.
    pub fn new(
        target: &str,
        plan: Plan,
        runtime_seed: Seed,
        report: &RunReport,
        found: String,
    ) -> Snapshot {
        let name = name_for(&report.outcome, target, &plan);
        let verdict_and_story = report::verdict(report);
        let mut lines = verdict_and_story.lines();
        let verdict = lines.next().unwrap_or_default().to_owned();
        let mut recorded: Vec<String> = lines.map(str::to_owned).collect();
        recorded.push(found);
        recorded.push(format!("replay: cargo sim replay snapshots/{name}.snap"));
        Snapshot {
            name,
            target: target.to_owned(),
            expect: Expect::Fail,
            runtime_seed,
            verdict,
            recorded,
            plan,
        }
    }

    /// The same snapshot, its replay line naming `program` (`cargo sim`, or a team's binary
    /// that registers the target) instead of `cargo sim`, and `dir` (where it is written)
    /// instead of `snapshots`.
    pub fn replayed_by(mut self, program: &str, dir: &str) -> Snapshot {
        let line = format!("replay: {program} replay {dir}/{}.snap", self.name);
        if let Some(l) = self.recorded.iter_mut().find(|l| l.starts_with("replay: ")) {
            *l = line;
        }
        self
    }

    /// How a replay of this snapshot ended, as `replay` says it, with its exit code: as
    /// recorded ([`Exit::Pass`]), now passing ([`Exit::ReplayNowPasses`]) or failing otherwise
    /// ([`Exit::ReplayDiffers`], with the new verdict and trace).
    pub fn replay_verdict(&self, report: &RunReport) -> (Exit, String) {
        let now = report::verdict(report);
        let now_line = now.lines().next().unwrap_or_default();
        let mut out = format!("recorded: {}\nnow:      {now_line}\n", self.verdict);
        let exit = match (self.expect, report.outcome.passed()) {
            (Expect::Pass, true) => {
                out.push_str("replay: passes, as expected (a core bug that has been fixed)\n");
                Exit::Pass
            }
            (Expect::Fail, true) => {
                out.push_str("replay: NOW PASSES (the recorded failure no longer happens)\n");
                Exit::ReplayNowPasses
            }
            (Expect::Fail, false) if self.fails_as_recorded(report) => {
                out.push_str("replay: still failing the same way at the same step\n");
                Exit::Pass
            }
            (_, false) => {
                out.push_str(&format!("replay: FAILS DIFFERENTLY\n{now}\n"));
                out.push_str(&report::trace_excerpt(report, false));
                Exit::ReplayDiffers
            }
        };
        (exit, out)
    }

    /// This snapshot as a run shows it now: the verdict and story derived from `report`, the
    /// recorded `found` and `replay` lines kept. What the corpus test and `replay` compare with
    /// what was recorded, so a change of invariant, step or story at the same plan shows.
    pub fn rederived(&self, report: &RunReport) -> Snapshot {
        let text = report::verdict(report);
        let mut lines = text.lines();
        let verdict = lines.next().unwrap_or_default().to_owned();
        let mut recorded: Vec<String> = lines.map(str::to_owned).collect();
        recorded.extend(
            self.recorded
                .iter()
                .filter(|l| l.starts_with("found: ") || l.starts_with("replay: "))
                .cloned(),
        );
        Snapshot {
            verdict,
            recorded,
            ..self.clone()
        }
    }

    /// Whether `report` fails exactly as recorded: the same verdict line (invariant, step and
    /// virtual time) and the same story.
    pub fn fails_as_recorded(&self, report: &RunReport) -> bool {
        let now = self.rederived(report);
        !report.outcome.passed() && now.verdict == self.verdict && now.recorded == self.recorded
    }

    /// Reads a snapshot file.
    pub fn load(path: &Path) -> Result<Snapshot, SnapshotError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| SnapshotError::Io {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses snapshot text; `path` names it in errors and gives the snapshot's name.
    pub fn parse(text: &str, path: &Path) -> Result<Snapshot, SnapshotError> {
        let shown = path.display().to_string();
        let bad = |problem: &str| SnapshotError::Malformed {
            path: shown.clone(),
            problem: problem.to_owned(),
        };
        let body = text
            .strip_prefix("---\n")
            .and_then(|rest| rest.split_once("\n---\n"))
            .map(|(_, body)| body)
            .ok_or_else(|| bad("no insta header (a `---` line, metadata, a `---` line)"))?;
        let mut lines = body.lines();
        let verdict = lines
            .next()
            .filter(|l| l.starts_with("verdict: "))
            .ok_or_else(|| bad("the first line must be `verdict: ...`"))?
            .to_owned();
        let mut recorded = Vec::new();
        let (mut target, mut expect, mut seed) = (None, None, None);
        for line in lines.by_ref() {
            if line == "plan:" {
                break;
            }
            if let Some(t) = line.strip_prefix("target: ") {
                target = Some(target_name(t).map_err(|e| bad(&e))?);
            } else if let Some(e) = line.strip_prefix("expect: ") {
                expect = Some(match e {
                    "fail" => Expect::Fail,
                    "pass" => Expect::Pass,
                    other => {
                        return Err(bad(&format!("expect must be fail or pass, not {other:?}")))
                    }
                });
            } else if line.starts_with("transport: the real WebSocket server on ") {
                // derived from the plan
            } else if let Some(s) = line.strip_prefix("runtime seed: ") {
                seed = Some(s.parse::<Seed>().map_err(|e| bad(&e.to_string()))?);
            } else {
                recorded.push(line.to_owned());
            }
        }
        let plan_text: String = lines
            .take_while(|l| !l.starts_with("trace ("))
            .map(|l| format!("{l}\n"))
            .collect();
        if plan_text.trim().is_empty() {
            return Err(bad(
                "no plan: expected a `plan:` line followed by the plan's JSON",
            ));
        }
        let plan = Plan::from_json(&plan_text, &format!("{shown} (plan)")).map_err(|source| {
            SnapshotError::Plan {
                path: shown.clone(),
                source,
            }
        })?;
        Ok(Snapshot {
            name: path
                .file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().into_owned()),
            target: target.ok_or_else(|| bad("no `target:` line"))?,
            expect: expect.ok_or_else(|| bad("no `expect:` line"))?,
            runtime_seed: seed.ok_or_else(|| bad("no `runtime seed:` line"))?,
            verdict,
            recorded,
            plan,
        })
    }

    /// Writes the snapshot under `dir`: `<name>.snap` if new; nothing if a snapshot of the same
    /// plan against the same target is there already (failures from different seeds that shrink
    /// to one plan fold into one snapshot); `<name>.snap.new` for review if the file there is
    /// something else. Returns the path written, if any.
    pub fn write(&self, dir: &Path, report: &RunReport) -> Result<Option<PathBuf>, SnapshotError> {
        let io = |path: &Path| {
            let shown = path.display().to_string();
            move |source| SnapshotError::Io {
                path: shown,
                source,
            }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join(format!("{}.snap", self.name));
        let text = self.file_text(report);
        match std::fs::read_to_string(&path) {
            Ok(existing) if existing == text => Ok(None),
            Ok(existing)
                if Self::parse(&existing, &path)
                    .is_ok_and(|old| old.plan == self.plan && old.target == self.target) =>
            {
                Ok(None)
            }
            Ok(_) => {
                let new = path.with_extension("snap.new");
                std::fs::write(&new, text).map_err(io(&new))?;
                Ok(Some(new))
            }
            Err(_) => {
                std::fs::write(&path, text).map_err(io(&path))?;
                Ok(Some(path))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_depends_on_the_target() {
        let plan = crate::generate::workload::generate(
            &crate::generate::config::SimConfig::default(),
            Seed(1),
        );
        let pass = Outcome::Pass;
        let names: std::collections::BTreeSet<String> = ["core", "B1", "B3", "mine"]
            .into_iter()
            .map(|t| name_for(&pass, t, &plan))
            .collect();
        assert_eq!(names.len(), 4, "{names:?}");
    }

    #[test]
    fn malformed_snapshots_are_typed_errors() {
        let p = Path::new("x.snap");
        for text in [
            "",
            "no header",
            "---\nsource: x\n---\nverdict: PASS\n",
            "---\nsource: x\n---\nnot a verdict\n",
            "---\nsource: x\n---\nverdict: PASS\ntarget: B99\nplan:\n{}\n",
            "---\nsource: x\n---\nverdict: PASS\ntarget: two words\nplan:\n{}\n",
            "---\nsource: x\n---\nverdict: PASS\ntarget: core\nexpect: maybe\nplan:\n{}\n",
            "---\nsource: x\n---\nverdict: PASS\ntarget: core\nexpect: fail\nruntime seed: 1\nplan:\n{\"version\": 1,\n",
        ] {
            assert!(Snapshot::parse(text, p).is_err(), "{text:?} parsed");
        }
    }
}
