//! What the CLI prints: a run's header, verdict, summary, trace excerpt and replay command; a
//! campaign's summary.

use std::fmt::Write as _;

use crate::check::coverage::points;
use crate::check::outcome::Outcome;
use crate::check::trace::{Step, HEADER, LEGEND};
use crate::run::world::RunReport;
use crate::tooling::campaign::CampaignSummary;

/// How many steps before the violating one an excerpt shows.
pub const EXCERPT: usize = 40;

/// The verdict line and its explanation.
pub fn verdict(report: &RunReport) -> String {
    let t = |step: u64| {
        report
            .trace
            .iter()
            .find(|s| s.n == step)
            .map_or(String::new(), |s| {
                format!(" (t={:.6}s)", s.t_us as f64 / 1e6)
            })
    };
    match &report.outcome {
        Outcome::Pass => "verdict: PASS".to_owned(),
        Outcome::Violation(v) => format!(
            "verdict: VIOLATION {} at step {}{}\nstory: {}",
            v.invariant,
            v.step,
            t(v.step),
            v.message
        ),
        Outcome::Stuck { blocked } => {
            let mut s =
                "verdict: STUCK I10 liveness: these did not finish within the bound:".to_owned();
            for b in blocked {
                let _ = write!(s, "\n  {b}");
            }
            s
        }
        Outcome::Panic { message, by, at } => match at {
            Some(at) => format!("verdict: PANIC in {by} at {at}: {message}"),
            None => format!("verdict: PANIC in {by}: {message}"),
        },
    }
}

/// The run's counts in one line.
pub fn summary(report: &RunReport) -> String {
    let s = &report.stats;
    format!(
        "summary: {} steps, {:.3} s virtual, {} managers, {} connections, {} messages accepted, {} read by clients, trace hash {:#018x}",
        report.steps,
        report.virtual_us as f64 / 1e6,
        s.managers,
        s.connections,
        s.accepted,
        s.received,
        report.hash
    )
}

/// The last [`EXCERPT`] steps up to the violating one (all of them with `all`), with the legend.
pub fn trace_excerpt(report: &RunReport, all: bool) -> String {
    let upto = match &report.outcome {
        Outcome::Violation(v) => v.step,
        _ => u64::MAX,
    };
    let steps: Vec<&Step> = report.trace.iter().filter(|s| s.n <= upto).collect();
    let skip = if all {
        0
    } else {
        steps.len().saturating_sub(EXCERPT)
    };
    let mut out = format!("trace ({LEGEND}):\n{HEADER}\n");
    if skip > 0 {
        let _ = writeln!(out, "  ... {skip} earlier steps");
    }
    for s in &steps[skip..] {
        let mark = if s.n == upto { "   <-- violation" } else { "" };
        let _ = writeln!(out, "{s}{mark}");
    }
    out
}

/// A campaign summary as text.
pub fn campaign(s: &CampaignSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "campaign: {} seeds of {} (shard {}) against {}{}",
        s.seeds_run,
        s.range,
        s.shard,
        s.target,
        if s.stopped_by_budget {
            ", stopped by the time budget"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "throughput: {:.1} seeds/s, {:.0} steps/s, {:.1} simulated s per wall s ({} steps, {:.1} s virtual, {:.2} s wall)",
        s.seeds_per_s, s.steps_per_s, s.acceleration, s.steps, s.virtual_s, s.wall_s
    );
    let nondeterminism = crate::check::outcome::FailureKind::Nondeterminism.to_string();
    if let Some(g) = s.failures.get(&nondeterminism) {
        let _ = writeln!(
            out,
            "WARNING: NONDETERMINISM: this backend does not run a seed the same way twice ({} seed(s), first {}). Every verdict below may fail to replay; a shrunk snapshot is kept only if it fails the same way in a fresh process.",
            g.count, g.first_seed
        );
    }
    let found = s
        .failures
        .iter()
        .map(|(label, g)| (label.as_str(), g.message.as_str()));
    for fix in crate::tooling::diagnosis::diagnose(found) {
        let _ = writeln!(out, "what to change: {fix}");
    }
    if s.failures.is_empty() {
        let _ = writeln!(out, "failures: none");
    } else {
        let _ = writeln!(out, "failures:");
        for (label, g) in &s.failures {
            let _ = writeln!(
                out,
                "  {label}: {} seed(s), first {}: {}",
                g.count, g.first_seed, g.message
            );
        }
    }
    let _ = writeln!(out, "coverage (hits over all seeds):");
    // The many-node points are in the summary only for a campaign over many nodes.
    let nodes = crate::check::coverage::NODE_POINTS
        .into_iter()
        .filter(|(p, _)| s.coverage.contains_key(*p));
    for (point, meaning) in points(s.network).chain(nodes) {
        let hits = s.coverage.get(point).copied().unwrap_or(0);
        let flag = if hits == 0 { "  <-- never reached" } else { "" };
        let _ = writeln!(out, "  {point:<24}{hits:>9}  {meaning}{flag}");
    }
    out
}

/// What a determinism check found, as `run --check-determinism` prints it.
pub fn determinism(
    report: &RunReport,
    divergence: Option<&crate::tooling::campaign::Divergence>,
) -> String {
    match divergence {
        None => format!(
            "determinism: replayed identically (hash {:#018x})",
            report.hash
        ),
        Some(d) => format!(
            "determinism: NONDETERMINISM, first differing step {}:\n  run 1: {}\n  run 2: {}",
            d.step, d.first, d.second
        ),
    }
}

/// A campaign's progress on stderr: a bar on a terminal, a line every tenth otherwise.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    step: u64,
    unit: &'static str,
    /// The last tenth a line was printed for.
    printed: std::sync::atomic::AtomicU64,
}

impl Progress {
    /// Progress over `total` seeds.
    pub fn new(total: u64) -> Self {
        Self::of(total, "seeds")
    }

    /// Progress over `total` of `unit` (`seeds`, `runs`).
    pub fn of(total: u64, unit: &'static str) -> Self {
        use std::io::IsTerminal;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            let template =
                format!("{{bar:40}} {{pos}}/{{len}} {unit}  {{per_sec}}  eta {{eta}}  {{msg}}");
            bar.set_style(indicatif::ProgressStyle::with_template(&template).expect("template"));
            bar
        });
        Self {
            bar,
            step: (total / 10).max(1),
            unit,
            printed: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// `done` of `total` seeds have run, `failures` of them failing.
    pub fn tick(&self, done: u64, total: u64, failures: u64) {
        self.say(done, total, &format!("{failures} failing"));
    }

    /// `done` of `total` have run; `message` says how it goes.
    pub fn say(&self, done: u64, total: u64, message: &str) {
        use std::sync::atomic::Ordering;
        match &self.bar {
            Some(bar) => {
                bar.set_position(done);
                bar.set_message(message.to_owned());
            }
            // A line each time a tenth is passed (runs may come several at a time).
            None => {
                let tenth = done / self.step;
                if tenth > self.printed.fetch_max(tenth, Ordering::Relaxed) || done == total {
                    eprintln!("progress: {done}/{total} {}, {message}", self.unit);
                }
            }
        }
    }

    /// The campaign ended: the bar goes away.
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
