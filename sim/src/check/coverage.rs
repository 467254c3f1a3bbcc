//! "Sometimes" coverage points: the hard paths a run reached, counted, so that a workload that
//! never reaches them cannot pass silently. A campaign sums them and reports each.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;
use wsreg::{CloseReason, RemoveReason};

use crate::check::trace::{Step, What};
use crate::generate::sites::SITES;

/// Every coverage point, with what it means.
pub const POINTS: [(&str, &str); 13] = [
    (
        "resumed_recovered",
        "a tab resumed after its client's last position and the history held all it missed",
    ),
    (
        "resumed_with_gap",
        "a tab resumed past what the history held and was told with a gap marker first",
    ),
    (
        "epoch_changed",
        "a tab resumed from a stream that is gone (reaped, or a restarted server)",
    ),
    (
        "caught_up_past_a_gap",
        "a reading tab fell behind the history and was told what it lost with a gap marker",
    ),
    ("history_trimmed", "a history let go of messages"),
    ("suppressed", "a mode refused a message"),
    (
        "transport_failed",
        "a crashed tab was noticed by a failed send",
    ),
    (
        "stale_cleanup",
        "a deferred cleanup found its connection already gone",
    ),
    (
        "reconnect_same_manager",
        "a user came back within the TTL and kept its manager",
    ),
    ("manager_reaped", "an idle manager was reaped after its TTL"),
    (
        "manager_evicted",
        "a new user at the manager limit evicted the manager idle longest",
    ),
    ("limit_refused", "a connect was refused by a limit"),
    ("many_tabs", "a user held three or more connections at once"),
];

/// How a refusal reads when the server dropped a connect its registry had not accepted within
/// the server's connect timeout (the network client writes it, coverage looks for it).
pub const CONNECT_DEADLINE_MARK: &str = "connect deadline passed: ";

/// The points only a run through the server over the simulated network can reach.
pub const NET_POINTS: [(&str, &str); 6] = [
    (
        "restart_dropped_tabs",
        "a server restart dropped open tabs and their registry",
    ),
    (
        "back_after_restart",
        "a user connected again to the restarted server",
    ),
    (
        "connect_across_partition",
        "a connect made during a partition got through after it healed",
    ),
    (
        "frame_after_close",
        "a frame was read after its connection was removed",
    ),
    (
        "connect_given_up",
        "a client gave up on a slow connect (and tried once more)",
    ),
    (
        "node_paused",
        "a server node stopped running for a while, then ran what had reached it",
    ),
];

/// The points only a run over many nodes and a store can reach.
pub const NODE_POINTS: [(&str, &str); 11] = [
    (
        "node_restarted",
        "a server node was killed with tabs open, and started again",
    ),
    (
        "store_restarted",
        "the store lost every stream and started again",
    ),
    (
        "store_cut",
        "a server node was cut off from the store, and healed",
    ),
    (
        "store_slow",
        "the store answered every call late for a while, and then at once again",
    ),
    (
        "store_failover",
        "the store failed over to a replica missing the newest writes",
    ),
    ("store_flush", "the store forgot every stream while running"),
    (
        "store_evict",
        "the store evicted a stream's meta record or its history",
    ),
    (
        "store_silent",
        "every store connection stopped getting pushes while answering on",
    ),
    (
        "store_live_late",
        "the store held pushes back, out of order and behind reads, and then pushed at once again",
    ),
    (
        "store_paused",
        "the store stopped running for a while, then answered what it had been asked",
    ),
    (
        "connect_deadline",
        "the server dropped a connect its registry had not accepted within the connect timeout",
    ),
];

/// Only the in-process mode plays a deferred cleanup (a real server notices a dead socket).
const IN_PROCESS_ONLY: [&str; 2] = ["stale_cleanup", "buggify_cleanup"];

/// The buggify sites' points (a campaign that never fires one has never stressed it).
fn site_points() -> impl Iterator<Item = (&'static str, &'static str)> {
    SITES.iter().map(|(_, point, meaning)| (*point, *meaning))
}

/// The points a campaign in this mode should reach, with their meanings.
pub fn points(network: bool) -> impl Iterator<Item = (&'static str, &'static str)> {
    let net: &[(&str, &str)] = if network { &NET_POINTS } else { &[] };
    POINTS
        .into_iter()
        .chain(site_points())
        .filter(move |(p, _)| !(network && IN_PROCESS_ONLY.contains(p)))
        .chain(net.iter().copied())
}

/// Hit counts per point.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Coverage {
    /// Point name to hits.
    pub hits: BTreeMap<&'static str, u64>,
    #[serde(skip)]
    idle_keys: BTreeSet<Arc<str>>,
    /// What the network points need; absent in process, where it would only cost steps time.
    #[serde(skip)]
    net: Option<Box<NetTracking>>,
}

/// The state behind [`NET_POINTS`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct NetTracking {
    /// Connections open now, and those removed (their ids are reused after a restart, which
    /// clears both).
    open: usize,
    removed: BTreeSet<u64>,
    /// Users that had connected before the last restart, and since it.
    before_restart: BTreeSet<Arc<str>>,
    connected: BTreeSet<Arc<str>>,
    /// Users whose connect began during a partition, while one is in force.
    cut: Option<BTreeSet<Arc<str>>>,
    waiting_out_cut: BTreeSet<Arc<str>>,
}

fn hit(hits: &mut BTreeMap<&'static str, u64>, point: &'static str) {
    *hits.entry(point).or_insert(0) += 1;
}

impl NetTracking {
    fn on_step(&mut self, s: &Step, hits: &mut BTreeMap<&'static str, u64>) {
        match &s.what {
            What::ConnAdded { .. } => self.open += 1,
            What::ConnRemoved { .. } => {
                self.open = self.open.saturating_sub(1);
                self.removed.extend(s.conn);
            }
            What::Received { .. } if s.conn.is_some_and(|c| self.removed.contains(&c)) => {
                hit(hits, "frame_after_close");
            }
            What::ServerDown => {
                if self.open > 0 {
                    hit(hits, "restart_dropped_tabs");
                }
                self.open = 0;
                self.removed.clear();
                self.before_restart.append(&mut self.connected);
            }
            What::Partition { .. } => {
                self.cut.get_or_insert_with(BTreeSet::new);
            }
            What::Healed => {
                if let Some(mut users) = self.cut.take() {
                    self.waiting_out_cut.append(&mut users);
                }
            }
            What::GaveUp { .. } => hit(hits, "connect_given_up"),
            What::Refused { error, .. } if error.contains(CONNECT_DEADLINE_MARK) => {
                hit(hits, "connect_deadline");
            }
            What::NodeDown { .. } => hit(hits, "node_restarted"),
            What::StoreRestarted => hit(hits, "store_restarted"),
            What::StoreHealed { .. } => hit(hits, "store_cut"),
            What::StorePrompt => hit(hits, "store_slow"),
            What::StoreFailedOver { .. } => hit(hits, "store_failover"),
            What::StoreFlushed => hit(hits, "store_flush"),
            What::StoreEvicted { key: Some(_), .. } => hit(hits, "store_evict"),
            What::StoreSilenced => hit(hits, "store_silent"),
            What::StoreLiveOnTime => hit(hits, "store_live_late"),
            What::Resumed { node: Some(_) } => hit(hits, "node_paused"),
            What::Resumed { node: None } => hit(hits, "store_paused"),
            What::Connect { .. } => {
                if let Some(users) = &mut self.cut {
                    users.insert(s.user.clone());
                }
            }
            What::Connected { .. } => {
                if self.waiting_out_cut.remove(&s.user) {
                    hit(hits, "connect_across_partition");
                }
                if self.before_restart.remove(&s.user) {
                    hit(hits, "back_after_restart");
                }
                self.connected.insert(s.user.clone());
            }
            _ => {}
        }
    }
}

impl Coverage {
    /// Coverage of a run over the network: [`NET_POINTS`] are counted too.
    pub fn network() -> Self {
        Self {
            net: Some(Box::default()),
            ..Self::default()
        }
    }

    pub(crate) fn hit(&mut self, point: &'static str) {
        hit(&mut self.hits, point);
    }

    /// Counts what one step reached.
    pub fn on_step(&mut self, s: &Step) {
        if let Some(net) = &mut self.net {
            net.on_step(s, &mut self.hits);
        }
        match &s.what {
            What::ConnRemoved { reason, live } => {
                if *reason == CloseReason::TransportFailed {
                    self.hit("transport_failed");
                }
                if *live == 0 {
                    self.idle_keys.insert(s.user.clone());
                }
            }
            What::ConnAdded { live } => {
                if *live == 1 && self.idle_keys.remove(&s.user) {
                    self.hit("reconnect_same_manager");
                }
                if *live >= 3 {
                    self.hit("many_tabs");
                }
            }
            What::ManagerRemoved(reason) => {
                self.idle_keys.remove(&s.user);
                match reason {
                    RemoveReason::Idle => self.hit("manager_reaped"),
                    RemoveReason::Evicted => self.hit("manager_evicted"),
                    RemoveReason::Shutdown => {}
                }
            }
            What::Trimmed { .. } => self.hit("history_trimmed"),
            // A restart forgets every manager, so nobody comes back to the same one.
            What::ServerDown => self.idle_keys.clear(),
            What::Refused { action, error } => {
                if *action == "cleanup" {
                    self.hit("stale_cleanup");
                } else if *action == "connect" && error.contains("limit") {
                    self.hit("limit_refused");
                } else if *action == "send" && error.contains("refuses") {
                    self.hit("suppressed");
                }
            }
            _ => {}
        }
    }

    /// Adds another run's hits.
    pub fn merge(&mut self, other: &Coverage) {
        for (k, v) in &other.hits {
            *self.hits.entry(k).or_insert(0) += v;
        }
    }

    /// Adds hits reported by name (from a worker process); names of no known point are
    /// ignored.
    pub fn add_named(&mut self, name: &str, hits: u64) {
        let known = POINTS
            .into_iter()
            .chain(site_points())
            .chain(NET_POINTS)
            .chain(NODE_POINTS)
            .find(|(p, _)| *p == name);
        if let Some((point, _)) = known {
            *self.hits.entry(point).or_insert(0) += hits;
        }
    }

    /// Hits of one point.
    pub fn get(&self, point: &str) -> u64 {
        self.hits.get(point).copied().unwrap_or(0)
    }

    /// Points of this mode never hit.
    pub fn missed(&self, network: bool) -> Vec<&'static str> {
        points(network)
            .map(|(p, _)| p)
            .filter(|p| self.get(p) == 0)
            .collect()
    }
}
