//! Two nodes over one real Redis are one service.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::Receiver;
use wsreg::store::redis::RedisStore;
use wsreg::{channel_sink, Backend, Envelope, GapReason, Node, NodeConfig, Payload, UserContext};

use crate::server::RedisServer;

/// A node over the Redis of `server`, proposing epochs under `boot`.
pub(crate) async fn node(server: &RedisServer, boot: u64) -> Node {
    let mut config = NodeConfig::default();
    config.registry.boot = Some(boot);
    let (store, live) = RedisStore::connect(&server.url(), config.bounds())
        .await
        .expect("redis answers");
    Node::new(config, Arc::new(store), live)
}

/// The next `n` envelopes a tab gets, waiting up to 5 s for each.
async fn next(tab: &mut Receiver<Envelope>, n: usize) -> Vec<Envelope> {
    let mut got = Vec::new();
    for _ in 0..n {
        let env = tokio::time::timeout(Duration::from_secs(5), tab.recv()).await;
        got.push(env.expect("in time").expect("open"));
    }
    got
}

#[tokio::test]
async fn tabs_on_two_nodes_read_one_stream_and_resume_on_either() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let (a, b) = (node(&server, 1).await, node(&server, 2).await);
    let alice = UserContext::new("alice").unwrap();
    let (sink, mut on_a) = channel_sink(64);
    a.connect(&alice, Box::new(sink), None).await.unwrap();
    let (sink, mut on_b) = channel_sink(64);
    b.connect(&alice, Box::new(sink), None).await.unwrap();

    let one = a.send_text(&alice, "one").await.unwrap();
    let two = b.send_text(&alice, "two").await.unwrap();
    assert_eq!((one.seq, two.seq, one.epoch), (1, 2, two.epoch));
    for tab in [&mut on_a, &mut on_b] {
        let got: Vec<_> = next(tab, 2).await.iter().map(Envelope::position).collect();
        assert_eq!(got, vec![one, two]);
    }

    // Node A's tab goes away; what is sent meanwhile is read on node B after its position.
    drop(on_a);
    let three = a.send_text(&alice, "three").await.unwrap();
    let (sink, mut again) = channel_sink(64);
    let resumed = b.connect(&alice, Box::new(sink), Some(two)).await.unwrap();
    assert!(resumed.recovered);
    let got = next(&mut again, 1).await;
    assert_eq!(got[0].position(), three);
    assert_eq!(
        got[0].payload(),
        &Payload::Text {
            text: "three".into()
        }
    );
    assert_eq!(next(&mut on_b, 1).await[0].position(), three);
}

#[tokio::test]
async fn a_redis_restarted_empty_closes_the_tabs_and_their_resume_is_told_of_the_loss() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let (a, b) = (node(&server, 1).await, node(&server, 2).await);
    let alice = UserContext::new("alice").unwrap();
    let (sink, mut on_b) = channel_sink(64);
    b.connect(&alice, Box::new(sink), None).await.unwrap();
    let before = a.send_text(&alice, "one").await.unwrap();
    assert_eq!(next(&mut on_b, 1).await[0].position(), before);

    server.restart();
    // The nodes reconnect by themselves; until then a send may fail (and says so).
    let mut after = None;
    for _ in 0..100 {
        if let Ok(at) = a.send_text(&alice, "two").await {
            after = Some(at);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = after.expect("node A appends again once Redis is back");
    assert_ne!(after.epoch, before.epoch);
    // Node B's tab read the old epoch: it is closed, never switched to the new one silently.
    let closed = tokio::time::timeout(Duration::from_secs(10), on_b.recv()).await;
    assert!(matches!(closed, Ok(None)), "{closed:?}");
    // Its client resumes and is told the stream it knew is gone. A resume may still reach
    // node B's old mirror before node B read the store again; that tab is closed in turn, and
    // the client resumes once more.
    let mut told = None;
    for _ in 0..50 {
        let (sink, mut again) = channel_sink(64);
        let resumed = b
            .connect(&alice, Box::new(sink), Some(before))
            .await
            .unwrap();
        let first = tokio::time::timeout(Duration::from_secs(5), again.recv()).await;
        if let Ok(Some(first)) = first {
            assert!(!resumed.recovered);
            let second = next(&mut again, 1).await.remove(0);
            told = Some(vec![first, second]);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = told.expect("a resume is served once node B follows the new stream");
    assert!(
        matches!(
            got[0].payload(),
            Payload::Gap {
                reason: GapReason::EpochChanged,
                ..
            }
        ),
        "{got:?}"
    );
    assert_eq!(got[1].position(), after);
}

#[tokio::test]
async fn a_redis_lost_while_serving_never_acknowledges_a_send_and_closes_the_tabs_to_resume() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let (a, b) = (node(&server, 1).await, node(&server, 2).await);
    let alice = UserContext::new("alice").unwrap();
    let (sink, mut on_b) = channel_sink(64);
    b.connect(&alice, Box::new(sink), None).await.unwrap();
    let seen = a.send_text(&alice, "one").await.unwrap();
    assert_eq!(next(&mut on_b, 1).await[0].position(), seen);

    server.stop();
    let refused = a.send_text(&alice, "two").await;
    assert!(
        matches!(refused, Err(wsreg::Error::Store(_))),
        "{refused:?}"
    );
    // Node B cannot read the stream any more: its tab is closed (within the ~3 s of tries),
    // so its client resumes later rather than wait on a stream nobody follows.
    let closed = tokio::time::timeout(Duration::from_secs(10), on_b.recv()).await;
    assert!(matches!(closed, Ok(None)), "{closed:?}");

    // Redis comes back empty: the resume from the last position read is told of the loss.
    server.restart();
    let (sink, mut again) = channel_sink(64);
    let mut resumed = None;
    let mut sink = Some(sink);
    for _ in 0..100 {
        let Some(s) = sink.take() else { break };
        match b.connect(&alice, Box::new(s), Some(seen)).await {
            Ok(c) => {
                resumed = Some(c);
                break;
            }
            Err(_) => {
                let (s, rx) = channel_sink(64);
                sink = Some(s);
                again = rx;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    let resumed = resumed.expect("node B serves again once Redis is back");
    assert!(!resumed.recovered);
    let got = next(&mut again, 1).await;
    assert!(
        matches!(
            got[0].payload(),
            Payload::Gap {
                reason: GapReason::EpochChanged,
                ..
            }
        ),
        "{got:?}"
    );
}

#[tokio::test]
async fn a_node_whose_redis_goes_silent_closes_its_tabs_instead_of_starving_them() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    // Node B reaches Redis through a proxy that will go silent: its connections stay open,
    // and nothing reaches them any more.
    let proxy = crate::proxy::Proxy::start(server.port).await;
    let a = node(&server, 1).await;
    let mut config = NodeConfig::default();
    config.registry.boot = Some(2);
    let url = format!("redis://127.0.0.1:{}/", proxy.port);
    let (store, live) = RedisStore::connect(&url, config.bounds()).await.unwrap();
    let b = Node::new(config, Arc::new(store), live);
    let alice = UserContext::new("alice").unwrap();
    let (sink, mut on_b) = channel_sink(64);
    b.connect(&alice, Box::new(sink), None).await.unwrap();
    let one = a.send_text(&alice, "one").await.unwrap();
    assert_eq!(next(&mut on_b, 1).await[0].position(), one);

    proxy.go_silent();
    a.send_text(&alice, "two").await.unwrap();
    // Node B's subscription hears nothing: its probe notices, and the tab is closed so that
    // its client resumes elsewhere, instead of waiting for ever on a stream nobody follows.
    let closed = tokio::time::timeout(Duration::from_secs(30), on_b.recv()).await;
    assert!(matches!(closed, Ok(None)), "{closed:?}");
}
