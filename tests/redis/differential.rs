//! The differential test: one generated sequence of store operations, applied to the model
//! and to a real `redis-server` through the production scripts; every reply, and every
//! message published, must be the same once epochs are renamed in first-seen order.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use wsreg::store::model::{Bounds, Op, Publish, Reply, StoreModel};
use wsreg::store::redis::RedisStore;
use wsreg::store::{Live, StreamStore};
use wsreg::UserKey;

use crate::server::RedisServer;

const USERS: [&str; 5] = ["alice", "bob", "a}b", "{x}", "é 1"];
const BOUNDS: Bounds = Bounds {
    capacity: 4,
    max_age_ms: 300,
    ttl_ms: 3_600_000,
};

/// A planted difference between the model and the scripts, to show the comparison sees it.
#[derive(Clone, Copy, PartialEq)]
enum Plant {
    None,
    /// The model keeps one entry more than Redis.
    CapacityOffByOne,
    /// The model never recognises a retried append.
    ForgetsIdempotency,
}

/// Operations from `seed`: appends from three nodes (with their own epoch proposals), retried
/// appends, reads from anywhere in the stream, leases on connection slots taken, renewed, given
/// back and run out, the clock moving on (so the age bound trims and leases expire), and now
/// and then the whole store forgotten.
fn generate(seed: u64, n: usize) -> Vec<Op> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut now = 0u64;
    let mut appends = 0u64;
    let mut proposals = 0u64;
    let mut last: Option<Op> = None;
    let mut ops = Vec::with_capacity(n);
    for _ in 0..n {
        now += rng.gen_range(0..40);
        let user = USERS[rng.gen_range(0..USERS.len())].to_owned();
        let node = rng.gen_range(1..=3u64);
        proposals += 1;
        let fresh = format!("{node}.{proposals}");
        let op = match rng.gen_range(0..100) {
            0 => Op::Flush,
            1..=6 if last.is_some() => {
                // The same append again (a retry after a timeout), a little later.
                let Some(Op::Append {
                    user,
                    idem,
                    payload,
                    fresh,
                    ..
                }) = last.clone()
                else {
                    unreachable!()
                };
                Op::Append {
                    user,
                    idem,
                    payload,
                    fresh,
                    now_ms: now,
                }
            }
            7..=69 => {
                appends += 1;
                Op::Append {
                    user,
                    idem: format!("{node:x}-{appends:x}"),
                    payload: format!("{{\"kind\":\"text\",\"text\":\"m{appends} ü {{}}\"}}"),
                    fresh,
                    now_ms: now,
                }
            }
            70..=79 => Op::Lease {
                user,
                holder: format!("{node:x}-{}", rng.gen_range(0..6)),
                // 0: a renewal only (a node's renewals), which never takes a slot.
                limit: rng.gen_range(0..4),
                now_ms: now,
                lease_ms: rng.gen_range(1..200),
            },
            80..=83 => Op::Release {
                user,
                holder: format!("{node:x}-{}", rng.gen_range(0..6)),
            },
            // Redis evicting the meta record or the history under `maxmemory`.
            84..=86 => Op::Evict {
                user,
                history: rng.gen_ratio(1, 2),
            },
            _ => Op::Read {
                user,
                after: rng.gen_range(0..appends / 3 + 3),
                limit: rng.gen_range(0..6),
                fresh,
                now_ms: now,
            },
        };
        if matches!(op, Op::Append { .. }) {
            last = Some(op.clone());
        }
        ops.push(op);
    }
    ops
}

/// Renames epochs in the order first seen, so two stores that name their epochs differently
/// still compare equal.
#[derive(Default)]
struct Renamer(BTreeMap<String, usize>);

impl Renamer {
    fn name(&mut self, epoch: &str) -> String {
        let n = self.0.len() + 1;
        format!("e{}", self.0.entry(epoch.to_owned()).or_insert(n))
    }

    fn reply(&mut self, reply: Reply) -> Reply {
        match reply {
            Reply::Appended {
                epoch,
                seq,
                duplicate,
            } => Reply::Appended {
                epoch: self.name(&epoch),
                seq,
                duplicate,
            },
            Reply::Range {
                epoch,
                head,
                first,
                entries,
            } => Reply::Range {
                epoch: self.name(&epoch),
                head,
                first,
                entries,
            },
            other => other,
        }
    }

    fn publish(&mut self, p: Publish) -> (String, String, u64, String) {
        (p.user, self.name(&p.epoch), p.seq, p.payload)
    }
}

/// Where the two stores first differ (printed whole when a test fails).
#[derive(Debug)]
#[allow(dead_code, reason = "read through Debug, in the failure message")]
struct Divergence {
    at: usize,
    op: Op,
    model: String,
    redis: String,
}

async fn differential(
    redis: &RedisStore,
    live: &mut tokio::sync::mpsc::UnboundedReceiver<Live>,
    ops: &[Op],
    plant: Plant,
) -> Result<usize, Divergence> {
    let model_bounds = match plant {
        Plant::CapacityOffByOne => Bounds {
            capacity: BOUNDS.capacity + 1,
            ..BOUNDS
        },
        _ => BOUNDS,
    };
    let mut model = StoreModel::new(model_bounds);
    redis.apply(&Op::Flush).await.expect("flush");
    let (mut on_model, mut on_redis) = (Renamer::default(), Renamer::default());
    let mut published = 0;
    for (at, op) in ops.iter().enumerate() {
        let mut model_op = op.clone();
        if let (Plant::ForgetsIdempotency, Op::Append { idem, .. }) = (plant, &mut model_op) {
            idem.push_str(&format!("-{at}"));
        }
        let (want, publish) = model.apply(&model_op);
        let got = redis.apply(op).await.expect("redis answers");
        let (want, got) = (on_model.reply(want), on_redis.reply(got));
        let diverged = |model: String, redis: String| Divergence {
            at,
            op: op.clone(),
            model,
            redis,
        };
        if want != got {
            return Err(diverged(format!("{want:?}"), format!("{got:?}")));
        }
        if let Some(p) = publish {
            published += 1;
            let want = on_model.publish(p);
            let heard = tokio::time::timeout(std::time::Duration::from_secs(5), live.recv())
                .await
                .ok()
                .flatten();
            let got = match heard {
                Some(Live::Published { user, at, payload }) => Some((
                    user.as_str().to_owned(),
                    on_redis.name(&at.epoch.to_string()),
                    at.seq,
                    serde_json::to_string(&payload).unwrap(),
                )),
                _ => None,
            };
            // The payload went through the node's decoder: compare it decoded both ways.
            let want_decoded = (
                want.0.clone(),
                want.1.clone(),
                want.2,
                serde_json::to_string(
                    &serde_json::from_str::<wsreg::Payload>(&want.3).expect("json"),
                )
                .unwrap(),
            );
            if got.as_ref() != Some(&want_decoded) {
                return Err(diverged(
                    format!("publish {want_decoded:?}"),
                    format!("{got:?}"),
                ));
            }
        } else if let Ok(extra) = live.try_recv() {
            return Err(diverged("no publish".into(), format!("{extra:?}")));
        }
    }
    Ok(published)
}

async fn connected(
    server: &RedisServer,
) -> (RedisStore, tokio::sync::mpsc::UnboundedReceiver<Live>) {
    let (store, mut live) = RedisStore::connect(&server.url(), BOUNDS).await.unwrap();
    assert_eq!(
        live.recv().await,
        Some(Live::Lost),
        "the first subscription announces itself"
    );
    for user in USERS {
        store.subscribe(&UserKey::new(user).unwrap()).await.unwrap();
    }
    (store, live)
}

#[tokio::test]
async fn the_model_and_the_scripts_on_a_real_redis_reply_alike_over_ten_thousand_operations() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let (store, mut live) = connected(&server).await;
    let mut total = 0;
    let mut published = 0;
    for seed in 0..4 {
        let ops = generate(seed, 2_500);
        published += differential(&store, &mut live, &ops, Plant::None)
            .await
            .unwrap_or_else(|d| panic!("seed {seed}: {d:#?}"));
        total += ops.len();
    }
    assert!(total >= 10_000);
    assert!(published > 5_000, "{published} appends published");
}

#[tokio::test]
async fn a_divergence_planted_in_the_model_is_caught_with_the_operation_that_shows_it() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let (store, mut live) = connected(&server).await;
    let ops = generate(7, 2_500);
    for plant in [Plant::CapacityOffByOne, Plant::ForgetsIdempotency] {
        let found = differential(&store, &mut live, &ops, plant).await;
        let divergence = found.expect_err("the comparison sees the planted difference");
        let shows_it = match plant {
            Plant::CapacityOffByOne => matches!(divergence.op, Op::Read { .. }),
            Plant::ForgetsIdempotency => divergence.redis.contains("duplicate: true"),
            Plant::None => unreachable!(),
        };
        assert!(shows_it, "{divergence:#?}");
        // Drain what the aborted run left published.
        while live.try_recv().is_ok() {}
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        while live.try_recv().is_ok() {}
    }
}

#[tokio::test]
async fn the_scripts_run_on_a_redis_cluster_node_each_touching_one_users_slot() {
    let Some(server) = RedisServer::start_cluster() else {
        return;
    };
    let (store, mut live) = connected(&server).await;
    let ops = generate(11, 2_500);
    // In cluster mode Redis refuses a script that touches keys of two slots: every operation
    // replying as the model does shows each keeps to its user's hash tag.
    let published = differential(&store, &mut live, &ops, Plant::None)
        .await
        .unwrap_or_else(|d| panic!("{d:#?}"));
    assert!(published > 1_000, "{published} appends published");
}
