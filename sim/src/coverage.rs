//! "Sometimes" coverage points: the hard paths a run reached, counted, so that a workload that
//! never reaches them cannot pass silently. A campaign sums them and reports each.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;
use wsreg::{CloseReason, DropReason, RemoveReason};

use crate::trace::{Step, What};

/// Every coverage point, with what it means.
pub const POINTS: [(&str, &str); 12] = [
    (
        "reconnect_replayed",
        "a reconnect received messages held while the user was offline",
    ),
    (
        "held_for_recovery",
        "a message was held because its user had no live connection",
    ),
    (
        "taken_back",
        "a message queued for a closing connection was taken back",
    ),
    ("queue_full", "a slow reader's outbound queue overflowed"),
    ("recovery_full", "a recovery queue overflowed"),
    ("suppressed", "a mode suppressed a message"),
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
    ("limit_refused", "a connect was refused by a limit"),
    ("many_tabs", "a user held three or more connections at once"),
];

/// Hit counts per point.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Coverage {
    /// Point name to hits.
    pub hits: BTreeMap<&'static str, u64>,
    #[serde(skip)]
    idle_keys: BTreeSet<Arc<str>>,
}

impl Coverage {
    fn hit(&mut self, point: &'static str) {
        *self.hits.entry(point).or_insert(0) += 1;
    }

    /// Counts what one step reached.
    pub fn on_step(&mut self, s: &Step) {
        match &s.what {
            What::Enqueued { replay: true, .. } => self.hit("reconnect_replayed"),
            What::Buffered { .. } => self.hit("held_for_recovery"),
            What::Requeued { .. } => self.hit("taken_back"),
            What::Dropped { reason, .. } => match reason {
                DropReason::QueueFull => self.hit("queue_full"),
                DropReason::RecoveryFull => self.hit("recovery_full"),
                DropReason::Suppressed => self.hit("suppressed"),
                _ => {}
            },
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
                if *reason == RemoveReason::Idle {
                    self.hit("manager_reaped");
                }
            }
            What::Refused { action, error } => {
                if *action == "cleanup" {
                    self.hit("stale_cleanup");
                } else if *action == "connect" && error.contains("limit") {
                    self.hit("limit_refused");
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

    /// Hits of one point.
    pub fn get(&self, point: &str) -> u64 {
        self.hits.get(point).copied().unwrap_or(0)
    }

    /// Points never hit.
    pub fn missed(&self) -> Vec<&'static str> {
        POINTS
            .iter()
            .map(|(p, _)| *p)
            .filter(|p| self.get(p) == 0)
            .collect()
    }
}
