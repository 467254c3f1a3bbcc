//! The flags that choose a target and shape its config: resolved to a target, applied to a
//! generated config or to a plan file, and written back as the flags that reproduce a run.

use anyhow::{bail, Result};

use super::args::{Buggify, TargetArgs};
use crate::generate::config::SimConfig;
use crate::generate::plan::Plan;
use crate::tooling::target::{Target, Targets};

/// A latency range as its flag takes it: `MIN..MAX`.
pub(crate) fn latency_flag<S: serde::Serializer>(
    range: &Option<[u64; 2]>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match range {
        Some([lo, hi]) => s.serialize_str(&format!("{lo}..{hi}")),
        None => s.serialize_none(),
    }
}

pub(crate) fn parse_latency(s: &str) -> Result<[u64; 2], String> {
    let err = || format!("{s:?} is not a latency range: write MIN..MAX in ms, e.g. 1..10");
    let (lo, hi) = s.split_once("..").ok_or_else(err)?;
    let (lo, hi) = (
        lo.parse().map_err(|_| err())?,
        hi.parse().map_err(|_| err())?,
    );
    if lo > hi {
        return Err(err());
    }
    Ok([lo, hi])
}

impl TargetArgs {
    /// The target these flags name, among `targets`.
    pub(crate) fn resolve<'a>(&self, targets: &'a Targets) -> Result<&'a Target> {
        let target = targets.get(self.target.as_deref().unwrap_or("core"))?;
        let nodes = self.nodes.unwrap_or(1);
        if let Some(bug) = target.node_bug_of() {
            if nodes < 2 && self.nodes.is_some() {
                bail!("{bug} is a bug of many nodes: run it with --net --nodes 2 (or more)");
            }
        } else if nodes > 1 && target.name() != "core" {
            bail!(
                "--nodes runs the core's nodes over a simulated store; {} is a registry of one \
                 node (run it with --net alone), and the bugs of many nodes are {}",
                target.name(),
                crate::zoo::nodes::NodeBug::ALL
                    .map(|b| b.to_string())
                    .join(", ")
            );
        }
        Ok(target)
    }

    pub(crate) fn config(&self) -> Result<SimConfig> {
        let mut c = SimConfig::default();
        if let Some(o) = self.oracle {
            c.oracle = o;
        }
        if let Some(u) = self.users {
            c.users = u;
        }
        if let Some(o) = self.ops {
            c.ops = o;
        }
        c.swarm = !self.no_swarm;
        if let Some(b) = self.buggify {
            c.faults.buggify = b != Buggify::Off;
            c.faults.buggify_sites = b == Buggify::Sites;
        }
        if self.net {
            let mut net = crate::generate::config::NetConfig::default();
            if let Some(l) = self.latency_ms {
                net.latency_ms = l;
            }
            if let Some(l) = self.loss_percent {
                net.loss_percent = l;
            }
            if let Some(p) = self.partitions {
                net.partitions = p;
            }
            if let Some(r) = self.restarts {
                net.restarts = r;
            }
            if let Some(p) = self.pauses {
                net.pauses = p;
            }
            net.same_instant = !self.no_same_instant;
            net.short_history = !self.no_short_history;
            net.connect_deadlines = !self.no_connect_deadlines;
            if let Some(n) = self.nodes {
                net.nodes = n;
                if n > 1 {
                    net.every_store_fault();
                }
                if let Some(f) = self.failovers {
                    net.store_failovers = f;
                }
            }
            c.net = Some(net);
        }
        c.validate()?;
        Ok(c)
    }

    /// Applies these flags to a plan file's plan: the oracle and the network apply; the
    /// flags that shape a generated plan (users, ops, swarm, fault counts) are refused, since
    /// a plan file lists its own users, ops and faults.
    pub(crate) fn apply_to_plan(&self, plan: &mut Plan) -> Result<()> {
        let generated_only = [
            ("--users", self.users.is_some()),
            ("--ops", self.ops.is_some()),
            ("--no-swarm", self.no_swarm),
            ("--buggify", self.buggify.is_some()),
            ("--partitions", self.partitions.is_some()),
            ("--restarts", self.restarts.is_some()),
            ("--pauses", self.pauses.is_some()),
            ("--no-same-instant", self.no_same_instant),
            ("--no-short-history", self.no_short_history),
            ("--no-connect-deadlines", self.no_connect_deadlines),
            ("--nodes", self.nodes.is_some()),
            ("--failovers", self.failovers.is_some()),
        ];
        if let Some((flag, _)) = generated_only.iter().find(|(_, given)| *given) {
            bail!(
                "{flag} shapes the plan a seed generates and does not apply to a plan file, \
                 which lists its own users, ops and faults: edit the file instead"
            );
        }
        if let Some(o) = self.oracle {
            plan.oracle = o;
        }
        if self.net {
            let defaults = crate::generate::config::NetConfig::default();
            let net = plan
                .net
                .get_or_insert_with(|| crate::generate::plan::NetPlan {
                    latency_ms: defaults.latency_ms,
                    loss_percent: defaults.loss_percent,
                    faults: Vec::new(),
                    nodes: 1,
                    spread: false,
                    lease_ms: crate::generate::config::NODE_LEASE_MS,
                    connect_deadline_ms: None,
                });
            if let Some(l) = self.latency_ms {
                net.latency_ms = l;
            }
            if let Some(l) = self.loss_percent {
                net.loss_percent = l;
            }
        }
        plan.validate()?;
        Ok(())
    }

    /// The flags that reproduce this target, for replay lines: every flag given, in the
    /// order the arguments define them, read off the argument definitions themselves (so a
    /// new flag needs no line here).
    pub(crate) fn flags(&self) -> String {
        use clap::Args as _;
        let values = serde_json::to_value(self).expect("target flags serialise");
        let definitions = TargetArgs::augment_args(clap::Command::new("target"));
        let mut f = String::new();
        for arg in definitions.get_arguments() {
            let (Some(long), Some(value)) = (arg.get_long(), values.get(arg.get_id().as_str()))
            else {
                continue;
            };
            match value {
                serde_json::Value::Bool(true) => f.push_str(&format!(" --{long}")),
                serde_json::Value::String(v) => f.push_str(&format!(" --{long} {v}")),
                serde_json::Value::Number(v) => f.push_str(&format!(" --{long} {v}")),
                _ => {}
            }
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::args::{Cli, Command};

    fn target_flags(args: &[&str]) -> String {
        let cli = Cli::try_parse_from(args).expect("parses");
        match cli.command {
            Command::Fuzz(f) => f.target.flags(),
            other => panic!("not fuzz: {other:?}"),
        }
    }

    #[test]
    fn replay_flags_repeat_every_target_flag_given_in_definition_order() {
        let flags = target_flags(&[
            "wsreg-sim",
            "fuzz",
            "--users",
            "7",
            "--bug",
            "B3",
            "--net",
            "--latency-ms",
            "2..9",
            "--oracle",
            "black-box",
            "--no-swarm",
            "--seeds",
            "0..5",
        ]);
        assert_eq!(
            flags,
            " --target B3 --oracle black-box --users 7 --no-swarm --net --latency-ms 2..9"
        );
        assert_eq!(target_flags(&["wsreg-sim", "fuzz"]), "");
    }
}
