//! Mutations of a kept plan, each small enough that the run mostly stays near the behaviour
//! that made the plan worth keeping: an op moved a little in time, two ops made to coincide,
//! an op repeated in the same instant (a burst), an op dropped, a server pause aimed at an op,
//! a fault moved onto an op, buggify switched, the latency fixed or redrawn, one limit made
//! tight, the server's connect timeout made short (or taken away), and the schedule
//! (the runtime seed) redrawn.

use rand::seq::SliceRandom;
use rand::Rng;

use crate::generate::config::MAX_AT_MS;
use crate::generate::plan::{NetFault, NetFaultKind, Plan};
use crate::generate::seed::Seed;

/// Most ops a mutated plan may hold: bursts must not grow a plan without bound.
const MAX_GROWTH: usize = 64;

/// One way of changing a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mutation {
    Nudge,
    Coincide,
    Repeat,
    Drop,
    PauseAtOp,
    FaultOntoOp,
    Buggify,
    Latency,
    Limit,
    Deadline,
}

const MUTATIONS: [Mutation; 10] = [
    Mutation::Nudge,
    Mutation::Coincide,
    Mutation::Repeat,
    Mutation::Drop,
    Mutation::PauseAtOp,
    Mutation::FaultOntoOp,
    Mutation::Buggify,
    Mutation::Latency,
    Mutation::Limit,
    Mutation::Deadline,
];

/// A mutant of `plan` with one to three mutations, and the runtime seed to run it with: the
/// same as `runtime_seed` half the time (the schedule kept, the plan changed), a new one
/// otherwise. `limit` is the plan's op count the mutant may not grow past by more than
/// [`MAX_GROWTH`].
pub fn mutate(plan: &Plan, runtime_seed: Seed, rng: &mut impl Rng, limit: usize) -> (Plan, Seed) {
    let mut p = plan.clone();
    for _ in 0..rng.gen_range(1..=3) {
        let m = *MUTATIONS.choose(rng).expect("mutations");
        apply(&mut p, m, rng, limit + MAX_GROWTH);
    }
    let seed = if rng.gen_ratio(1, 2) {
        runtime_seed
    } else {
        Seed(rng.gen())
    };
    (p, seed)
}

fn apply(p: &mut Plan, m: Mutation, rng: &mut impl Rng, most_ops: usize) {
    let n = p.ops.len();
    if n == 0 {
        return;
    }
    let i = rng.gen_range(0..n);
    match m {
        Mutation::Nudge => {
            let at = p.ops[i].at_ms as i64 + rng.gen_range(-20..=20);
            p.ops[i].at_ms = at.clamp(0, MAX_AT_MS as i64) as u64;
        }
        Mutation::Coincide => {
            // Half the time another op of the same user: its races are with itself.
            let same_user: Vec<usize> = (0..n)
                .filter(|&j| j != i && p.ops[j].user == p.ops[i].user)
                .collect();
            let j = match same_user.choose(rng) {
                Some(&j) if rng.gen_ratio(1, 2) => j,
                _ => rng.gen_range(0..n),
            };
            p.ops[j].at_ms = p.ops[i].at_ms;
        }
        Mutation::Repeat if n < most_ops => {
            let op = p.ops[i].clone();
            p.ops.insert(i + 1, op);
        }
        Mutation::Drop if n > 1 => {
            p.ops.remove(i);
        }
        Mutation::PauseAtOp => {
            let at_ms = p.ops[i].at_ms + rng.gen_range(0..=10);
            if let Some(net) = &mut p.net {
                let ms = rng.gen_range(5..=60);
                // Over many nodes, now and then the store's replies held instead.
                let kind = if net.nodes > 1 && rng.gen_ratio(1, 4) {
                    NetFaultKind::StorePause { ms }
                } else {
                    NetFaultKind::Pause {
                        node: rng.gen_range(0..net.nodes.max(1)),
                        ms,
                    }
                };
                net.faults.push(NetFault { at_ms, kind });
                net.faults.sort_by_key(|f| f.at_ms);
            }
        }
        Mutation::FaultOntoOp => {
            let at_ms = p.ops[i].at_ms;
            if let Some(net) = &mut p.net {
                if !net.faults.is_empty() {
                    let f = rng.gen_range(0..net.faults.len());
                    net.faults[f].at_ms = at_ms;
                    net.faults.sort_by_key(|f| f.at_ms);
                }
            }
        }
        Mutation::Buggify => {
            p.buggify = !p.buggify;
            p.buggify_sites = None;
        }
        Mutation::Latency => {
            // Over the network: one fixed latency (what is sent together arrives together)
            // or a fresh range.
            if let Some(net) = &mut p.net {
                let lo = rng.gen_range(0..=10);
                let hi = if rng.gen_ratio(1, 2) {
                    lo
                } else {
                    rng.gen_range(lo..=20)
                };
                net.latency_ms = [lo, hi];
            }
        }
        Mutation::Limit => {
            // One limit made tight: the edges of the history, of a user's tabs, of managers.
            let users = p.users.len().max(2);
            let l = &mut p.limits;
            match rng.gen_range(0..3) {
                0 => l.history_capacity = rng.gen_range(2..=8),
                1 => l.max_connections_per_user = rng.gen_range(1..=3),
                _ => l.max_managers = rng.gen_range(1..=users / 2),
            }
        }
        Mutation::Deadline => {
            // Over the network: the server gives the registry little time to accept a
            // connect (some are dropped halfway), or none again (it waits as long as it takes).
            if let Some(net) = &mut p.net {
                net.connect_deadline_ms = match net.connect_deadline_ms {
                    Some(_) if rng.gen_ratio(1, 3) => None,
                    _ => Some(rng.gen_range(5..=300)),
                };
            }
        }
        Mutation::Repeat | Mutation::Drop => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::config::{NetConfig, SimConfig};
    use crate::generate::workload::generate;
    use rand::SeedableRng;

    #[test]
    fn mutants_stay_valid_and_bounded() {
        let config = SimConfig {
            users: 4,
            ops: 30,
            net: Some(NetConfig::default()),
            ..SimConfig::default()
        };
        let plan = generate(&config, Seed(7));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut p = plan.clone();
        let mut changed = 0;
        for _ in 0..500 {
            let (next, _) = mutate(&p, Seed(1), &mut rng, plan.ops.len());
            next.validate().expect("a mutant is a valid plan");
            assert!(next.ops.len() <= plan.ops.len() + MAX_GROWTH);
            changed += usize::from(next != p);
            p = next;
        }
        assert!(changed > 400, "only {changed} of 500 mutants differ");
    }
}
