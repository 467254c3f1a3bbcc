//! A failover that loses the newest writes, played with real `redis-server` processes: a
//! primary and an asynchronous replica; the replica's link is cut (pointed at a port nobody
//! listens on) while the primary takes more appends, the primary dies, the replica is promoted
//! (`REPLICAOF NO ONE`) and the store is pointed at it. The stream must not be continued in its old epoch (its head rolled back, the
//! next append would take a position clients already read with another message): it starts
//! again under a new epoch, which tells every client the loss.

use std::time::{Duration, Instant};

use wsreg::store::model::{Bounds, Op, Reply};
use wsreg::store::redis::RedisStore;

use crate::server::RedisServer;

const BOUNDS: Bounds = Bounds {
    capacity: 100,
    max_age_ms: 3_600_000,
    ttl_ms: 3_600_000,
};

fn append(idem: &str, payload: &str) -> Op {
    Op::Append {
        user: "alice".into(),
        idem: idem.into(),
        payload: payload.into(),
        fresh: "1.1".into(),
        now_ms: 0,
    }
}

/// Appends messages `seqs` (keys `k<i>`, payloads `"m<i>"`), each stored at position `i`.
async fn append_in_order(store: &RedisStore, seqs: std::ops::RangeInclusive<u64>) {
    for i in seqs {
        let at = store
            .apply(&append(&format!("k{i}"), &format!("\"m{i}\"")))
            .await
            .unwrap();
        assert!(
            matches!(at, Reply::Appended { seq, .. } if seq == i),
            "{at:?}"
        );
    }
}

fn read() -> Op {
    Op::Read {
        user: "alice".into(),
        after: 0,
        limit: 100,
        fresh: "2.1".into(),
        now_ms: 0,
    }
}

/// Waits until `replica` has everything `primary` wrote so far.
fn caught_up(primary: &RedisServer, replica: &RedisServer) {
    let offset = |s: &RedisServer, field: &str| -> Option<u64> {
        let info = s.command(&["INFO", "replication"]);
        info.lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().parse().ok())
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let want = offset(primary, "master_repl_offset:");
        let have = offset(replica, "master_repl_offset:");
        let linked = replica
            .command(&["INFO", "replication"])
            .contains("master_link_status:up");
        if linked && want.is_some() && want == have {
            return;
        }
        assert!(Instant::now() < deadline, "the replica never caught up");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn a_promoted_replica_that_lost_the_newest_writes_starts_the_stream_again_in_a_new_epoch() {
    let Some(mut primary) = RedisServer::start() else {
        return;
    };
    let replica = RedisServer::start_replica(&primary);
    // A primary takes a new replication id when its first replica attaches (it starts its
    // backlog then): the streams begin after that.
    caught_up(&primary, &replica);
    let (store, _live) = RedisStore::connect(&primary.url(), BOUNDS).await.unwrap();
    append_in_order(&store, 1..=3).await;
    caught_up(&primary, &replica);
    // The replica hears nothing more; the primary takes two appends clients may have read.
    let nowhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere_port = nowhere.local_addr().unwrap().port().to_string();
    drop(nowhere);
    replica.command(&["REPLICAOF", "127.0.0.1", &nowhere_port]);
    append_in_order(&store, 4..=5).await;
    primary.stop();
    replica.command(&["REPLICAOF", "NO", "ONE"]);
    let (promoted, _live) = RedisStore::connect(&replica.url(), BOUNDS).await.unwrap();
    // What the replica holds: the stream as it was after the third append, epoch and all.
    let kept = replica.command(&["HGET", "wsreg:{alice}:meta", "head"]);
    assert_eq!(kept, "3", "the replica lost the last two appends");
    let Reply::Range {
        epoch,
        head,
        entries,
        ..
    } = promoted.apply(&read()).await.unwrap()
    else {
        panic!("a read answers a range");
    };
    // Not epoch 1.1 with head 3: the next append would be position 4 again, another message.
    assert_eq!((epoch.as_str(), head), ("2.1", 0), "{entries:?}");
    let next = promoted.apply(&append("k6", "\"m6\"")).await.unwrap();
    assert_eq!(
        next,
        Reply::Appended {
            epoch: "2.1".into(),
            seq: 1,
            duplicate: false
        }
    );
}

#[tokio::test]
async fn a_replica_that_has_every_write_is_the_same_lineage_until_it_is_promoted() {
    // The lineage is the replication id: a caught-up replica shares its primary's, so reading
    // from it (a planned switch) does not restart streams; promotion alone changes it.
    let Some(primary) = RedisServer::start() else {
        return;
    };
    let replica = RedisServer::start_replica(&primary);
    let (store, _live) = RedisStore::connect(&primary.url(), BOUNDS).await.unwrap();
    store.apply(&append("k1", "\"m1\"")).await.unwrap();
    caught_up(&primary, &replica);
    let id = |s: &RedisServer| {
        s.command(&["INFO", "replication"])
            .lines()
            .find_map(|l| l.strip_prefix("master_replid:").map(str::to_owned))
    };
    assert_eq!(id(&primary), id(&replica));
    replica.command(&["REPLICAOF", "NO", "ONE"]);
    assert_ne!(id(&primary), id(&replica));
}
