//! Deliberately broken variants of the core are caught by the invariant DESIGN names, within a
//! bounded number of seeds, and the reported seed reproduces in a fresh process. The real core
//! passes a campaign.

use wsreg_sim::campaign::{run_campaign, CampaignOptions, CampaignSummary};
use wsreg_sim::zoo::Bug;
use wsreg_sim::SimConfig;

use crate::support::{sim, stdout};

fn campaign(bug: Option<Bug>, seeds: &str) -> CampaignSummary {
    let opts = CampaignOptions {
        seeds: seeds.parse().unwrap(),
        shard: (0, 1),
        jobs: 2,
        time_budget: None,
        config: SimConfig::default(),
        bug,
        check_determinism: false,
        checks: true,
    };
    run_campaign(&opts, &|_, _, _| {}).unwrap()
}

fn caught_and_reproduced(bug: Bug) {
    let summary = campaign(Some(bug), "0..100");
    let expected = bug.expected().to_string();
    let group = summary
        .failures
        .get(&expected)
        .unwrap_or_else(|| panic!("{bug} not caught by {expected}: {:?}", summary.failures));
    assert_eq!(
        summary.failures.len(),
        1,
        "{bug} also failed otherwise: {:?}",
        summary.failures
    );
    let seed = group.first_seed.to_string();
    let out = sim(&["run", "--seed", &seed, "--bug", &bug.to_string()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains(&format!("VIOLATION {expected}")), "{text}");
    assert!(text.contains(&format!("replay: cargo sim run --seed {seed} --bug {bug}")));
    assert!(text.contains("<-- violation"));
}

#[test]
fn check_then_act_creation_is_caught_by_one_manager_per_user() {
    caught_and_reproduced(Bug::B3);
}

#[test]
fn routing_by_thread_id_is_caught_by_owner_only_delivery() {
    caught_and_reproduced(Bug::B16);
}

#[test]
fn the_real_core_passes_a_campaign_and_reaches_every_coverage_point() {
    let summary = campaign(None, "0..300");
    assert!(summary.passed(), "{:?}", summary.failures);
    for (point, hits) in &summary.coverage {
        assert!(*hits > 0, "coverage point {point} never reached");
    }
}
