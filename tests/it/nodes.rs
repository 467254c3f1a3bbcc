//! Many nodes over one shared store ([`MemoryStore`]): one stream per user across nodes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::Receiver;
use wsreg::store::{Appended, MemoryStore, Range, StoreError, StoreFuture, StreamStore};
use wsreg::{
    channel_sink, Backend, Envelope, Epoch, Error, GapReason, Node, NodeConfig, Payload, Position,
    RegistryConfig, UserContext, UserKey,
};

use crate::support::{completed, started};

fn nodes(n: usize, config: NodeConfig) -> (MemoryStore, Vec<Node>) {
    let store = MemoryStore::new(config.bounds());
    let nodes = (0..n)
        .map(|i| {
            let (handle, live) = store.attach();
            let mut config = config.clone();
            config.registry.boot = Some(100 + i as u64);
            Node::new(config, Arc::new(handle), live)
        })
        .collect();
    (store, nodes)
}

async fn tab(node: &Node, who: &UserContext, resume: Option<Position>) -> Receiver<Envelope> {
    let (sink, inbox) = channel_sink(64);
    node.connect(who, Box::new(sink), resume).await.unwrap();
    inbox
}

/// Everything a tab has now, without waiting for more.
async fn drain(tab: &mut Receiver<Envelope>) -> Vec<Envelope> {
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut got = Vec::new();
    while let Ok(env) = tab.try_recv() {
        got.push(env);
    }
    got
}

fn seqs(envs: &[Envelope]) -> Vec<u64> {
    envs.iter().map(Envelope::seq).collect()
}

#[tokio::test]
async fn a_run_through_one_node_reaches_the_users_tabs_on_every_node_once_in_order() {
    let (_store, nodes) = nodes(3, NodeConfig::default());
    let alice = UserContext::new("alice").unwrap();
    let mut on_b = tab(&nodes[1], &alice, None).await;
    let mut on_c = tab(&nodes[2], &alice, None).await;
    let mut positions = Vec::new();
    for event in [started("r1"), completed("r1")] {
        positions.push(nodes[0].emit(&alice, event).await.unwrap());
    }
    let text = nodes[2].send_text(&alice, "from c").await.unwrap();
    positions.push(text);
    let want: Vec<u64> = positions.iter().map(|p| p.seq).collect();
    assert_eq!(
        want,
        vec![1, 2, 3],
        "the store numbers the user's stream across nodes"
    );
    for tab in [&mut on_b, &mut on_c] {
        let got = drain(tab).await;
        assert_eq!(seqs(&got), want);
        assert!(got
            .iter()
            .all(|e| e.epoch() == text.epoch && e.to() == alice.key()));
    }
}

#[tokio::test]
async fn a_tab_resumes_on_another_node_with_nothing_missing_or_doubled() {
    let (_store, nodes) = nodes(2, NodeConfig::default());
    let alice = UserContext::new("alice").unwrap();
    let mut on_a = tab(&nodes[0], &alice, None).await;
    nodes[0].send_text(&alice, "one").await.unwrap();
    let last = drain(&mut on_a).await.pop().unwrap().position();
    drop(on_a); // node A's tab is gone (its node died, say)
    for text in ["two", "three"] {
        nodes[1].send_text(&alice, text).await.unwrap();
    }
    let (sink, mut on_b) = channel_sink(64);
    let resumed = nodes[1]
        .connect(&alice, Box::new(sink), Some(last))
        .await
        .unwrap();
    assert!(
        resumed.recovered,
        "node B's history holds everything after the position"
    );
    let got = drain(&mut on_b).await;
    assert_eq!(seqs(&got), vec![2, 3]);
    assert_eq!(got[0].payload(), &Payload::Text { text: "two".into() });
}

#[tokio::test]
async fn a_position_handed_out_by_another_node_is_never_refused_as_ahead() {
    // On this one-thread runtime node B's live task has not run when the resume arrives, so
    // node B's mirror has not heard of what node A just appended: the resume is checked
    // against the store, not refused.
    let (_store, nodes) = nodes(2, NodeConfig::default());
    let alice = UserContext::new("alice").unwrap();
    let mut on_b = tab(&nodes[1], &alice, None).await;
    let at = nodes[0].send_text(&alice, "one").await.unwrap();
    let (sink, mut again) = channel_sink(64);
    let resumed = nodes[1].connect(&alice, Box::new(sink), Some(at)).await;
    assert!(resumed.unwrap().recovered);
    assert!(
        drain(&mut again).await.is_empty(),
        "nothing after the position"
    );
    assert_eq!(
        seqs(&drain(&mut on_b).await),
        vec![1],
        "and the live copy is skipped"
    );
}

#[tokio::test]
async fn an_event_out_of_lifecycle_order_is_refused_at_the_sender_and_nothing_is_stored() {
    let (_store, nodes) = nodes(2, NodeConfig::default());
    let alice = UserContext::new("alice").unwrap();
    let mut on_b = tab(&nodes[1], &alice, None).await;
    let refused = nodes[0].emit(&alice, completed("r1")).await;
    assert!(matches!(refused, Err(Error::Lifecycle(_))), "{refused:?}");
    nodes[0].emit(&alice, started("r1")).await.unwrap();
    assert!(nodes[0].emit(&alice, started("r1")).await.is_err());
    assert_eq!(seqs(&drain(&mut on_b).await), vec![1]);
}

#[tokio::test]
async fn a_store_that_lost_every_stream_closes_the_tabs_and_their_resume_hears_of_it() {
    let (store, nodes) = nodes(2, NodeConfig::default());
    let alice = UserContext::new("alice").unwrap();
    let mut on_b = tab(&nodes[1], &alice, None).await;
    let before = nodes[0].send_text(&alice, "one").await.unwrap();
    assert_eq!(seqs(&drain(&mut on_b).await), vec![1]);
    store.restart();
    let after = nodes[0].send_text(&alice, "two").await.unwrap();
    assert_ne!(
        after.epoch, before.epoch,
        "a restarted store starts a new epoch"
    );
    // Node B's tab read the old epoch: it is closed, never switched to the new one silently.
    assert!(drain(&mut on_b).await.is_empty());
    assert!(on_b.recv().await.is_none(), "the tab is closed");
    // Its client resumes from its last position and is told the stream it knew is gone.
    let (sink, mut again) = channel_sink(64);
    let resumed = nodes[1]
        .connect(&alice, Box::new(sink), Some(before))
        .await
        .unwrap();
    assert!(!resumed.recovered);
    let got = drain(&mut again).await;
    assert!(matches!(
        got[0].payload(),
        Payload::Gap {
            reason: GapReason::EpochChanged,
            ..
        }
    ));
    assert_eq!(got.last().unwrap().position(), after);
}

#[tokio::test]
async fn a_tab_that_fell_behind_the_stores_history_is_told_what_it_missed() {
    let config = NodeConfig {
        registry: RegistryConfig {
            history_capacity: 3,
            ..Default::default()
        },
        ..Default::default()
    };
    let (_store, nodes) = nodes(2, config);
    let alice = UserContext::new("alice").unwrap();
    let mut on_a = tab(&nodes[0], &alice, None).await;
    nodes[0].send_text(&alice, "one").await.unwrap();
    let last = drain(&mut on_a).await.pop().unwrap().position();
    drop(on_a);
    for i in 2..=8 {
        nodes[0].send_text(&alice, &format!("m{i}")).await.unwrap();
    }
    let (sink, mut on_b) = channel_sink(64);
    let resumed = nodes[1]
        .connect(&alice, Box::new(sink), Some(last))
        .await
        .unwrap();
    assert!(!resumed.recovered);
    let got = drain(&mut on_b).await;
    assert_eq!(
        got[0].payload(),
        &Payload::Gap {
            from: 2,
            to: 5,
            reason: GapReason::Trimmed
        }
    );
    assert_eq!(seqs(&got[1..]), vec![6, 7, 8]);
}

#[tokio::test]
async fn the_per_user_limit_holds_across_nodes_and_a_closed_tab_gives_its_slot_back() {
    let config = NodeConfig {
        registry: RegistryConfig {
            max_connections_per_user: 2,
            ..Default::default()
        },
        ..Default::default()
    };
    let (_store, nodes) = nodes(2, config);
    let alice = UserContext::new("alice").unwrap();
    let (sink, _on_a) = channel_sink(8);
    let first = nodes[0]
        .connect(&alice, Box::new(sink), None)
        .await
        .unwrap();
    let _on_b = tab(&nodes[1], &alice, None).await;
    // Each node holds one tab: a third is refused on either, by the count over both.
    for node in &nodes {
        let (sink, _) = channel_sink(8);
        let refused = node.connect(&alice, Box::new(sink), None).await;
        assert!(
            matches!(refused, Err(Error::UserConnectionLimit { max: 2, .. })),
            "{:?}",
            refused.map(|c| c.conn)
        );
    }
    nodes[0].close(&first.handle).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await; // the lease goes back
    let _again = tab(&nodes[1], &alice, None).await;
}

#[tokio::test]
async fn a_dead_nodes_connections_stop_counting_when_their_leases_run_out() {
    let config = NodeConfig {
        registry: RegistryConfig {
            max_connections_per_user: 1,
            ..Default::default()
        },
        lease: Duration::from_millis(150),
        ..Default::default()
    };
    let (_store, mut nodes) = nodes(2, config);
    let alice = UserContext::new("alice").unwrap();
    let on_a = tab(&nodes[0], &alice, None).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Renewed while node A lives: still counted past one lease.
    let (sink, _) = channel_sink(8);
    let refused = nodes[1].connect(&alice, Box::new(sink), None).await;
    assert!(matches!(refused, Err(Error::UserConnectionLimit { .. })));
    // Node A dies without giving anything back (it stops renewing; its tab is never closed):
    // its lease runs out.
    let node_a = nodes.remove(0);
    drop(node_a);
    tokio::time::sleep(Duration::from_millis(250)).await;
    drop(on_a);
    let _on_b = tab(&nodes[0], &alice, None).await;
}

/// A node's handle on the store that can be cut off from it (every call fails while cut), or
/// whose leases the store takes without ever answering (`mute_leases`).
struct Cuttable {
    store: Arc<dyn StreamStore>,
    cut: AtomicBool,
    mute_leases: AtomicBool,
}

impl Cuttable {
    fn check(&self) -> Result<(), StoreError> {
        if self.cut.load(Ordering::Relaxed) {
            return Err(StoreError::Unavailable("cut off".into()));
        }
        Ok(())
    }
}

impl StreamStore for Cuttable {
    fn append<'a>(
        &'a self,
        user: &'a UserKey,
        idem: &'a str,
        payload: &'a Payload,
        fresh: Epoch,
    ) -> StoreFuture<'a, Appended> {
        Box::pin(async move {
            self.check()?;
            self.store.append(user, idem, payload, fresh).await
        })
    }

    fn read<'a>(
        &'a self,
        user: &'a UserKey,
        after: u64,
        limit: usize,
        fresh: Epoch,
    ) -> StoreFuture<'a, Range> {
        Box::pin(async move {
            self.check()?;
            self.store.read(user, after, limit, fresh).await
        })
    }

    fn subscribe<'a>(&'a self, user: &'a UserKey) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.check()?;
            self.store.subscribe(user).await
        })
    }

    fn unsubscribe<'a>(&'a self, user: &'a UserKey) -> StoreFuture<'a, ()> {
        self.store.unsubscribe(user)
    }

    fn lease<'a>(
        &'a self,
        user: &'a UserKey,
        holder: &'a str,
        limit: u64,
        lease_ms: u64,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            self.check()?;
            let taken = self.store.lease(user, holder, limit, lease_ms).await;
            if self.mute_leases.load(Ordering::Relaxed) {
                std::future::pending::<()>().await;
            }
            taken
        })
    }

    fn release<'a>(&'a self, user: &'a UserKey, holder: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.check()?;
            self.store.release(user, holder).await
        })
    }
}

/// Two nodes over one store, one tab per user, leases of `lease`: node A through a handle that
/// can be cut off (or whose leases go unanswered, with `mute_leases`), node B directly.
fn one_slot_nodes(lease: Duration, mute_leases: bool) -> (Arc<Cuttable>, Node, Node) {
    let config = NodeConfig {
        registry: RegistryConfig {
            max_connections_per_user: 1,
            ..Default::default()
        },
        lease,
        ..Default::default()
    };
    let store = MemoryStore::new(config.bounds());
    let (handle, live) = store.attach();
    let cuttable = Arc::new(Cuttable {
        store: Arc::new(handle),
        cut: AtomicBool::new(false),
        mute_leases: AtomicBool::new(mute_leases),
    });
    let node_a = Node::new(config.clone(), Arc::clone(&cuttable) as _, live);
    let (handle, live) = store.attach();
    let node_b = Node::new(config, Arc::new(handle), live);
    (cuttable, node_a, node_b)
}

#[tokio::test]
async fn a_connection_whose_lease_ran_out_while_its_node_was_cut_off_is_ended() {
    let (cuttable, node_a, node_b) = one_slot_nodes(Duration::from_millis(90), false);
    let alice = UserContext::new("alice").unwrap();
    let mut on_a = tab(&node_a, &alice, None).await;
    // Node A cannot renew for longer than a lease: the slot runs out in the store, and node B
    // may give it to another tab of alice's.
    cuttable.cut.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _on_b = tab(&node_b, &alice, None).await;
    cuttable.cut.store(false, Ordering::Relaxed);
    // Back in touch, node A's renewal is refused (a renewal never takes a slot again), and
    // it ends the tab that lost its slot: one tab over both nodes, as the limit says.
    let ended = tokio::time::timeout(Duration::from_secs(2), async {
        while on_a.recv().await.is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "node A kept serving a tab without a slot");
    assert!(node_a.registry().inspect().connections == 0);
}

#[tokio::test]
async fn a_renewal_after_a_close_does_not_take_the_slot_again() {
    let store = MemoryStore::new(NodeConfig::default().bounds());
    let (handle, _live) = store.attach();
    let alice = UserKey::new("alice").unwrap();
    assert!(handle.lease(&alice, "h1", 1, 1_000).await.unwrap());
    handle.release(&alice, "h1").await.unwrap();
    // A renewal (limit 0) that arrives after the release: refused, and nothing is taken.
    assert!(!handle.lease(&alice, "h1", 0, 1_000).await.unwrap());
    assert!(handle.lease(&alice, "h2", 1, 1_000).await.unwrap());
}

#[tokio::test]
async fn a_connect_dropped_while_the_store_takes_its_slot_gives_the_slot_back() {
    // A lease far longer than the test: only a give-back frees the slot.
    let (_muted, node_a, node_b) = one_slot_nodes(Duration::from_secs(600), true);
    let alice = UserContext::new("alice").unwrap();
    // The store takes alice's one slot for node A's connect, whose caller gives up waiting
    // for the answer (a server's connect timeout) and drops it.
    let (sink, _) = channel_sink(8);
    let gave_up = tokio::time::timeout(
        Duration::from_millis(100),
        node_a.connect(&alice, Box::new(sink), None),
    )
    .await;
    assert!(gave_up.is_err(), "the store never answers node A's lease");
    assert_eq!(node_a.registry().inspect().connections, 0);
    // The slot comes back at once, not when the lease runs out.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (sink, _on_b) = channel_sink(8);
    let again = node_b.connect(&alice, Box::new(sink), None).await;
    assert!(again.is_ok(), "{:?}", again.err());
}
