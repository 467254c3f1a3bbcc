//! [`SimConfig`]: every knob of a simulated run, with defaults in one place, and the swarm that
//! derives one config per seed.

use std::hash::{Hash, Hasher};
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};
use wsreg::RegistryConfig;

use crate::generate::seed::Seed;

/// Relative weights of the client operations in a generated plan. Zero switches one off.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpWeights {
    /// Open a connection (a tab).
    pub connect: u32,
    /// Close a tab cleanly.
    pub close: u32,
    /// Drop a tab without closing it (a crashed client).
    pub crash: u32,
    /// Send a text message to the user.
    pub send: u32,
    /// Start an agent run (the five events, with tool calls).
    pub run: u32,
    /// Change the user's mode.
    pub mode: u32,
    /// Open several connections at once.
    pub burst: u32,
    /// Close a tab and reconnect in the same millisecond (cleanup racing a reconnect).
    pub reconnect: u32,
}

impl Default for OpWeights {
    fn default() -> Self {
        Self {
            connect: 6,
            close: 3,
            crash: 2,
            send: 4,
            run: 5,
            mode: 1,
            burst: 1,
            reconnect: 2,
        }
    }
}

/// Fault switches.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Some tabs read slowly, so their outbound queues fill.
    pub slow_consumers: bool,
    /// Buggify: extra yields at the harness's await points around every core call.
    pub buggify: bool,
    /// Buggify per site: each seed switches on only some of the sites (each with probability
    /// one half); the others never fire in that seed. Off by default: it found nothing sooner
    /// than buggify everywhere (`cargo sim bench`'s exploration tables).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub buggify_sites: bool,
    /// Client actions start late by a random few milliseconds (reordering them across users).
    pub jitter: bool,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            slow_consumers: true,
            buggify: true,
            buggify_sites: false,
            jitter: true,
        }
    }
}

/// The simulated network, for runs that go through the real WebSocket server.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetConfig {
    /// One-way packet latency, `[min, max]` milliseconds.
    pub latency_ms: [u64; 2],
    /// Percent of packets lost (swarm turns it off for a quarter of the seeds).
    pub loss_percent: u8,
    /// Partitions between the clients and the server per run.
    pub partitions: u32,
    /// Longest partition, in milliseconds.
    pub max_partition_ms: u64,
    /// Server node restarts per run.
    pub restarts: u32,
    /// Server nodes over one simulated store (1: the server on its own).
    #[serde(skip_serializing_if = "is_one")]
    pub nodes: u32,
    /// With many nodes: store restarts (everything lost) per run.
    #[serde(skip_serializing_if = "is_zero")]
    pub store_restarts: u32,
    /// With many nodes: cuts between one node and the store per run.
    #[serde(skip_serializing_if = "is_zero")]
    pub store_cuts: u32,
    /// With many nodes: spells per run in which the store answers every call late.
    #[serde(skip_serializing_if = "is_zero")]
    pub store_slows: u32,
    /// With many nodes: failovers per run to a replica missing each stream's newest writes.
    #[serde(skip_serializing_if = "is_zero")]
    pub store_failovers: u32,
    /// With many nodes: flushes of the running store per run (every stream lost).
    #[serde(skip_serializing_if = "is_zero")]
    pub store_flushes: u32,
    /// With many nodes: evictions per run of one stream's meta record or history.
    #[serde(skip_serializing_if = "is_zero")]
    pub store_evictions: u32,
    /// With many nodes: times per run every store connection goes silent (no pushes, answers
    /// on) until its node notices.
    #[serde(skip_serializing_if = "is_zero")]
    pub store_silences: u32,
    /// With many nodes: spells per run in which the store holds pushes back, out of order.
    #[serde(skip_serializing_if = "is_zero")]
    pub store_live_delays: u32,
    /// Whether swarm gives a quarter of the seeds one fixed latency, so that what is sent
    /// together arrives in the same instant (off only to measure what that finds).
    #[serde(skip_serializing_if = "is_true")]
    pub same_instant: bool,
    /// Whether swarm gives two thirds of the seeds a short history (2 to 8 messages), so that
    /// trims, gap markers and resumes past the history happen in every run of them (off only
    /// to measure what that finds).
    #[serde(skip_serializing_if = "is_true")]
    pub short_history: bool,
    /// Whether swarm gives half the seeds a short server connect timeout, so that connects
    /// the server drops halfway (a stalled store, a slow lookup) happen in every run of them
    /// (off only to measure what that finds).
    #[serde(skip_serializing_if = "is_true")]
    pub connect_deadlines: bool,
    /// The server's connect timeout, in ms (none: it waits as long as the registry takes):
    /// how long the registry may take to accept a connection before the server drops the call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_deadline_ms: Option<u64>,
    /// Pauses of a server node per run (the store's too, with many nodes): what reached the
    /// node meanwhile runs together when it resumes.
    #[serde(skip_serializing_if = "is_zero")]
    pub pauses: u32,
    /// Longest pause, in milliseconds.
    #[serde(skip_serializing_if = "is_default_max_pause")]
    pub max_pause_ms: u64,
    /// With many nodes: a load balancer that sends each connect to the next node in turn,
    /// instead of each user's tabs to one node (sticky).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub spread: bool,
}

impl NetConfig {
    /// Store faults per run, of every kind.
    pub fn store_faults(&self) -> u32 {
        self.store_restarts
            + self.store_cuts
            + self.store_slows
            + self.store_failovers
            + self.store_flushes
            + self.store_evictions
            + self.store_silences
            + self.store_live_delays
    }

    /// Every store fault once per run (what `--nodes` sets): restart, cut, slow spell,
    /// failover, flush, eviction, silence and late pushes.
    pub fn every_store_fault(&mut self) {
        for count in [
            &mut self.store_restarts,
            &mut self.store_cuts,
            &mut self.store_slows,
            &mut self.store_failovers,
            &mut self.store_flushes,
            &mut self.store_evictions,
            &mut self.store_silences,
            &mut self.store_live_delays,
        ] {
            *count = 1;
        }
    }
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_true(b: &bool) -> bool {
    *b
}

/// The longest pause unless a config says otherwise.
pub const MAX_PAUSE_MS: u64 = 50;

fn is_default_max_pause(ms: &u64) -> bool {
    *ms == MAX_PAUSE_MS
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            latency_ms: [1, 10],
            loss_percent: 2,
            partitions: 2,
            max_partition_ms: 300,
            restarts: 1,
            nodes: 1,
            store_restarts: 0,
            store_cuts: 0,
            store_slows: 0,
            store_failovers: 0,
            store_flushes: 0,
            store_evictions: 0,
            store_silences: 0,
            store_live_delays: 0,
            same_instant: true,
            short_history: true,
            connect_deadlines: true,
            connect_deadline_ms: None,
            pauses: 3,
            max_pause_ms: MAX_PAUSE_MS,
            spread: false,
        }
    }
}

/// Highest packet loss a run may ask for: madsim's backoff doubles up to 10 s, so at higher
/// rates one packet can outlast the liveness bound.
pub const MAX_LOSS_PERCENT: u8 = 10;
/// Over many nodes, how long a connection's lease on one of its user's slots lasts in the
/// simulated store unless renewed: a dead node's connections count that long.
pub const NODE_LEASE_MS: u64 = 250;
/// Most server nodes a run may have.
pub const MAX_NODES: u32 = 8;
/// Most users one run (a config, a plan) may hold.
pub const MAX_USERS: usize = 100_000;
/// Most ops one run may hold.
pub const MAX_OPS: usize = 1_000_000;
/// Latest virtual time an op may be at, in ms (one virtual hour).
pub const MAX_AT_MS: u64 = 3_600_000;

/// The registry limits the simulated core runs with (small, so limits are reached).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// `max_managers`.
    pub max_managers: usize,
    /// `max_connections`.
    pub max_connections: usize,
    /// `max_connections_per_user`.
    pub max_connections_per_user: usize,
    /// `history_capacity`.
    pub history_capacity: usize,
    /// `history_ttl`, in milliseconds.
    pub history_ttl_ms: u64,
    /// `idle_ttl`, in milliseconds.
    pub idle_ttl_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_managers: 10_000,
            max_connections: 40_000,
            max_connections_per_user: 4,
            history_capacity: 32,
            history_ttl_ms: 1_500,
            idle_ttl_ms: 300,
        }
    }
}

impl Limits {
    /// The core's configuration.
    pub fn registry_config(&self) -> RegistryConfig {
        RegistryConfig {
            max_managers: self.max_managers,
            max_connections: self.max_connections,
            max_connections_per_user: self.max_connections_per_user,
            history_capacity: self.history_capacity,
            history_ttl: Duration::from_millis(self.history_ttl_ms),
            idle_ttl: Duration::from_millis(self.idle_ttl_ms),
            // Fixed, so a plan replays the same epochs; a restarted server gets another.
            boot: Some(0),
            ..RegistryConfig::default()
        }
    }
}

/// Everything a run is generated from besides the seed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// Simulated users.
    pub users: usize,
    /// Client operations in the plan, across all users.
    pub ops: usize,
    /// Operations start within this many virtual milliseconds.
    pub horizon_ms: u64,
    /// Operation mix.
    pub weights: OpWeights,
    /// Faults.
    pub faults: Faults,
    /// Core limits.
    pub limits: Limits,
    /// Virtual milliseconds the liveness phase may take to drain before the run is `STUCK`.
    pub liveness_bound_ms: u64,
    /// Whether each seed switches some op and fault kinds off and skews the weights (swarm
    /// testing), so that different seeds stress different corners.
    pub swarm: bool,
    /// When set, runs go through the real WebSocket server over a simulated network.
    pub net: Option<NetConfig>,
    /// Whether user ids come in look-alike pairs (case twins, Latin and Cyrillic look-alikes,
    /// NFC and NFD forms, `|`/`_`/`:` separators, a trailing space, long ids differing in the
    /// last byte) rather than `u1..uN`, so key functions that fold, normalise, sanitise, trim
    /// or truncate ids merge two users. Swarm turns it on for half the seeds.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub identity_variants: bool,
    /// Which oracles judge the runs (default: both).
    #[serde(
        default,
        skip_serializing_if = "crate::generate::oracle::Oracle::is_both"
    )]
    pub oracle: crate::generate::oracle::Oracle,
    /// How long a client waits for a connect before it gives up (and tries once more), in
    /// virtual milliseconds; none: it waits for as long as the connect takes. Swarm gives half
    /// the seeds a timeout of 10 to 100 ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout_ms: Option<u64>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            users: 50,
            ops: 400,
            horizon_ms: 2_000,
            weights: OpWeights::default(),
            faults: Faults::default(),
            limits: Limits::default(),
            liveness_bound_ms: 10_000,
            swarm: true,
            net: None,
            identity_variants: false,
            oracle: crate::generate::oracle::Oracle::Both,
            connect_timeout_ms: None,
        }
    }
}

impl SimConfig {
    /// The config one seed runs with: `self` itself, or with swarm on, a per-seed variation in
    /// which each op kind (but `connect` and `run`) and each fault is off with probability 1/4,
    /// every weight is scaled by 1 to 4, one seed in four has room for only half its users'
    /// managers, and one in two has look-alike user ids.
    pub fn for_seed(&self, seed: Seed) -> SimConfig {
        let mut c = self.clone();
        c.swarm = false;
        if !self.swarm {
            return c;
        }
        let mut rng = seed.rng("config");
        let mut skew = |w: &mut u32, may_drop: bool| {
            if may_drop && rng.gen_ratio(1, 4) {
                *w = 0;
            } else {
                *w *= rng.gen_range(1..=4);
            }
        };
        let w = &mut c.weights;
        skew(&mut w.connect, false);
        skew(&mut w.run, false);
        for weight in [
            &mut w.close,
            &mut w.crash,
            &mut w.send,
            &mut w.mode,
            &mut w.burst,
            &mut w.reconnect,
        ] {
            skew(weight, true);
        }
        let f = &mut c.faults;
        for fault in [&mut f.slow_consumers, &mut f.buggify, &mut f.jitter] {
            *fault = *fault && !rng.gen_ratio(1, 4);
        }
        if seed.rng("identities").gen_ratio(1, 2) {
            c.identity_variants = true;
        }
        // A quarter of the seeds run with room for half the users only: connects past it evict
        // idle managers, or are refused when every manager is busy.
        if seed.rng("limits").gen_ratio(1, 4) {
            c.limits.max_managers = c.limits.max_managers.min((c.users / 2).max(1));
        }
        let mut rng = seed.rng("connect-timeout");
        if c.connect_timeout_ms.is_none() && rng.gen_ratio(1, 2) {
            c.connect_timeout_ms = Some(rng.gen_range(10..=100));
        }
        if let Some(net) = &mut c.net {
            let mut rng = seed.rng("net-config");
            for count in [&mut net.partitions, &mut net.restarts] {
                if rng.gen_ratio(1, 4) {
                    *count = 0;
                }
            }
            if rng.gen_ratio(1, 4) {
                net.loss_percent = 0;
            }
            // A quarter of the network seeds send every packet with one fixed latency, so what
            // is sent together arrives together: the narrowest races (two connects of one user
            // inside one await) open through the network too.
            if rng.gen_ratio(1, 4) {
                let [lo, hi] = net.latency_ms;
                let fixed = rng.gen_range(lo..=hi.max(lo));
                if net.same_instant {
                    net.latency_ms = [fixed, fixed];
                }
            }
            // A quarter of the seeds without pauses. A stream of its own, so every other draw
            // is as it was before pauses.
            if seed.rng("pauses-config").gen_ratio(1, 4) {
                net.pauses = 0;
            }
            // Two thirds of the network seeds keep a short history (2 to 8 messages), so that
            // trims, gap markers and resumes past the history happen in every run of them;
            // the other third still resume within a full history thousands of times a campaign.
            let mut rng = seed.rng("history-config");
            if net.short_history && rng.gen_ratio(2, 3) {
                let short = rng.gen_range(2..=8);
                c.limits.history_capacity = c.limits.history_capacity.min(short);
            }
            // Half the network seeds give the registry little time to accept a connect (a
            // lookup; over many nodes, the store's round trips, hence the longer range), so the
            // server drops some connects halfway.
            let mut rng = seed.rng("deadline-config");
            let range = if net.nodes > 1 { 20..=300 } else { 5..=60 };
            if net.connect_deadlines && net.connect_deadline_ms.is_none() && rng.gen_ratio(1, 2) {
                net.connect_deadline_ms = Some(rng.gen_range(range));
            }
            if net.nodes > 1 {
                // A connect through many nodes also subscribes and reads the user's stream from
                // the store (two more round trips): a client gives it 300 ms more.
                if let Some(t) = &mut c.connect_timeout_ms {
                    *t += 300;
                }
                // A stream of its own, so single-node seeds are the same as before.
                let mut rng = seed.rng("nodes-config");
                for count in [&mut net.store_restarts, &mut net.store_cuts] {
                    if rng.gen_ratio(1, 4) {
                        *count = 0;
                    }
                }
                if rng.gen_ratio(1, 4) {
                    net.store_slows = 0;
                }
                // Half the seeds spread every connect over the nodes: one user's tabs then sit
                // on several nodes at once.
                net.spread = net.spread || rng.gen_ratio(1, 2);
                // Drawn last, so that every seed without failovers keeps its config.
                if rng.gen_ratio(1, 4) {
                    net.store_failovers = 0;
                }
                // And the store's later faults after them, for the same reason.
                for count in [
                    &mut net.store_flushes,
                    &mut net.store_evictions,
                    &mut net.store_silences,
                    &mut net.store_live_delays,
                ] {
                    if rng.gen_ratio(1, 4) {
                        *count = 0;
                    }
                }
            }
        }
        c
    }

    /// A short stable hash of the config, printed beside the seed: FNV-1a over its JSON (the
    /// bytes printed beside it), so it never depends on how the toolchain hashes types.
    pub fn hash_hex(&self) -> String {
        let mut h = fnv::FnvHasher::default();
        h.write(
            serde_json::to_string(self)
                .expect("a config serialises")
                .as_bytes(),
        );
        format!("{:08x}", h.finish() as u32)
    }

    /// Checks that the config can run at all.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let problem = if self.users == 0 {
            Some("users must be at least 1")
        } else if self.users > MAX_USERS {
            Some("users must be at most 100,000 (a plan's cap)")
        } else if self.ops > MAX_OPS {
            Some("ops must be at most 1,000,000 (a plan's cap)")
        } else if self.horizon_ms == 0 || self.horizon_ms > MAX_AT_MS {
            Some("horizon_ms must be 1 to 3,600,000")
        } else if self.weights.connect == 0 && self.ops > 0 {
            Some("weights.connect must not be 0")
        } else if self.limits.max_connections_per_user == 0 || self.limits.max_managers == 0 {
            Some("limits must allow at least one manager and one connection per user")
        } else if self.connect_timeout_ms == Some(0) {
            Some("connect_timeout_ms must be at least 1 (leave it out to wait for ever)")
        } else if self.limits.history_capacity == 0 {
            Some("limits.history_capacity must be at least 1")
        } else if self
            .net
            .as_ref()
            .is_some_and(|n| n.latency_ms[0] > n.latency_ms[1] || n.latency_ms[1] > 1_000)
        {
            Some("net.latency_ms must be [min, max] with min <= max <= 1000")
        } else if self.net.as_ref().is_some_and(|n| {
            !(1..=MAX_NODES).contains(&n.nodes)
                || (n.nodes == 1 && (n.store_faults() > 0 || n.spread))
        }) {
            Some("net.nodes must be 1 to 8, and store faults and spread need 2 nodes or more")
        } else if self
            .net
            .as_ref()
            .is_some_and(|n| !(1..=10_000).contains(&n.max_partition_ms))
        {
            Some("net.max_partition_ms must be 1 to 10,000")
        } else if self
            .net
            .as_ref()
            .is_some_and(|n| n.partitions > 1_000 || n.restarts > 1_000 || n.pauses > 1_000)
        {
            Some("net.partitions, net.restarts and net.pauses must be at most 1,000")
        } else if self
            .net
            .as_ref()
            .is_some_and(|n| !(1..=10_000).contains(&n.max_pause_ms))
        {
            Some("net.max_pause_ms must be 1 to 10,000")
        } else if self
            .net
            .as_ref()
            .is_some_and(|n| n.loss_percent > MAX_LOSS_PERCENT)
        {
            Some("net.loss_percent must be at most 10 (madsim's retransmit backoff reaches 10 s)")
        } else if self
            .net
            .as_ref()
            .is_some_and(|n| n.connect_deadline_ms == Some(0))
        {
            Some("net.connect_deadline_ms must be at least 1 (leave it out to wait for ever)")
        } else {
            None
        };
        match problem {
            Some(p) => Err(ConfigError(p.to_owned())),
            None => Ok(()),
        }
    }
}

/// A config that cannot run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("impossible config: {0}")]
pub struct ConfigError(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swarm_is_a_function_of_the_seed() {
        let base = SimConfig::default();
        assert_eq!(base.for_seed(Seed(3)), base.for_seed(Seed(3)));
        let distinct: std::collections::BTreeSet<String> =
            (0..20).map(|s| base.for_seed(Seed(s)).hash_hex()).collect();
        assert!(distinct.len() > 10);
        assert!((0..20).all(|s| base.for_seed(Seed(s)).weights.connect > 0));
    }

    #[test]
    fn impossible_configs_are_refused() {
        let c = SimConfig {
            users: 0,
            ..Default::default()
        };
        assert!(c.validate().is_err());
        assert!(SimConfig::default().validate().is_ok());
    }
}
