//! Generates a [`Plan`] from a [`SimConfig`] and a seed.

use rand::distributions::WeightedIndex;
use rand::prelude::Distribution;
use rand::Rng;
use wsreg::Mode;

use crate::generate::config::SimConfig;
use crate::generate::plan::{
    NetFault, NetFaultKind, NetPlan, Op, OpKind, Plan, UserSpec, PLAN_VERSION,
};
use crate::generate::seed::Seed;

/// User `i`'s id (from 1) among look-alike pairs: users `2k-1` and `2k` are two distinct ids
/// that a careless key function merges, the kind cycling through case (`alice3`, `Alice3`),
/// script (Latin `pavel3`, Cyrillic `раvel3`), Unicode normal form (`josé3` precomposed and
/// decomposed), separator (`team|3`, `team_3`, or `team:3` for the second every other time),
/// trailing whitespace (`u3`, `u3 `) and length (two 250-byte ids that differ in the last byte).
pub fn look_alike(i: usize) -> String {
    let (k, second) = (i.div_ceil(2), i % 2 == 0);
    match (k % 6, second) {
        (0, false) => format!("alice{k}"),
        (0, true) => format!("Alice{k}"),
        (1, false) => format!("pavel{k}"),
        (1, true) => format!("\u{440}\u{430}vel{k}"),
        (2, false) => format!("jos\u{e9}{k}"),
        (2, true) => format!("jose\u{301}{k}"),
        (3, false) => format!("team|{k}"),
        (3, true) if k % 2 == 0 => format!("team:{k}"),
        (3, true) => format!("team_{k}"),
        (4, false) => format!("u{k}"),
        (4, true) => format!("u{k} "),
        (_, last) => format!("{k:x<248}{}", if last { 'b' } else { 'a' }),
    }
}

/// The plan for one seed. `config` should already be the seed's (see [`SimConfig::for_seed`]).
///
/// Users are `u1..uN`, except that every tenth pair is `team|k` and `team_k` (ids that a
/// sanitising key function would merge), or, with `identity_variants`, look-alike pairs (see
/// [`look_alike`]); every three share a thread id. A third of the ops go to the first few
/// users, so some users see heavy contention. Every user starts with a connect, and runs and
/// sends are biased towards users that have one.
pub fn generate(config: &SimConfig, seed: Seed) -> Plan {
    let mut rng = seed.rng("workload");
    let users: Vec<UserSpec> = (1..=config.users)
        .map(|i| UserSpec {
            name: if config.identity_variants {
                look_alike(i)
            } else {
                match i % 10 {
                    9 => format!("team|{}", (i + 1) / 10),
                    0 => format!("team_{}", i / 10),
                    _ => format!("u{i}"),
                }
            },
            thread: format!("t{}", i.div_ceil(3)),
        })
        .collect();
    let w = &config.weights;
    let kinds = [
        w.connect,
        w.close,
        w.crash,
        w.send,
        w.run,
        w.mode,
        w.burst,
        w.reconnect,
    ];
    let pick = WeightedIndex::new(kinds).ok();
    let hot = config.users.min(3);
    let mut ops = Vec::with_capacity(config.ops + config.users);
    // Everyone connects early, so most later ops meet a live user.
    for u in &users {
        if ops.len() >= config.ops {
            break;
        }
        ops.push(Op {
            at_ms: rng.gen_range(0..config.horizon_ms.clamp(1, 50)),
            user: u.name.clone(),
            kind: OpKind::Connect {
                slow: config.faults.slow_consumers && rng.gen_ratio(1, 8),
                fresh: false,
            },
        });
    }
    while ops.len() < config.ops {
        let Some(pick) = &pick else { break };
        let user = if rng.gen_ratio(1, 3) {
            rng.gen_range(0..hot)
        } else {
            rng.gen_range(0..config.users)
        };
        let mut at_ms = rng.gen_range(0..config.horizon_ms);
        if config.faults.jitter && rng.gen_ratio(1, 4) {
            at_ms += rng.gen_range(1..=5);
        }
        let tab = rng.gen_range(0..4);
        let kind = match pick.sample(&mut rng) {
            0 => OpKind::Connect {
                slow: config.faults.slow_consumers && rng.gen_ratio(1, 4),
                fresh: rng.gen_ratio(1, 4),
            },
            1 => OpKind::Close { tab },
            2 => OpKind::Crash { tab },
            3 => OpKind::Send {},
            4 => OpKind::Run {
                tools: rng.gen_range(0..=3),
                thinking: rng.gen_range(0..=2),
                step_ms: rng.gen_range(1..=5),
            },
            5 => OpKind::Mode {
                mode: [
                    Mode::Unified,
                    Mode::Isolated,
                    Mode::Emergency,
                    Mode::Degraded,
                ][rng.gen_range(0..4)],
            },
            6 => OpKind::Burst {
                n: rng.gen_range(2..=6),
            },
            _ => OpKind::Reconnect { tab },
        };
        ops.push(Op {
            at_ms,
            user: users[user].name.clone(),
            kind,
        });
    }
    ops.sort_by_key(|op| op.at_ms);
    // When clients open tabs, and when one opens several at once: where pauses are aimed.
    let opening: Vec<u64> = ops
        .iter()
        .filter(|op| {
            matches!(
                op.kind,
                OpKind::Connect { .. } | OpKind::Burst { .. } | OpKind::Reconnect { .. }
            )
        })
        .map(|op| op.at_ms)
        .collect();
    let bursts: Vec<u64> = ops
        .iter()
        .filter(|op| matches!(op.kind, OpKind::Burst { .. }))
        .map(|op| op.at_ms)
        .collect();
    Plan {
        version: PLAN_VERSION,
        limits: config.limits.clone(),
        buggify: config.faults.buggify,
        // A stream of its own, so that the rest of the plan is drawn as without sites.
        buggify_sites: (config.faults.buggify && config.faults.buggify_sites)
            .then(|| crate::generate::sites::draw_sites(&mut seed.rng("buggify-sites"))),
        liveness_bound_ms: config.liveness_bound_ms,
        users,
        ops,
        net: config.net.as_ref().map(|net| {
            // A stream of its own, so in-process plans are the same with or without this.
            let mut rng = seed.rng("net");
            let mut faults = Vec::new();
            for i in 0..net.partitions + net.restarts {
                let kind = if i < net.partitions {
                    NetFaultKind::Partition {
                        ms: rng.gen_range(1..=net.max_partition_ms),
                    }
                } else if net.nodes > 1 {
                    NetFaultKind::NodeRestart {
                        node: rng.gen_range(0..net.nodes),
                    }
                } else {
                    NetFaultKind::Restart
                };
                let at_ms = rng.gen_range(0..config.horizon_ms);
                faults.push(NetFault { at_ms, kind });
            }
            if net.nodes > 1 {
                let mut rng = seed.rng("store-faults");
                for i in 0..net.store_restarts + net.store_cuts {
                    let kind = if i < net.store_restarts {
                        NetFaultKind::StoreRestart
                    } else {
                        NetFaultKind::StoreCut {
                            node: rng.gen_range(0..net.nodes),
                            ms: rng.gen_range(1..=net.max_partition_ms),
                        }
                    };
                    let at_ms = rng.gen_range(0..config.horizon_ms);
                    faults.push(NetFault { at_ms, kind });
                }
                for _ in 0..net.store_slows {
                    // Answers late by up to 600 ms: past the nodes' 500 ms timeout at times.
                    let kind = NetFaultKind::StoreSlow {
                        reply_ms: rng.gen_range(1..=600),
                        ms: rng.gen_range(1..=net.max_partition_ms),
                    };
                    let at_ms = rng.gen_range(0..config.horizon_ms);
                    faults.push(NetFault { at_ms, kind });
                }
                for _ in 0..net.store_failovers {
                    let kind = NetFaultKind::StoreFailover {
                        lose: rng.gen_range(0..=3),
                    };
                    let at_ms = rng.gen_range(0..config.horizon_ms);
                    faults.push(NetFault { at_ms, kind });
                }
                // A stream of their own, so plans without them draw as before.
                let mut rng = seed.rng("store-faults-2");
                for _ in 0..net.store_flushes {
                    let at_ms = rng.gen_range(0..config.horizon_ms);
                    faults.push(NetFault {
                        at_ms,
                        kind: NetFaultKind::StoreFlush,
                    });
                }
                for _ in 0..net.store_evictions {
                    let kind = NetFaultKind::StoreEvict {
                        nth: rng.gen_range(0..64),
                        history: rng.gen_ratio(1, 2),
                    };
                    let at_ms = rng.gen_range(0..config.horizon_ms);
                    faults.push(NetFault { at_ms, kind });
                }
                for _ in 0..net.store_silences {
                    let at_ms = rng.gen_range(0..config.horizon_ms);
                    faults.push(NetFault {
                        at_ms,
                        kind: NetFaultKind::StoreSilence,
                    });
                }
                for _ in 0..net.store_live_delays {
                    // Pushes held up to 300 ms: behind reads, and past one another.
                    let kind = NetFaultKind::StoreLiveLate {
                        max_ms: rng.gen_range(1..=300),
                        ms: rng.gen_range(1..=net.max_partition_ms),
                    };
                    let at_ms = rng.gen_range(0..config.horizon_ms);
                    faults.push(NetFault { at_ms, kind });
                }
            }
            // A stream of their own, so plans without them draw as before. With many nodes a
            // pause falls on a server node or, one time in four, on the store.
            let mut rng = seed.rng("pauses");
            // Long enough for a connect's round trips to land inside it.
            let shortest = (2 * net.latency_ms[1] + 1).min(net.max_pause_ms);
            for _ in 0..net.pauses {
                let ms = rng.gen_range(shortest..=net.max_pause_ms);
                let kind = if net.nodes > 1 && rng.gen_ratio(1, 4) {
                    NetFaultKind::StorePause { ms }
                } else {
                    NetFaultKind::Pause {
                        node: rng.gen_range(0..net.nodes),
                        ms,
                    }
                };
                // Three pauses in four begin as a client opens tabs, so that what it sends,
                // and what others send meanwhile, is handled together.
                let aimed = if !bursts.is_empty() && rng.gen_ratio(1, 2) {
                    &bursts
                } else {
                    &opening
                };
                // Aimed a little after the op: a connect's first round trip (TCP) done, its
                // upgrade request on the way.
                let at_ms = match aimed.len() {
                    n if n > 0 && rng.gen_ratio(3, 4) => {
                        aimed[rng.gen_range(0..n)] + rng.gen_range(0..=2 * net.latency_ms[1])
                    }
                    _ => rng.gen_range(0..config.horizon_ms),
                };
                faults.push(NetFault { at_ms, kind });
            }
            faults.sort_by_key(|f| f.at_ms);
            NetPlan {
                latency_ms: net.latency_ms,
                loss_percent: net.loss_percent,
                faults,
                nodes: net.nodes,
                spread: net.spread,
                lease_ms: crate::generate::config::NODE_LEASE_MS,
                connect_deadline_ms: net.connect_deadline_ms,
            }
        }),
        oracle: config.oracle,
        connect_timeout_ms: config.connect_timeout_ms,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn generated_plans_are_of_the_current_format() {
        let config = crate::generate::config::SimConfig::default();
        let plan = super::generate(&config, crate::generate::seed::Seed(1));
        assert_eq!(plan.version, crate::generate::plan::PLAN_VERSION);
    }

    #[test]
    fn look_alike_ids_are_distinct_valid_and_pairwise_confusable() {
        let ids: Vec<String> = (1..=200).map(super::look_alike).collect();
        let distinct: std::collections::BTreeSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        for id in &ids {
            assert!(wsreg::UserContext::new(id).is_ok(), "{id:?}");
        }
        let folded = |s: &str| s.to_lowercase().trim().replace(['|', ':'], "_");
        assert_eq!(folded(&ids[4]), folded(&ids[5]), "separators");
        assert_eq!(folded(&ids[6]), folded(&ids[7]), "trailing space");
        assert_eq!(ids[8].len(), 249);
        assert_eq!(
            ids[8][..248],
            ids[9][..248],
            "long ids differ in the last byte"
        );
        assert_eq!(folded(&ids[10]), folded(&ids[11]), "case twins");
        assert_ne!(ids[0], ids[1], "Latin and Cyrillic");
        assert_eq!(
            ids[2].chars().count() + 1,
            ids[3].chars().count(),
            "NFC and NFD"
        );
    }

    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_plan() {
        let c = SimConfig::default();
        assert_eq!(generate(&c, Seed(9)), generate(&c, Seed(9)));
        assert_ne!(generate(&c, Seed(9)), generate(&c, Seed(10)));
    }

    #[test]
    fn plans_have_the_configured_size_and_validate() {
        let c = SimConfig {
            users: 7,
            ops: 100,
            ..Default::default()
        };
        let plan = generate(&c, Seed(1));
        assert_eq!(plan.users.len(), 7);
        assert_eq!(plan.ops.len(), 100);
        plan.validate().unwrap();
    }
}
