//! [`Plan`]: a run as plain data (users, their operations at virtual times, the core's limits).
//! Generated from a seed, or written by hand as JSON; replay and shrinking edit plans.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use wsreg::{Mode, UserContext};

use crate::generate::config::{Limits, MAX_AT_MS, MAX_LOSS_PERCENT, MAX_NODES, MAX_OPS, MAX_USERS};
use crate::generate::oracle::Oracle;
use crate::generate::sites::Site;

/// The plan format version this build writes.
///
/// - **2**: the stream contract. A user's stream keeps a bounded history
///   (`limits.history_capacity` messages for `limits.history_ttl_ms`) that every tab reads
///   through a cursor; `limits.outbound_capacity` and `limits.recovery_capacity` are gone.
/// - **1**: before it, with a per-connection outbound queue and a recovery queue. Plans written
///   as version 1 after the stream contract came in (the format kept its number for a while)
///   hold neither field; they read as version 2 and keep their number, so a snapshot's name
///   (a hash of its plan) does not move. A version 1 plan that sets either field is refused
///   with what replaced it.
pub const PLAN_VERSION: u32 = 2;

/// The oldest plan format version this build reads (see [`PLAN_VERSION`]).
pub const OLDEST_PLAN_VERSION: u32 = 1;

/// The limits a plan could set before version 2, and what replaced them.
const REMOVED_LIMITS: [(&str, &str); 2] = [
    (
        "outbound_capacity",
        "a connection no longer has a queue of its own: it reads its user's stream, whose history keeps `limits.history_capacity` messages, through a cursor",
    ),
    (
        "recovery_capacity",
        "the recovery queue became the user's history: `limits.history_capacity` messages, kept for `limits.history_ttl_ms`",
    ),
];

/// One run: who, what, when. Together with a runtime seed it determines the run completely.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Format version; must be [`PLAN_VERSION`].
    pub version: u32,
    /// The core's limits for this run.
    #[serde(default)]
    pub limits: Limits,
    /// Whether buggify adds yields at the harness's await points.
    #[serde(default)]
    pub buggify: bool,
    /// The buggify sites this run switches on (absent: every site).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buggify_sites: Option<BTreeSet<Site>>,
    /// Virtual milliseconds the liveness phase may take.
    #[serde(default = "default_liveness_bound_ms")]
    pub liveness_bound_ms: u64,
    /// The users, by name, with the thread id their requests carry.
    pub users: Vec<UserSpec>,
    /// Operations, in any order (they run at their `at_ms`; ties run in listed order per user).
    pub ops: Vec<Op>,
    /// When present, the run goes over the network: the real WebSocket server on a simulated
    /// node, clients on another, with this latency and these faults. Absent: in-process calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net: Option<NetPlan>,
    /// Which oracles judge the run (absent: both).
    #[serde(default, skip_serializing_if = "Oracle::is_both")]
    pub oracle: Oracle,
    /// How long a client waits for a connect before it gives up and tries once more, in
    /// virtual milliseconds (absent: for as long as it takes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout_ms: Option<u64>,
}

/// The simulated network of a run.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetPlan {
    /// Each packet's one-way latency is drawn from `[min, max]` milliseconds.
    pub latency_ms: [u64; 2],
    /// Percent of packets lost (0 to 10): a lost connect is refused (the client retries), a
    /// lost packet on an open stream is sent again after a backoff. madsim's backoff doubles
    /// up to 10 s, so at higher rates one packet can outlast the liveness bound and a run
    /// would be called stuck for the network's sake.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub loss_percent: u8,
    /// Network and server faults, at their virtual times.
    #[serde(default)]
    pub faults: Vec<NetFault>,
    /// Server nodes (1 to 8). One: the server on its own, as always. More: that many nodes
    /// over one simulated stream store, each user's tabs on one node (a sticky load balancer),
    /// each agent run on the next node in turn, so messages cross nodes.
    #[serde(default = "one_node", skip_serializing_if = "is_one_node")]
    pub nodes: u32,
    /// Many nodes: the load balancer sends each connect to the next node in turn (one user's
    /// tabs on several nodes at once) instead of each user's tabs to one node.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub spread: bool,
    /// Many nodes: how long a connection's lease on one of its user's slots lasts unless
    /// renewed, in ms. Not part of a plan file: campaigns always use
    /// [`NODE_LEASE_MS`](crate::generate::config::NODE_LEASE_MS); the disconnect benchmark uses
    /// the production default.
    #[serde(skip, default = "node_lease_ms")]
    pub lease_ms: u64,
    /// The server's connect timeout, in ms: how long the registry may take to accept a
    /// connection before the server drops the call and tells the client to come back. None:
    /// the server waits as long as the registry takes. A registry must leave nothing of a
    /// dropped connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_deadline_ms: Option<u64>,
}

fn one_node() -> u32 {
    1
}

fn node_lease_ms() -> u64 {
    crate::generate::config::NODE_LEASE_MS
}

fn is_one_node(n: &u32) -> bool {
    *n == 1
}

/// A fault on the network or the server node.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NetFault {
    /// When, in virtual milliseconds from the start.
    pub at_ms: u64,
    /// What.
    #[serde(flatten)]
    pub kind: NetFaultKind,
}

/// What goes wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case", deny_unknown_fields)]
pub enum NetFaultKind {
    /// The clients' node and the server's cannot reach each other for `ms` milliseconds: new
    /// connections are refused, established streams stall and catch up after healing.
    Partition {
        /// How long (1 to 10,000).
        ms: u64,
    },
    /// The server node is killed and started again: every socket drops, and the registry
    /// (every manager, every queued message) is lost; a fresh one takes over.
    Restart,
    /// Many nodes: server node `node` is killed and started again; its tabs drop (their
    /// clients see them crash) and the streams, kept by the store, survive.
    NodeRestart {
        /// Which node (from 0).
        node: u32,
    },
    /// Many nodes: the store is killed and started again empty (no persistence): every
    /// stream is lost, and must be announced to every tab.
    StoreRestart,
    /// Many nodes: server node `node` cannot reach the store for `ms` milliseconds.
    StoreCut {
        /// Which node (from 0).
        node: u32,
        /// How long (1 to 10,000).
        ms: u64,
    },
    /// Many nodes: for `ms` milliseconds the store answers every call `reply_ms` late (it
    /// does what it is asked at once; the answer, and the calls behind it on the same
    /// connection, wait), so calls time out that the store carried out.
    StoreSlow {
        /// How late each answer is (1 to 10,000).
        reply_ms: u64,
        /// How long (1 to 10,000).
        ms: u64,
    },
    /// Many nodes: the store fails over to a replica that had not received each stream's
    /// newest `lose` writes (asynchronous replication): they are gone, epochs and heads
    /// rolled back with them, and the store continues under a new lineage. Every node's
    /// connection to the store drops.
    StoreFailover {
        /// Writes lost from the end of each stream (0 to 1,000).
        lose: u64,
    },
    /// Many nodes: the store forgets every stream while it runs (`FLUSHALL`); connections
    /// and subscriptions stay.
    StoreFlush,
    /// Many nodes: the store evicts the meta record (or, `history`, the history) of the
    /// `nth` stream it holds, counting round, as Redis does under `maxmemory`.
    StoreEvict {
        /// Which stream, in the store's key order, counting round.
        nth: u32,
        /// The history rather than the meta record.
        history: bool,
    },
    /// Server node `node` (0 with one server) stops for `ms` milliseconds: none of its tasks
    /// runs, and what reached it meanwhile (packets, timers, wakeups) runs when it resumes, in
    /// one scheduling draw. Requests sent apart are then handled together: races whose window
    /// has no time in it open through the network.
    Pause {
        /// Which node (from 0).
        node: u32,
        /// How long (1 to 10,000).
        ms: u64,
    },
    /// Many nodes: the store stops for `ms` milliseconds, and the calls and pushes it held
    /// are answered together when it resumes.
    StorePause {
        /// How long (1 to 10,000).
        ms: u64,
    },
    /// Many nodes: every connection the store has stops getting pushes (live messages, and
    /// the answers to probes that travel as pushes) for as long as it lasts, while it goes on
    /// answering calls: a subscription gone silent while its socket looks healthy.
    StoreSilence,
    /// Many nodes: for `ms` milliseconds the store holds each push back by up to `max_ms`,
    /// each by a draw of its own, so live messages arrive out of order and after reads.
    StoreLiveLate {
        /// Longest hold (1 to 10,000).
        max_ms: u64,
        /// How long (1 to 10,000).
        ms: u64,
    },
}

fn default_liveness_bound_ms() -> u64 {
    10_000
}

/// A simulated user.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    /// The user id (`u1`, `u2`...).
    pub name: String,
    /// The thread id its requests carry (shared between users on purpose).
    pub thread: String,
}

/// One client action.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Op {
    /// When, in virtual milliseconds from the start.
    pub at_ms: u64,
    /// Whose action (a name from `users`).
    pub user: String,
    /// What.
    #[serde(flatten)]
    pub kind: OpKind,
}

/// What a client does. Tabs are the user's open connections, oldest first; `tab` picks one
/// modulo how many are open (nothing happens with none).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum OpKind {
    /// Open a tab; a `slow` one reads 5 ms per message until the liveness phase heals it. The
    /// client resumes after the last position the user's tabs saw, unless `fresh`.
    Connect {
        /// Whether it reads slowly.
        #[serde(default, skip_serializing_if = "is_false")]
        slow: bool,
        /// Whether it starts without a position (a new device), rather than resuming.
        #[serde(default, skip_serializing_if = "is_false")]
        fresh: bool,
    },
    /// Close a tab cleanly.
    Close {
        /// Which.
        #[serde(default)]
        tab: usize,
    },
    /// Drop a tab without closing it; the server notices 20 ms later.
    Crash {
        /// Which.
        #[serde(default)]
        tab: usize,
    },
    /// Close a tab and open a new one in the same instant, resuming after the user's last
    /// position.
    Reconnect {
        /// Which.
        #[serde(default)]
        tab: usize,
    },
    /// Open `n` tabs at once.
    Burst {
        /// How many (1 to 16).
        n: u8,
    },
    /// Send the user a text message. (A struct variant, so that a field it does not take is
    /// refused rather than ignored.)
    Send {},
    /// Start an agent run: `agent_started`, `thinking` thoughts, `tools` nested tool calls,
    /// `agent_completed`, one event every `step_ms`.
    Run {
        /// Tool calls (0 to 8).
        #[serde(default)]
        tools: u8,
        /// `agent_thinking` events (0 to 8).
        #[serde(default)]
        thinking: u8,
        /// Milliseconds between events.
        #[serde(default = "default_step_ms")]
        step_ms: u64,
    },
    /// Change the user's mode.
    Mode {
        /// The new mode.
        mode: Mode,
    },
}

impl OpKind {
    /// The op's name, as written in plans.
    pub fn name(&self) -> &'static str {
        match self {
            OpKind::Connect { .. } => "connect",
            OpKind::Close { .. } => "close",
            OpKind::Crash { .. } => "crash",
            OpKind::Reconnect { .. } => "reconnect",
            OpKind::Burst { .. } => "burst",
            OpKind::Send {} => "send",
            OpKind::Run { .. } => "run",
            OpKind::Mode { .. } => "mode",
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

fn default_step_ms() -> u64 {
    2
}

/// A plan file or plan that cannot be run. Nothing was run.
#[derive(Debug, Error)]
pub enum PlanError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid plan document.
    #[error("{path}: line {line}, column {column}, at `{field}`: {message}")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// Where in the document, e.g. `ops[3].mode`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The document parsed but describes an impossible run.
    #[error("invalid plan: {0}")]
    Invalid(String),
    /// A plan of an older format that sets what this one no longer has.
    #[error(
        "{path}: a plan of format version {version} that sets `limits.{field}`, which version \
         {PLAN_VERSION} no longer has: {replaced}. Remove the field and set `\"version\": \
         {PLAN_VERSION}`"
    )]
    Outdated {
        /// The file.
        path: String,
        /// The version it declares.
        version: u64,
        /// The field that is gone.
        field: &'static str,
        /// What replaced it.
        replaced: &'static str,
    },
}

impl Plan {
    /// Parses and validates a JSON plan document; `path` names it in errors.
    pub fn from_json(text: &str, path: &str) -> Result<Plan, PlanError> {
        Self::check_format(text, path)?;
        let de = &mut serde_json::Deserializer::from_str(text);
        let plan: Plan = serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            let inner = e.into_inner();
            PlanError::Parse {
                path: path.to_owned(),
                line: inner.line(),
                column: inner.column(),
                field,
                message: strip_position(&inner.to_string()),
            }
        })?;
        plan.validate()?;
        Ok(plan)
    }

    /// Before the typed parse: a version this build does not read, or a field an older
    /// version had, is named as such rather than as an unknown field. A document that is not
    /// JSON is left to the typed parse, which says where.
    fn check_format(text: &str, path: &str) -> Result<(), PlanError> {
        let Ok(doc) = serde_json::from_str::<serde_json::Value>(text) else {
            return Ok(());
        };
        let Some(version) = doc.get("version").and_then(serde_json::Value::as_u64) else {
            return Ok(());
        };
        if !(u64::from(OLDEST_PLAN_VERSION)..=u64::from(PLAN_VERSION)).contains(&version) {
            return Err(PlanError::Invalid(format!(
                "{path}: format version {version} is not supported (this build reads versions \
                 {OLDEST_PLAN_VERSION} to {PLAN_VERSION})"
            )));
        }
        let limits = doc.get("limits");
        for (field, replaced) in REMOVED_LIMITS {
            if limits.and_then(|l| l.get(field)).is_some() {
                return Err(PlanError::Outdated {
                    path: path.to_owned(),
                    version,
                    field,
                    replaced,
                });
            }
        }
        Ok(())
    }

    /// Reads a plan file.
    pub fn load(path: &Path) -> Result<Plan, PlanError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| PlanError::Io {
            path: shown.clone(),
            source,
        })?;
        Plan::from_json(&text, &shown)
    }

    /// The plan as pretty JSON, one op per line.
    ///
    /// Every non-ASCII character is written as a `\u` escape, so ids that look alike (Latin
    /// and Cyrillic letters, precomposed and combining accents) read differently in the file.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{\n");
        let header = serde_json::json!({
            "version": self.version,
            "limits": self.limits,
            "buggify": self.buggify,
            "liveness_bound_ms": self.liveness_bound_ms,
        });
        if let serde_json::Value::Object(fields) = header {
            for (k, v) in fields {
                out.push_str(&format!("  {:?}: {},\n", k, v));
            }
        }
        if let Some(sites) = &self.buggify_sites {
            let sites = serde_json::to_string(sites).expect("sites serialise");
            out.push_str(&format!("  \"buggify_sites\": {sites},\n"));
        }
        if !self.oracle.is_both() {
            let oracle = serde_json::to_string(&self.oracle).expect("an oracle serialises");
            out.push_str(&format!("  \"oracle\": {oracle},\n"));
        }
        if let Some(ms) = self.connect_timeout_ms {
            out.push_str(&format!("  \"connect_timeout_ms\": {ms},\n"));
        }
        if let Some(net) = &self.net {
            let loss = match net.loss_percent {
                0 => String::new(),
                n => format!(", \"loss_percent\": {n}"),
            };
            let nodes = match (net.nodes, net.spread) {
                (1, _) => String::new(),
                (n, false) => format!(", \"nodes\": {n}"),
                (n, true) => format!(", \"nodes\": {n}, \"spread\": true"),
            };
            let deadline = match net.connect_deadline_ms {
                Some(ms) => format!(", \"connect_deadline_ms\": {ms}"),
                None => String::new(),
            };
            out.push_str(&format!(
                "  \"net\": {{\"latency_ms\": {:?}{loss}{nodes}{deadline}, \"faults\": [\n",
                net.latency_ms
            ));
            push_lines(&mut out, &net.faults);
            out.push_str("  ]},\n");
        }
        out.push_str("  \"users\": [\n");
        push_lines(&mut out, &self.users);
        out.push_str("  ],\n  \"ops\": [\n");
        push_lines(&mut out, &self.ops);
        out.push_str("  ]\n}\n");
        ascii_only(out)
    }

    /// Writes the plan as JSON.
    pub fn save(&self, path: &Path) -> Result<(), PlanError> {
        std::fs::write(path, self.to_json()).map_err(|source| PlanError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// Checks everything serde cannot: names, references and bounds.
    pub fn validate(&self) -> Result<(), PlanError> {
        let bad = |m: String| Err(PlanError::Invalid(m));
        if !(OLDEST_PLAN_VERSION..=PLAN_VERSION).contains(&self.version) {
            return bad(format!(
                "version {} is not supported (this build reads versions {OLDEST_PLAN_VERSION} \
                 to {PLAN_VERSION})",
                self.version
            ));
        }
        if self.ops.len() > MAX_OPS {
            return bad(format!("{} ops; at most {MAX_OPS}", self.ops.len()));
        }
        if self.users.len() > MAX_USERS {
            return bad(format!("{} users; at most {MAX_USERS}", self.users.len()));
        }
        if self.connect_timeout_ms == Some(0) {
            return bad(
                "connect_timeout_ms must be at least 1 (leave it out to wait for ever)".into(),
            );
        }
        if self.liveness_bound_ms == 0 {
            return bad(
                "liveness_bound_ms must be at least 1: with no time to drain, every run would be stuck"
                    .into(),
            );
        }
        let mut names = BTreeSet::new();
        for (i, u) in self.users.iter().enumerate() {
            if let Err(e) = UserContext::new(&u.name).and_then(|c| c.with_thread_id(&u.thread)) {
                return bad(format!("users[{i}]: {e}"));
            }
            if !names.insert(u.name.as_str()) {
                return bad(format!("users[{i}]: {:?} is listed twice", u.name));
            }
        }
        for (i, op) in self.ops.iter().enumerate() {
            if !names.contains(op.user.as_str()) {
                return bad(format!("ops[{i}]: user {:?} is not in `users`", op.user));
            }
            if op.at_ms > MAX_AT_MS {
                return bad(format!("ops[{i}]: at_ms {} is past {MAX_AT_MS}", op.at_ms));
            }
            match op.kind {
                OpKind::Burst { n } if !(1..=16).contains(&n) => {
                    return bad(format!("ops[{i}]: burst n must be 1 to 16, not {n}"))
                }
                OpKind::Run {
                    tools,
                    thinking,
                    step_ms,
                } if tools > 8 || thinking > 8 || step_ms > 1_000 => {
                    return bad(format!(
                        "ops[{i}]: run needs tools and thinking at most 8 and step_ms at most 1000"
                    ))
                }
                _ => {}
            }
        }
        if let Some(net) = &self.net {
            let [lo, hi] = net.latency_ms;
            if lo > hi || hi > 1_000 {
                return bad(format!(
                    "net.latency_ms must be [min, max] with min <= max <= 1000, not [{lo}, {hi}]"
                ));
            }
            if net.loss_percent > MAX_LOSS_PERCENT {
                return bad(format!(
                    "net.loss_percent must be at most {MAX_LOSS_PERCENT}, not {}",
                    net.loss_percent
                ));
            }
            if !(1..=MAX_NODES).contains(&net.nodes) {
                return bad(format!(
                    "net.nodes must be 1 to {MAX_NODES}, not {}",
                    net.nodes
                ));
            }
            if net.connect_deadline_ms == Some(0) {
                return bad(
                    "net.connect_deadline_ms must be at least 1 (leave it out to wait for ever)"
                        .to_owned(),
                );
            }
            if net.spread && net.nodes == 1 {
                return bad("net.spread needs net.nodes of 2 or more".to_owned());
            }
            for (i, f) in net.faults.iter().enumerate() {
                let many = match f.kind {
                    NetFaultKind::Pause { node, .. } if node >= net.nodes => {
                        return bad(format!(
                            "net.faults[{i}]: node {node} of {} (nodes count from 0)",
                            net.nodes
                        ));
                    }
                    NetFaultKind::Pause { .. } => false,
                    NetFaultKind::NodeRestart { node } | NetFaultKind::StoreCut { node, .. } => {
                        if node >= net.nodes {
                            return bad(format!(
                                "net.faults[{i}]: node {node} of {} (nodes count from 0)",
                                net.nodes
                            ));
                        }
                        true
                    }
                    NetFaultKind::StoreRestart
                    | NetFaultKind::StoreSlow { .. }
                    | NetFaultKind::StoreFailover { .. }
                    | NetFaultKind::StoreFlush
                    | NetFaultKind::StoreEvict { .. }
                    | NetFaultKind::StoreSilence
                    | NetFaultKind::StoreLiveLate { .. }
                    | NetFaultKind::StorePause { .. } => true,
                    NetFaultKind::Partition { .. } | NetFaultKind::Restart => false,
                };
                if many && net.nodes == 1 {
                    return bad(format!(
                        "net.faults[{i}]: a node or store fault needs net.nodes of 2 or more"
                    ));
                }
                if net.nodes > 1 && f.kind == NetFaultKind::Restart {
                    return bad(format!(
                        "net.faults[{i}]: with many nodes, restart a node (node_restart)"
                    ));
                }
                if let NetFaultKind::StoreCut { ms, .. } = f.kind {
                    if !(1..=10_000).contains(&ms) {
                        return bad(format!(
                            "net.faults[{i}]: a store cut lasts 1 to 10000 ms, not {ms}"
                        ));
                    }
                }
                if let NetFaultKind::StoreFailover { lose } = f.kind {
                    if lose > 1_000 {
                        return bad(format!(
                            "net.faults[{i}]: a failover loses at most 1000 writes a stream, not {lose}"
                        ));
                    }
                }
                if let NetFaultKind::StoreLiveLate { max_ms, ms } = f.kind {
                    if !(1..=10_000).contains(&ms) || !(1..=10_000).contains(&max_ms) {
                        return bad(format!(
                            "net.faults[{i}]: late pushes last 1 to 10000 ms and are held 1 to 10000 ms, not {ms} and {max_ms}"
                        ));
                    }
                }
                if let NetFaultKind::StoreSlow { reply_ms, ms } = f.kind {
                    if !(1..=10_000).contains(&ms) || !(1..=10_000).contains(&reply_ms) {
                        return bad(format!(
                            "net.faults[{i}]: a slow store lasts 1 to 10000 ms and answers 1 to 10000 ms late, not {ms} and {reply_ms}"
                        ));
                    }
                }
                if f.at_ms > MAX_AT_MS {
                    return bad(format!(
                        "net.faults[{i}]: at_ms {} is past {MAX_AT_MS}",
                        f.at_ms
                    ));
                }
                if let NetFaultKind::Partition { ms } = f.kind {
                    if !(1..=10_000).contains(&ms) {
                        return bad(format!(
                            "net.faults[{i}]: a partition lasts 1 to 10000 ms, not {ms}"
                        ));
                    }
                }
                if let NetFaultKind::Pause { ms, .. } | NetFaultKind::StorePause { ms } = f.kind {
                    if !(1..=10_000).contains(&ms) {
                        return bad(format!(
                            "net.faults[{i}]: a pause lasts 1 to 10000 ms, not {ms}"
                        ));
                    }
                }
            }
        }
        let l = &self.limits;
        if l.max_connections_per_user == 0 || l.max_managers == 0 || l.history_capacity == 0 {
            return bad("limits must allow a manager, a connection and a retained message".into());
        }
        if l.history_ttl_ms > MAX_AT_MS {
            return bad(format!("limits.history_ttl_ms must be at most {MAX_AT_MS}"));
        }
        if l.idle_ttl_ms > MAX_AT_MS || self.liveness_bound_ms > MAX_AT_MS {
            return bad(format!(
                "limits.idle_ttl_ms and liveness_bound_ms must be at most {MAX_AT_MS} (one virtual hour)"
            ));
        }
        Ok(())
    }

    /// The ops of each user in the order they run: by `at_ms`, ties in listed order.
    pub fn ops_by_user(&self) -> Vec<Vec<&Op>> {
        let index: std::collections::BTreeMap<&str, usize> = self
            .users
            .iter()
            .enumerate()
            .map(|(i, u)| (u.name.as_str(), i))
            .collect();
        let mut per_user: Vec<Vec<&Op>> = vec![Vec::new(); self.users.len()];
        for op in &self.ops {
            if let Some(&i) = index.get(op.user.as_str()) {
                per_user[i].push(op);
            }
        }
        for ops in &mut per_user {
            ops.sort_by_key(|op| op.at_ms);
        }
        per_user
    }
}

/// JSON text with every non-ASCII character as a `\uXXXX` escape (two, as a surrogate pair,
/// above U+FFFF): the same JSON, readable without trusting how a font draws a letter. Non-ASCII
/// characters only occur inside strings, where the escape means the same character.
fn ascii_only(json: String) -> String {
    if json.is_ascii() {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

fn push_lines<T: Serialize>(out: &mut String, items: &[T]) {
    for (i, item) in items.iter().enumerate() {
        let line = serde_json::to_string(item).unwrap_or_default();
        let comma = if i + 1 < items.len() { "," } else { "" };
        out.push_str(&format!("    {line}{comma}\n"));
    }
}

/// serde_json appends " at line L column C"; the error carries those separately.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_alike_names_are_escaped_in_the_file_and_read_back_the_same() {
        let mut plan = Plan::from_json(SMALL, "small").unwrap();
        let names = ["jos\u{e9}", "jose\u{301}", "\u{440}a", "\u{1f600}"];
        plan.users = names
            .iter()
            .map(|n| UserSpec {
                name: (*n).to_owned(),
                thread: "t1".into(),
            })
            .collect();
        plan.ops.clear();
        let json = plan.to_json();
        assert!(json.is_ascii(), "{json}");
        assert!(json.contains(r#""jos\u00e9""#), "{json}");
        assert!(json.contains(r#""jose\u0301""#), "{json}");
        assert!(json.contains(r#""\ud83d\ude00""#), "{json}");
        assert_eq!(Plan::from_json(&json, "again").unwrap(), plan);
    }

    const SMALL: &str = r#"{
  "version": 1,
  "users": [{"name": "u1", "thread": "t1"}],
  "ops": [
    {"at_ms": 0, "user": "u1", "op": "connect"},
    {"at_ms": 1, "user": "u1", "op": "run", "tools": 2},
    {"at_ms": 2, "user": "u1", "op": "mode", "mode": "isolated"}
  ]
}"#;

    #[test]
    fn a_hand_written_plan_parses_and_round_trips() {
        let plan = Plan::from_json(SMALL, "small.json").unwrap();
        assert_eq!(plan.ops.len(), 3);
        assert_eq!(
            plan.ops[1].kind,
            OpKind::Run {
                tools: 2,
                thinking: 0,
                step_ms: 2
            }
        );
        let again = Plan::from_json(&plan.to_json(), "again.json").unwrap();
        assert_eq!(plan, again);
    }

    /// A snapshot shrunk under one oracle replays under that oracle, and a client's connect
    /// timeout is part of the plan: both are written and read back.
    #[test]
    fn the_oracle_and_the_connect_timeout_round_trip() {
        let mut plan = Plan::from_json(SMALL, "small.json").unwrap();
        plan.oracle = Oracle::BlackBox;
        plan.connect_timeout_ms = Some(25);
        let text = plan.to_json();
        assert!(text.contains("\"oracle\": \"black-box\""), "{text}");
        assert_eq!(Plan::from_json(&text, "again.json").unwrap(), plan);
        plan.connect_timeout_ms = Some(0);
        assert!(
            plan.validate().is_err(),
            "a zero timeout gives up on every connect"
        );
    }

    #[test]
    fn a_network_section_round_trips_and_impossible_networks_are_refused() {
        let net = SMALL.replace(
            "\"version\": 1,",
            r#""version": 1, "net": {"latency_ms": [2, 9], "loss_percent": 3, "faults": [
                {"at_ms": 5, "fault": "partition", "ms": 40}, {"at_ms": 9, "fault": "restart"}]},"#,
        );
        let plan = Plan::from_json(&net, "net.json").unwrap();
        let n = plan.net.as_ref().unwrap();
        assert_eq!(
            (n.latency_ms, n.loss_percent, n.faults.len()),
            ([2, 9], 3, 2)
        );
        assert_eq!(
            Plan::from_json(&plan.to_json(), "again.json").unwrap(),
            plan
        );
        for (bad, why) in [(r#"[9, 2]"#, "min <= max"), (r#"[1, 5000]"#, "1000")] {
            let text = net.replace("[2, 9]", bad);
            let err = Plan::from_json(&text, "p.json").unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
        let lossy = net.replace("\"loss_percent\": 3", "\"loss_percent\": 40");
        let err = Plan::from_json(&lossy, "p.json").unwrap_err().to_string();
        assert!(err.contains("loss_percent"), "{err}");
        let forever = net.replace("\"ms\": 40", "\"ms\": 0");
        let err = Plan::from_json(&forever, "p.json").unwrap_err().to_string();
        assert!(err.contains("net.faults[0]"), "{err}");
        let unknown = net.replace("\"restart\"", "\"meteor\"");
        assert!(matches!(
            Plan::from_json(&unknown, "p.json"),
            Err(PlanError::Parse { .. })
        ));
        let deadline = net.replace("\"loss_percent\": 3", "\"connect_deadline_ms\": 40");
        let plan = Plan::from_json(&deadline, "p.json").unwrap();
        assert_eq!(plan.net.as_ref().unwrap().connect_deadline_ms, Some(40));
        assert_eq!(
            Plan::from_json(&plan.to_json(), "again.json").unwrap(),
            plan
        );
        let at_once = deadline.replace("\"connect_deadline_ms\": 40", "\"connect_deadline_ms\": 0");
        let err = Plan::from_json(&at_once, "p.json").unwrap_err().to_string();
        assert!(err.contains("connect_deadline_ms"), "{err}");
    }

    #[test]
    fn malformed_plans_name_the_line_and_field() {
        let typo = SMALL.replace("\"isolated\"", "\"isolatd\"");
        match Plan::from_json(&typo, "p.json").unwrap_err() {
            PlanError::Parse {
                line,
                field,
                message,
                ..
            } => {
                assert_eq!(line, 7);
                assert_eq!(field, "ops[2]");
                assert!(message.contains("isolatd"), "{message}");
            }
            other => panic!("{other}"),
        }
        let missing = SMALL.replace("\"at_ms\": 1, ", "");
        let err = Plan::from_json(&missing, "p.json").unwrap_err().to_string();
        assert!(err.contains("line 6") && err.contains("at_ms"), "{err}");
        let unknown_user = SMALL.replace(
            "\"user\": \"u1\", \"op\": \"run\"",
            "\"user\": \"u9\", \"op\": \"run\"",
        );
        let err = Plan::from_json(&unknown_user, "p.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("ops[1]") && err.contains("u9"), "{err}");
        assert!(Plan::from_json("", "p.json").is_err());
        assert!(Plan::from_json("[1,2]", "p.json").is_err());
        let bad_user = SMALL.replace("\"name\": \"u1\"", "\"name\": \"\"");
        assert!(Plan::from_json(&bad_user, "p.json").is_err());
        let forever = SMALL.replace(
            "\"version\": 1,",
            "\"version\": 1, \"liveness_bound_ms\": 18446744073709551615,",
        );
        assert!(matches!(
            Plan::from_json(&forever, "p.json"),
            Err(PlanError::Invalid(_))
        ));
    }

    #[test]
    fn a_field_an_op_does_not_take_is_refused_not_ignored() {
        let with = |op: &str, extra: &str| {
            format!(
                r#"{{"version": 1, {extra} "users": [{{"name": "u1", "thread": "t1"}}], "ops": [{op}]}}"#
            )
        };
        for op in [
            r#"{"at_ms": 0, "user": "u1", "op": "send", "text": "hi"}"#,
            r#"{"at_ms": 0, "user": "u1", "op": "connect", "slw": true}"#,
            r#"{"at_ms": 0, "user": "u1", "op": "close", "tabb": 1}"#,
        ] {
            let err = Plan::from_json(&with(op, ""), "p.json").unwrap_err();
            assert!(err.to_string().contains("unknown field"), "{op}: {err}");
        }
        let ok = r#"{"at_ms": 0, "user": "u1", "op": "send"}"#;
        assert!(Plan::from_json(&with(ok, ""), "p.json").is_ok());
        let err = Plan::from_json(&with(ok, r#""liveness_bound_ms": 0,"#), "p.json").unwrap_err();
        assert!(err.to_string().contains("liveness_bound_ms"), "{err}");
    }

    #[test]
    fn an_older_plan_says_what_changed_and_a_newer_one_which_versions_are_read() {
        let old = SMALL.replace(
            "\"version\": 1,",
            r#""version": 1, "limits": {"outbound_capacity": 8, "recovery_capacity": 32},"#,
        );
        match Plan::from_json(&old, "old.json").unwrap_err() {
            PlanError::Outdated { version, field, .. } => {
                assert_eq!((version, field), (1, "outbound_capacity"));
            }
            other => panic!("{other}"),
        }
        let message = Plan::from_json(&old, "old.json").unwrap_err().to_string();
        assert!(
            message.contains("version 1")
                && message.contains("history")
                && message.contains("\"version\": 2"),
            "{message}"
        );
        let recovery_only = SMALL.replace(
            "\"version\": 1,",
            r#""version": 1, "limits": {"recovery_capacity": 32},"#,
        );
        let message = Plan::from_json(&recovery_only, "old.json")
            .unwrap_err()
            .to_string();
        assert!(message.contains("history_capacity"), "{message}");
        // A version 1 plan without them reads as version 2 and keeps its number, so a
        // snapshot's name (a hash of its plan) does not move.
        let plan = Plan::from_json(SMALL, "v1.json").unwrap();
        assert_eq!(plan.version, 1);
        assert!(plan.to_json().contains("\"version\": 1"));
        let v2 = SMALL.replace("\"version\": 1", "\"version\": 2");
        assert_eq!(Plan::from_json(&v2, "v2.json").unwrap().version, 2);
        for future in ["0", "3", "99"] {
            let text = SMALL.replace("\"version\": 1", &format!("\"version\": {future}"));
            let err = Plan::from_json(&text, "f.json").unwrap_err().to_string();
            assert!(
                err.contains(&format!("version {future}")) && err.contains("versions 1 to 2"),
                "{err}"
            );
        }
    }
}
