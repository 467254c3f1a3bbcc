//! Shrinking: from a failing (plan, runtime seed), find a small plan that still fails the same
//! way. Chunks of ops are dropped first (halving down to single ops, as in delta debugging),
//! then whole users, then network faults one by one, then buggify (or, when it is needed, each
//! of its sites), then each op is simplified and moved earlier; this repeats until nothing
//! changes, so the result is 1-minimal (dropping any single op makes it pass) unless the budget ran out first.
//! Removing an op shifts the schedule, so each candidate is also tried under a few other runtime
//! seeds, and the one that fails is kept.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::check::outcome::Outcome;
use crate::generate::plan::{Op, OpKind, Plan};
use crate::generate::seed::Seed;
use crate::generate::sites::{Site, SITES};
use crate::run::recorder::Keep;
use crate::run::runtime::RuntimeError;
use crate::run::world::RunReport;
use crate::tooling::target::Target;

/// Limits of one shrink.
#[derive(Clone, Copy, Debug)]
pub struct ShrinkOptions {
    /// Most runs to spend.
    pub max_runs: usize,
    /// Most wall time to spend.
    pub max_time: Duration,
    /// Runtime seeds tried per candidate (the current one first).
    pub seeds_per_candidate: u64,
}

impl Default for ShrinkOptions {
    fn default() -> Self {
        Self {
            max_runs: 2_000,
            max_time: Duration::from_secs(120),
            seeds_per_candidate: 4,
        }
    }
}

/// What a shrink found.
#[derive(Debug)]
pub struct Shrunk {
    /// The smallest failing plan.
    pub plan: Plan,
    /// The runtime seed it fails under.
    pub runtime_seed: Seed,
    /// Its run, every step kept.
    pub report: RunReport,
    /// Ops in the plan shrinking started from.
    pub original_ops: usize,
    /// Runs spent.
    pub runs: usize,
    /// Wall time spent.
    pub elapsed: Duration,
    /// Whether the budget ran out before a fixpoint (the plan may then not be 1-minimal).
    pub exhausted: bool,
}

/// Progress callback: runs so far, ops in the current plan.
pub type ShrinkProgress<'a> = &'a dyn Fn(usize, usize);

struct Search<'a> {
    target: &'a Target,
    label: String,
    opts: ShrinkOptions,
    runs: usize,
    started: Instant,
    seed: Seed,
    progress: ShrinkProgress<'a>,
}

impl Search<'_> {
    fn out_of_budget(&self) -> bool {
        self.runs >= self.opts.max_runs || self.started.elapsed() >= self.opts.max_time
    }

    /// The runtime seed under which `plan` fails the same way, if any within the tries.
    fn fails(&mut self, plan: &Plan) -> Result<Option<Seed>, RuntimeError> {
        let plan = Arc::new(plan.clone());
        for k in 0..self.opts.seeds_per_candidate.max(1) {
            if self.out_of_budget() {
                return Ok(None);
            }
            let seed = if k == 0 {
                self.seed
            } else {
                self.seed.child(&format!("shrink-{k}"))
            };
            self.runs += 1;
            let r = self.target.run(Arc::clone(&plan), seed, Keep::Tail(1))?;
            if r.outcome.label() == self.label {
                return Ok(Some(seed));
            }
        }
        Ok(None)
    }

    /// Keeps `candidate` if it still fails.
    fn try_keep(&mut self, plan: &mut Plan, candidate: Plan) -> Result<bool, RuntimeError> {
        match self.fails(&candidate)? {
            Some(seed) => {
                *plan = candidate;
                self.seed = seed;
                (self.progress)(self.runs, plan.ops.len());
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// The buggify sites a plan has on (a plan without a list has them all).
fn on_sites(plan: &Plan) -> std::collections::BTreeSet<Site> {
    plan.buggify_sites
        .clone()
        .unwrap_or_else(|| SITES.iter().map(|s| s.0).collect())
}

fn without_user(plan: &Plan, name: &str) -> Plan {
    let mut p = plan.clone();
    p.users.retain(|u| u.name != name);
    p.ops.retain(|o| o.user != name);
    p
}

fn without_ops(plan: &Plan, from: usize, len: usize) -> Plan {
    let mut p = plan.clone();
    p.ops.drain(from..(from + len).min(p.ops.len()));
    p.users.retain(|u| p.ops.iter().any(|o| o.user == u.name));
    p
}

/// Simpler versions of one op, simplest first.
fn simpler(op: &Op) -> Vec<OpKind> {
    match &op.kind {
        OpKind::Connect { slow, fresh } if *slow || *fresh => {
            let mut out = vec![OpKind::Connect {
                slow: false,
                fresh: false,
            }];
            if *slow && *fresh {
                out.push(OpKind::Connect {
                    slow: false,
                    fresh: true,
                });
                out.push(OpKind::Connect {
                    slow: true,
                    fresh: false,
                });
            }
            out
        }
        OpKind::Burst { n } if *n > 2 => vec![OpKind::Burst { n: 2 }],
        OpKind::Close { tab } | OpKind::Crash { tab } | OpKind::Reconnect { tab } if *tab > 0 => {
            let mut k = op.kind.clone();
            match &mut k {
                OpKind::Close { tab } | OpKind::Crash { tab } | OpKind::Reconnect { tab } => {
                    *tab = 0
                }
                _ => {}
            }
            vec![k]
        }
        OpKind::Run {
            tools,
            thinking,
            step_ms,
        } => {
            let mut out = Vec::new();
            if *thinking > 0 {
                out.push(OpKind::Run {
                    tools: *tools,
                    thinking: 0,
                    step_ms: *step_ms,
                });
            }
            if *tools > 0 {
                out.push(OpKind::Run {
                    tools: tools - 1,
                    thinking: *thinking,
                    step_ms: *step_ms,
                });
            }
            if *step_ms > 1 {
                out.push(OpKind::Run {
                    tools: *tools,
                    thinking: *thinking,
                    step_ms: 1,
                });
            }
            out
        }
        _ => Vec::new(),
    }
}

/// Shrinks a plan that fails with `label` (an [`Outcome::label`]) under `runtime_seed`.
pub fn shrink(
    target: &Target,
    plan: Plan,
    runtime_seed: Seed,
    label: &str,
    opts: ShrinkOptions,
    progress: ShrinkProgress<'_>,
) -> Result<Shrunk, RuntimeError> {
    let original_ops = plan.ops.len();
    let mut s = Search {
        target,
        label: label.to_owned(),
        opts,
        runs: 0,
        started: Instant::now(),
        seed: runtime_seed,
        progress,
    };
    let mut plan = plan;
    // Users whose ops never ran add nothing.
    plan.users
        .retain(|u| plan.ops.iter().any(|o| o.user == u.name));
    let mut changed = true;
    while changed && !s.out_of_budget() {
        changed = false;
        let mut chunk = plan.ops.len() / 2;
        while chunk >= 1 && !s.out_of_budget() {
            let mut at = 0;
            while at < plan.ops.len() && !s.out_of_budget() {
                let candidate = without_ops(&plan, at, chunk);
                if s.try_keep(&mut plan, candidate)? {
                    changed = true;
                } else {
                    at += chunk;
                }
            }
            chunk /= 2;
        }
        for name in plan
            .users
            .iter()
            .map(|u| u.name.clone())
            .collect::<Vec<_>>()
        {
            let candidate = without_user(&plan, &name);
            if plan.users.len() > 1 && !s.out_of_budget() && s.try_keep(&mut plan, candidate)? {
                changed = true;
            }
        }
        let faults = plan.net.as_ref().map_or(0, |n| n.faults.len());
        for i in (0..faults).rev() {
            let mut c = plan.clone();
            if let Some(net) = &mut c.net {
                net.faults.remove(i);
            }
            if !s.out_of_budget() && s.try_keep(&mut plan, c)? {
                changed = true;
            }
        }
        if plan.buggify {
            let mut c = plan.clone();
            c.buggify = false;
            c.buggify_sites = None;
            if s.try_keep(&mut plan, c)? {
                changed = true;
            }
        }
        // Buggify still needed: keep only the sites it needs, so the snapshot names them.
        if plan.buggify {
            for site in on_sites(&plan) {
                let mut c = plan.clone();
                let mut fewer = on_sites(&c);
                fewer.remove(&site);
                if fewer.is_empty() {
                    continue;
                }
                c.buggify_sites = Some(fewer);
                if !s.out_of_budget() && s.try_keep(&mut plan, c)? {
                    changed = true;
                }
            }
        }
        if plan.connect_timeout_ms.is_some() {
            let mut c = plan.clone();
            c.connect_timeout_ms = None;
            if s.try_keep(&mut plan, c)? {
                changed = true;
            }
        }
        for i in 0..plan.ops.len() {
            for kind in simpler(&plan.ops[i]) {
                let mut c = plan.clone();
                c.ops[i].kind = kind;
                if s.try_keep(&mut plan, c)? {
                    changed = true;
                    break;
                }
            }
            let earlier = if i == 0 { 0 } else { plan.ops[i - 1].at_ms };
            if plan.ops[i].at_ms > earlier {
                let mut c = plan.clone();
                c.ops[i].at_ms = earlier;
                if s.try_keep(&mut plan, c)? {
                    changed = true;
                }
            }
        }
    }
    let exhausted = s.out_of_budget();
    let report = target.run(Arc::new(plan.clone()), s.seed, Keep::All)?;
    s.runs += 1;
    debug_assert!(!matches!(report.outcome, Outcome::Pass));
    Ok(Shrunk {
        plan,
        runtime_seed: s.seed,
        report,
        original_ops,
        runs: s.runs,
        elapsed: s.started.elapsed(),
        exhausted,
    })
}
