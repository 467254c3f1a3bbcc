//! The disconnect benchmark over many nodes: one fault of the nodes or of their store, played
//! once at half time while every client goes on being disconnected by force, so its table
//! shows, per fault, what the clients were told and what they were not.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::run::backend::Network;

/// A fault a run over many nodes plays once, at half time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// Nothing: clients are only disconnected by force.
    #[default]
    None,
    /// Server node 0 is killed, and started again 500 ms later: its tabs drop.
    NodeKilled,
    /// Server node 0 cannot reach the store for 2 s.
    StoreCut,
    /// The store answers every call 600 ms late for 2 s (past the nodes' timeout).
    SlowStore,
    /// The store restarts empty (no persistence).
    StoreRestart,
    /// The store fails over to a replica missing each stream's newest 3 writes.
    StoreFailover,
    /// The store forgets every stream while running (`FLUSHALL`).
    StoreFlush,
    /// The store evicts the meta record of one stream in ten and the history of another.
    StoreEviction,
    /// Every store connection stops getting pushes while it goes on answering.
    StoreSilence,
    /// For 5 s the store holds each push back up to 300 ms, out of order.
    LatePushes,
}

impl Fault {
    /// Every fault, in the table's order (`None` first).
    pub const ALL: [Fault; 10] = [
        Fault::None,
        Fault::NodeKilled,
        Fault::StoreCut,
        Fault::SlowStore,
        Fault::StoreRestart,
        Fault::StoreFailover,
        Fault::StoreFlush,
        Fault::StoreEviction,
        Fault::StoreSilence,
        Fault::LatePushes,
    ];

    /// Its name in the table (as on the command line).
    pub fn label(self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::NodeKilled => "node-killed",
            Fault::StoreCut => "store-cut",
            Fault::SlowStore => "slow-store",
            Fault::StoreRestart => "store-restart",
            Fault::StoreFailover => "store-failover",
            Fault::StoreFlush => "store-flush",
            Fault::StoreEviction => "store-eviction",
            Fault::StoreSilence => "store-silence",
            Fault::LatePushes => "late-pushes",
        }
    }

    /// Plays the fault on `net` now, over a run of `users` users; returns when it is over.
    pub(crate) async fn play(self, net: &Arc<dyn Network>, users: usize) {
        match self {
            Fault::None => {}
            Fault::NodeKilled => {
                net.kill_node(0);
                tokio::time::sleep(Duration::from_millis(500)).await;
                net.start_node(0);
            }
            Fault::StoreCut => {
                net.cut_store(0, true);
                tokio::time::sleep(Duration::from_secs(2)).await;
                net.cut_store(0, false);
            }
            Fault::SlowStore => {
                net.slow_store(600);
                tokio::time::sleep(Duration::from_secs(2)).await;
                net.slow_store(0);
            }
            Fault::StoreRestart => {
                net.kill_store();
                tokio::time::sleep(Duration::from_millis(20)).await;
                net.start_store();
            }
            Fault::StoreFailover => {
                net.fail_over_store(3);
                tokio::time::sleep(Duration::from_millis(20)).await;
                net.start_store();
            }
            Fault::StoreFlush => net.flush_store(),
            Fault::StoreEviction => {
                for i in (0..users).step_by(10) {
                    let i = u32::try_from(i).unwrap_or(u32::MAX);
                    net.evict_in_store(i, false);
                    net.evict_in_store(i.saturating_add(5), true);
                }
            }
            Fault::StoreSilence => net.silence_store(),
            Fault::LatePushes => {
                net.delay_live(300);
                tokio::time::sleep(Duration::from_secs(5)).await;
                net.delay_live(0);
            }
        }
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}
