//! Deliberately broken variants of the core are caught by the invariant the README names for them, within a
//! bounded number of seeds, and the reported seed reproduces in a fresh process. The real core
//! passes a campaign.

use wsreg_sim::tooling::campaign::{run_campaign, CampaignOptions, CampaignSummary};
use wsreg_sim::tooling::target::Target;
use wsreg_sim::zoo::Bug;

use crate::support::{sim, stdout};

fn campaign(bug: Option<Bug>, seeds: &str) -> CampaignSummary {
    let opts = CampaignOptions {
        jobs: 2,
        target: Target::builtin(bug),
        ..CampaignOptions::new(seeds.parse().unwrap())
    };
    run_campaign(&opts, &|_, _, _| {}).unwrap()
}

#[test]
fn every_planted_bug_is_caught_by_an_expected_invariant_and_reproduces() {
    for bug in Bug::ALL {
        let summary = campaign(Some(bug), "0..40");
        let first = summary
            .failing
            .first()
            .unwrap_or_else(|| panic!("{bug} was not caught in 40 seeds"));
        let label = first.outcome.label();
        assert!(
            bug.caught_as_expected(&label),
            "{bug} was first caught by {label}, expected one of {:?}",
            bug.expected()
        );
        let seed = first.seed.to_string();
        let out = sim(&["run", "--seed", &seed, "--target", &bug.to_string()]);
        let text = stdout(&out);
        assert_eq!(
            out.status.code(),
            Some(first.outcome.exit_code().code()),
            "{text}"
        );
        assert!(
            text.contains(&label),
            "{bug} did not reproduce in a fresh process: {text}"
        );
        assert!(text.contains(&format!(
            "replay: cargo sim run --seed {seed} --target {bug}"
        )));
    }
}

#[test]
fn the_real_core_passes_a_campaign_and_reaches_every_coverage_point() {
    let summary = campaign(None, "0..300");
    assert!(summary.passed(), "{:?}", summary.failures);
    for (point, hits) in &summary.coverage {
        assert!(*hits > 0, "coverage point {point} never reached");
    }
}
