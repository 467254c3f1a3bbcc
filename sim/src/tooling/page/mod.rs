//! The report page: one self-contained HTML file (no network, no build step) showing a run as a
//! reviewer wants to look at it: swimlanes over virtual time per user, tab and manager with
//! every step inspectable; the violating step highlighted and explained; each tab's delivery
//! ledger; a filter by user; the plan and the command that replays it.
//!
//! The page's data is one JSON document inside the page; a small script draws it. The header
//! (verdict, story, replay command, plan) is plain HTML, readable without the script.

mod lanes;
mod ledger;
mod source;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use quick_xml::escape::escape;
use serde::Serialize;

pub use lanes::{layout, Lane, Layout};
pub use ledger::{about_senders, ledgers, Entry, TabLedger};
pub use source::{PageError, PageSource, Recorded, RunRecord, RUN_RECORD_VERSION};

use crate::check::outcome::Outcome;
use crate::check::trace::{escaped, Side, Step, What};
use crate::run::world::RunReport;
use crate::tooling::report;

/// The most steps a page draws: the ones leading up to the violation (or the first ones of a
/// run without one). Keeps every page well under [`MAX_BYTES`] whatever the run.
pub const MAX_STEPS: usize = 2_500;

/// The size no page exceeds.
pub const MAX_BYTES: usize = 1_000_000;

const TEMPLATE: &str = include_str!("assets/page.html");
const STYLE: &str = include_str!("assets/page.css");
const SCRIPT: &str = include_str!("assets/page.js");

/// One step as the script gets it: number, virtual µs, lane, class, text, related message
/// (-1: none), who it names, connection, manager.
type Row = (
    u64,
    u64,
    usize,
    &'static str,
    String,
    i64,
    String,
    Option<u64>,
    Option<u64>,
);

#[derive(Serialize)]
struct Data<'a> {
    violation: Option<u64>,
    users: &'a [String],
    involved: Vec<usize>,
    lanes: &'a [Lane],
    steps: Vec<Row>,
    messages: Vec<String>,
    total_steps: usize,
    ledger: Vec<TabLedger>,
    /// Findings no tab shows (about what senders were told), with their user.
    senders: Vec<(String, Entry)>,
}

/// The class a step is drawn with.
fn class(what: &What) -> &'static str {
    match (what.side(), what) {
        (Side::World, _) => "world",
        (_, What::Refused { .. }) => "refused",
        (_, What::Received { lost: true, .. } | What::Gap { lost: true, .. }) => "lost",
        (_, What::Received { .. }) => "recv",
        (_, What::Gap { .. }) => "gap",
        (Side::Client, _) => "act",
        (Side::Core, _) => "core",
    }
}

/// Which message each step is about, so selecting one step lights up the others: the emit or
/// send, the backend's acceptance, each delivery and each receipt.
fn related(trace: &[Step]) -> (Vec<i64>, Vec<String>) {
    let mut ids: BTreeMap<String, i64> = BTreeMap::new();
    let mut messages = Vec::new();
    let mut accepted: BTreeMap<(u64, u64), String> = BTreeMap::new();
    let mut rel = Vec::with_capacity(trace.len());
    for s in trace {
        let tag = match &s.what {
            What::Send { msg } | What::Emit { msg } | What::Received { msg, .. } => {
                Some(msg.to_string())
            }
            What::Accepted { at, msg } => {
                if let Some(m) = s.mgr {
                    accepted.insert((m, at.seq), msg.to_string());
                }
                Some(msg.to_string())
            }
            What::Delivered { seq } => s.mgr.and_then(|m| accepted.get(&(m, *seq)).cloned()),
            _ => None,
        };
        rel.push(tag.map_or(-1, |t| {
            let next = ids.len() as i64;
            *ids.entry(t.clone()).or_insert_with(|| {
                messages.push(t);
                next
            })
        }));
    }
    (rel, messages)
}

/// The steps the page draws: at most [`MAX_STEPS`], ending at the violation if there is one.
fn window(trace: &[Step], violation: Option<u64>) -> std::ops::Range<usize> {
    let end = violation
        .and_then(|v| trace.iter().position(|s| s.n == v))
        .map_or(trace.len(), |i| i + 1);
    let start = if violation.is_some() {
        end.saturating_sub(MAX_STEPS)
    } else {
        0
    };
    start..end.min(start + MAX_STEPS)
}

/// The page for `report`, a run of `source`'s plan.
pub fn render(source: &PageSource, report: &RunReport) -> String {
    let violation = match &report.outcome {
        Outcome::Violation(v) => Some(v.step),
        _ => None,
    };
    let layout = layout(&report.trace);
    let (rel, messages) = related(&report.trace);
    let shown = window(&report.trace, violation);
    let steps: Vec<Row> = shown
        .clone()
        .map(|i| {
            let s = &report.trace[i];
            (
                s.n,
                s.t_us,
                layout.lane_of[i],
                class(&s.what),
                s.what.to_string(),
                rel[i],
                escaped(&s.user).into_owned(),
                s.conn,
                s.mgr,
            )
        })
        .collect();
    let involved = match violation.and_then(|v| report.trace.iter().position(|s| s.n == v)) {
        Some(i) => {
            let mut users = layout.lanes[layout.lane_of[i]].users.clone();
            if let What::Received { msg, .. } = &report.trace[i].what {
                let owner = escaped(msg.owner()).into_owned();
                if let Some(u) = layout.users.iter().position(|u| *u == owner) {
                    users.push(u);
                }
            }
            users
        }
        None => Vec::new(),
    };
    let findings = crate::check::ledger::findings(
        &report.trace,
        &report.confirms,
        &report.learned,
        &source.plan.limits,
        source.plan.net.is_some(),
        source.plan.net.as_ref().map_or(1, |n| n.nodes),
    );
    let data = Data {
        violation,
        users: &layout.users,
        involved,
        lanes: &layout.lanes,
        steps,
        messages,
        total_steps: report.trace.len(),
        ledger: ledgers(&report.trace, &findings),
        senders: about_senders(&findings),
    };
    // `<` only occurs inside JSON strings, where `\u003c` means the same: the document cannot
    // close its script element early, whatever the ids and texts hold.
    let json = serde_json::to_string(&data)
        .expect("page data serialises")
        .replace('<', "\\u003c");
    let title = format!("wsreg-sim: {}", source.name);
    fill(
        TEMPLATE,
        &[
            ("TITLE", &escape(title.as_str())),
            ("STYLE", STYLE),
            ("HEADER", &header(source, report, shown, violation)),
            ("DATA", &json),
            ("SCRIPT", SCRIPT),
        ],
    )
}

/// The template with each `{{NAME}}` replaced, in one pass: what is put in is never scanned
/// again, so an id that reads `{{SCRIPT}}` stays text.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out =
        String::with_capacity(template.len() + values.iter().map(|v| v.1.len()).sum::<usize>());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        match after.find("}}").and_then(|close| {
            values
                .iter()
                .find(|(k, _)| *k == &after[..close])
                .map(|v| (close, v.1))
        }) {
            Some((close, value)) => {
                out.push_str(value);
                rest = &after[close + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The verdict, the story, what the broken rule promises, the replay command and the plan.
fn header(
    source: &PageSource,
    report: &RunReport,
    shown: std::ops::Range<usize>,
    violation: Option<u64>,
) -> String {
    let e = |s: &str| escape(s).into_owned();
    let mut out = String::new();
    let verdict = report::verdict(report);
    let mut lines = verdict.lines();
    let first = lines.next().unwrap_or_default();
    let class = if report.outcome.passed() {
        "pass"
    } else {
        "fail"
    };
    let _ = writeln!(
        out,
        "<section id=\"verdict\" class=\"{class}\">\n<h1>{}</h1>",
        e(first)
    );
    match &report.outcome {
        Outcome::Violation(v) => {
            let _ = writeln!(
                out,
                "<p class=\"story\"><b>What went wrong:</b> {}</p>\n<p class=\"promise\"><b>The rule ({}):</b> {}</p>\n<p><a href=\"#\" id=\"goto-violation\" data-step=\"{}\">Show step {} in the timeline</a></p>",
                e(&v.message),
                e(&v.invariant.to_string()),
                e(v.invariant.promise()),
                v.step,
                v.step
            );
        }
        Outcome::Stuck { .. } => {
            let _ = writeln!(
                out,
                "<p class=\"promise\"><b>The rule (I10 liveness):</b> {}</p>\n<pre class=\"story\">{}</pre>",
                e(crate::check::invariant::Invariant::I10.promise()),
                e(&lines.collect::<Vec<_>>().join("\n"))
            );
        }
        _ => {
            for l in lines {
                let _ = writeln!(out, "<p class=\"story\">{}</p>", e(l));
            }
        }
    }
    if let Some(note) = source.mismatch(report) {
        let _ = writeln!(out, "<p class=\"mismatch\">{}</p>", e(&note));
    }
    out.push_str("</section>\n<section id=\"facts\"><dl>\n");
    let mut fact = |k: &str, v: &str| {
        let _ = writeln!(out, "<dt>{}</dt><dd>{}</dd>", e(k), e(v));
    };
    fact("target", &source.target);
    fact(
        "transport",
        &crate::tooling::snapshot::transport(&source.plan)
            .unwrap_or_else(|| "in process".to_owned()),
    );
    fact("runtime seed", &source.runtime_seed.to_string());
    fact(
        "summary",
        report::summary(report).trim_start_matches("summary: "),
    );
    if let Some(found) = &source.found {
        fact("found", found);
    }
    if shown.len() < report.trace.len() {
        fact(
            "steps shown",
            &format!(
                "{} to {} of {} ({}); the replay command prints them all with --full-trace",
                report.trace[shown.start].n,
                report.trace[shown.end - 1].n,
                report.trace.len(),
                if violation.is_some() {
                    "the ones leading up to the violation"
                } else {
                    "the first ones"
                }
            ),
        );
    }
    let _ = writeln!(
        out,
        "</dl>\n<p class=\"replay\"><b>Replay:</b> <code id=\"replay\">{}</code></p></section>",
        e(&source.replay)
    );
    let _ = writeln!(
        out,
        "<details id=\"plan\"><summary>The plan ({} users, {} ops)</summary><pre>{}</pre></details>",
        source.plan.users.len(),
        source.plan.ops.len(),
        e(&source.plan.to_json())
    );
    out
}

/// Where the page for a snapshot or record at `path` goes by default: beside it, as `.html`.
pub fn beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "run".into(), |n| n.to_string_lossy().into_owned());
    let stem = name
        .strip_suffix(".snap.new")
        .or_else(|| name.strip_suffix(".snap"))
        .or_else(|| name.strip_suffix(".json"))
        .unwrap_or(&name);
    path.with_file_name(format!("{stem}.html"))
}

/// Writes the page.
pub fn write(path: &Path, page: &str) -> Result<(), PageError> {
    std::fs::write(path, page).map_err(|source| PageError::Io {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_is_filled_in_one_pass() {
        let filled = fill(
            "<h1>{{TITLE}}</h1>{{DATA}}{{UNKNOWN}}{{",
            &[("TITLE", "{{DATA}}"), ("DATA", "x")],
        );
        assert_eq!(filled, "<h1>{{DATA}}</h1>x{{UNKNOWN}}{{");
    }

    #[test]
    fn a_page_goes_beside_its_source() {
        for (from, to) in [
            ("snapshots/I1-x.snap", "snapshots/I1-x.html"),
            ("store/I1-x.snap.new", "store/I1-x.html"),
            ("target/run.json", "target/run.html"),
            ("notes", "notes.html"),
        ] {
            assert_eq!(beside(Path::new(from)), Path::new(to));
        }
    }

    #[test]
    fn the_window_ends_at_the_violation() {
        let step = |n| Step {
            n,
            t_us: 0,
            user: "u".into(),
            conn: None,
            mgr: None,
            tab: None,
            what: What::Close,
        };
        let trace: Vec<Step> = (1..=(MAX_STEPS as u64 + 500)).map(step).collect();
        assert_eq!(window(&trace, None), 0..MAX_STEPS);
        assert_eq!(window(&trace, Some(3)), 0..3);
        let end = MAX_STEPS + 100;
        assert_eq!(window(&trace, Some(end as u64)), 100..end);
    }
}
