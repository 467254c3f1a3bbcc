//! Redis losing data under real nodes, each fault produced for real on a `redis-server`
//! process: `FLUSHALL` while serving, and eviction under a small `maxmemory`. A client that
//! keeps resuming from the last position it read is judged by the promise: it is never told
//! `recovered` when anything after its position was lost, never reads two messages at one
//! position of one epoch, and never misses one without a gap marker that covers it.

use std::collections::BTreeMap;
use std::time::Duration;

use wsreg::{channel_sink, Backend, Node, Payload, Position, UserContext};

use crate::nodes::node;
use crate::server::RedisServer;

/// What the senders were told: the message at each position.
type Ledger = BTreeMap<Position, String>;

/// Sends `n` texts for `ctx` through `node`, each recorded where it was told it is; a send
/// the store refused is not recorded (and was not acknowledged).
async fn send(node: &Node, ctx: &UserContext, tag: &str, n: usize, ledger: &mut Ledger) {
    for i in 0..n {
        let text = format!("{tag}-{i}-{}", "x".repeat(400));
        if let Ok(at) = node.send_text(ctx, &text).await {
            assert!(
                ledger.insert(at, text).is_none(),
                "two sends were told one position: {at}"
            );
        }
    }
}

/// What a judged client saw.
#[derive(Debug, Default)]
struct Seen {
    /// Resumes honoured in full, and not.
    recovered: usize,
    told: usize,
    /// Gap markers, by reason (`epoch_changed`, `trimmed`).
    gaps: BTreeMap<String, usize>,
    /// Messages read.
    messages: usize,
}

/// A client of `ctx` that read up to `from`: it resumes from its last position on `node`,
/// reads until nothing comes for 300 ms, and resumes again whenever its connection is closed,
/// at most `tries` times. Panics on any break of the promise against `ledger` (the messages
/// acknowledged after `from` in its epoch, and at every position it reads).
async fn resume_judged(node: &Node, ctx: &UserContext, from: Position, ledger: &Ledger) -> Seen {
    let mut seen = Seen::default();
    let mut last = from;
    // Positions of `from`'s epoch the client must read or be told it cannot.
    let mut owed: Vec<Position> = ledger
        .range(from..)
        .map(|(p, _)| *p)
        .filter(|p| p.epoch == from.epoch && p.seq > from.seq)
        .collect();
    for _ in 0..20 {
        let (sink, mut tab) = channel_sink(1024);
        let connected = match node.connect(ctx, Box::new(sink), Some(last)).await {
            Ok(c) => c,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let mut first = true;
        let mut closed = false;
        loop {
            let env = match tokio::time::timeout(Duration::from_millis(300), tab.recv()).await {
                Ok(Some(env)) => env,
                Ok(None) => {
                    closed = true;
                    break;
                }
                Err(_) => break,
            };
            let at = env.position();
            match env.payload() {
                Payload::Gap {
                    from: lo,
                    to,
                    reason,
                } => {
                    assert!(
                        !(first && connected.recovered),
                        "told recovered from {last}, then a gap {lo}..{to} ({reason:?})"
                    );
                    *seen.gaps.entry(format!("{reason:?}")).or_default() += 1;
                    // What the marker covers is told, and owed no more: another epoch's
                    // marker covers all of the old one.
                    let old = last.epoch;
                    owed.retain(|p| {
                        if at.epoch == old {
                            !(*lo..=*to).contains(&p.seq)
                        } else {
                            p.epoch != old
                        }
                    });
                    last = Position::new(at.epoch, *to);
                }
                Payload::Text { text } => {
                    assert_eq!(
                        at,
                        Position::new(last.epoch, last.seq + 1),
                        "a message read after {last} with nothing told between"
                    );
                    if let Some(sent) = ledger.get(&at) {
                        assert_eq!(sent, text, "two messages at {at}");
                    }
                    owed.retain(|p| *p != at);
                    seen.messages += 1;
                    last = at;
                }
                other => panic!("an unexpected payload {other:?}"),
            }
            if first {
                if connected.recovered {
                    seen.recovered += 1;
                } else {
                    seen.told += 1;
                }
            }
            first = false;
        }
        if !closed {
            break;
        }
    }
    assert!(
        owed.is_empty(),
        "acknowledged after {from}, never read and never told: {owed:?}"
    );
    seen
}

#[tokio::test]
async fn flushall_while_serving_is_told_to_every_resuming_client_and_nothing_is_read_twice() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let (a, b) = (node(&server, 1).await, node(&server, 2).await);
    let alice = UserContext::new("alice").unwrap();
    // Node B follows alice's stream (a tab of hers is there).
    let (sink, mut on_b) = channel_sink(1024);
    b.connect(&alice, Box::new(sink), None).await.unwrap();
    let mut ledger = Ledger::new();
    send(&a, &alice, "before", 5, &mut ledger).await;
    let read_to = *ledger.keys().nth(1).unwrap();

    server.command(&["FLUSHALL"]);
    send(&a, &alice, "after", 3, &mut ledger).await;
    let epochs: std::collections::BTreeSet<_> = ledger.keys().map(|p| p.epoch).collect();
    assert_eq!(epochs.len(), 2, "the flush starts a new epoch: {ledger:?}");
    // Node B's tab read the old epoch: it is closed, never moved on silently.
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(10), on_b.recv()).await {
            Ok(Some(_)) => continue,
            other => break other,
        }
    };
    assert!(matches!(closed, Ok(None)), "{closed:?}");

    // A client that had read two messages resumes on either node, and on a node that never
    // held the stream: each is told the loss and reads the new epoch once.
    let c = node(&server, 3).await;
    for on in [&a, &b, &c] {
        let seen = resume_judged(on, &alice, read_to, &ledger).await;
        assert_eq!(seen.recovered, 0, "{seen:?}");
        assert!(seen.gaps.contains_key("EpochChanged"), "{seen:?}");
        assert_eq!(seen.messages, 3, "{seen:?}");
    }
}

#[tokio::test]
async fn evictions_under_maxmemory_are_told_and_never_taken_for_a_whole_stream() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let a = node(&server, 1).await;
    let used: u64 = server
        .command(&["INFO", "memory"])
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory");
    // Room for about half of what is sent: Redis evicts keys at random to make room.
    let max = (used + 300_000).to_string();
    server.command(&["CONFIG", "SET", "maxmemory-policy", "allkeys-random"]);
    server.command(&["CONFIG", "SET", "maxmemory", &max]);
    let users: Vec<UserContext> = (0..40)
        .map(|i| UserContext::new(&format!("user{i}")).unwrap())
        .collect();
    let mut ledgers: Vec<Ledger> = vec![Ledger::new(); users.len()];
    for round in 0..6 {
        for (ctx, ledger) in users.iter().zip(&mut ledgers) {
            send(&a, ctx, &format!("r{round}"), 5, ledger).await;
        }
    }
    let evicted: u64 = server
        .command(&["INFO", "stats"])
        .lines()
        .find_map(|l| l.strip_prefix("evicted_keys:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("evicted_keys");
    assert!(evicted > 0, "nothing was evicted: the test proves nothing");

    // Every user's client resumes from the first message it read, on a node that never held
    // the stream.
    let b = node(&server, 2).await;
    let mut totals = Seen::default();
    for (ctx, ledger) in users.iter().zip(&ledgers) {
        let Some(first) = ledger.keys().next() else {
            continue;
        };
        let seen = resume_judged(&b, ctx, *first, ledger).await;
        totals.recovered += seen.recovered;
        totals.told += seen.told;
        totals.messages += seen.messages;
        for (reason, n) in seen.gaps {
            *totals.gaps.entry(reason).or_default() += n;
        }
    }
    // Some streams lost something: those clients were told, by a gap marker.
    assert!(totals.told > 0, "{totals:?} ({evicted} keys evicted)");
    assert!(!totals.gaps.is_empty(), "{totals:?}");
}
