//! Golden hashes: what a few fixed seeds mean. Every hash here is computed over explicit bytes
//! (JSON for configs and plans, little-endian integers for trace steps), so it does not move with
//! the toolchain; when one of these fails, a change made every recorded seed run something else.
//! Update the pins deliberately, and say so in the commit.

use std::sync::Arc;

use wsreg_sim::generate::config::SimConfig;
use wsreg_sim::generate::seed::Seed;
use wsreg_sim::run::recorder::Keep;
use wsreg_sim::tooling::campaign::derive;
use wsreg_sim::tooling::snapshot::plan_hash;
use wsreg_sim::tooling::target::Target;

/// seed, config hash, plan hash, runtime seed, trace hash.
const GOLDEN: [(u64, &str, &str, u64, u64); 3] = [
    (
        0,
        "7a2216f4",
        "a042e93a",
        1777879451275523015,
        9092756352111875967,
    ),
    (
        1,
        "4a30b290",
        "981731e6",
        17333239414056529660,
        13652787927209947634,
    ),
    (
        0x2a,
        "dc84fb0e",
        "4e4199b5",
        12554016060724579046,
        5895729092684326872,
    ),
];

#[test]
fn fixed_seeds_keep_their_meaning() {
    let mut now = Vec::new();
    for (seed, ..) in GOLDEN {
        let (config, plan, runtime_seed) = derive(&SimConfig::default(), Seed(seed));
        let (config_hash, plan_hash) = (config.hash_hex(), plan_hash(&plan, "core"));
        let report = Target::core()
            .run(Arc::new(plan), runtime_seed, Keep::Tail(1))
            .expect("runs");
        assert!(report.outcome.passed(), "seed {seed}: {:?}", report.outcome);
        now.push((seed, config_hash, plan_hash, runtime_seed.0, report.hash));
    }
    let pinned: Vec<_> = GOLDEN
        .iter()
        .map(|&(s, c, p, r, t)| (s, c.to_owned(), p.to_owned(), r, t))
        .collect();
    assert_eq!(
        now, pinned,
        "what a seed means changed (see this file's header)"
    );
}
