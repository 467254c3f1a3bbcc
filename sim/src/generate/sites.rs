//! Buggify's sites: the await points the harness puts around calls into the backend where
//! buggify may add a yield, by name, and phase one of buggify in two phases (as FoundationDB
//! does it): which sites a seed switches on for the whole run. Phase two, whether a site that
//! is on fires now, is the runner's (`run::buggify`).
//!
//! A plan without a list of sites (every plan written before sites existed) has them all on.
//! What fired is counted as coverage, a point per site.

use std::collections::BTreeSet;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// A place where buggify may add a yield.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Site {
    /// Before a client's op starts.
    Op,
    /// Before a connect without a position.
    Connect,
    /// Before a connect that resumes after a position.
    Resume,
    /// Before an agent emits an event.
    Emit,
    /// Before a clean close.
    Close,
    /// Before the deferred cleanup of a crashed tab (in process only).
    Cleanup,
    /// Before a message the backend sends reaches a tab's socket.
    Send,
}

/// Every site, with its coverage point and what it means.
pub const SITES: [(Site, &str, &str); 7] = [
    (Site::Op, "buggify_op", "buggify delayed a client's op"),
    (
        Site::Connect,
        "buggify_connect",
        "buggify delayed a connect without a position",
    ),
    (
        Site::Resume,
        "buggify_resume",
        "buggify delayed a connect resuming after a position",
    ),
    (
        Site::Emit,
        "buggify_emit",
        "buggify delayed an agent's event",
    ),
    (
        Site::Close,
        "buggify_close",
        "buggify delayed a clean close",
    ),
    (
        Site::Cleanup,
        "buggify_cleanup",
        "buggify delayed the cleanup of a crashed tab",
    ),
    (
        Site::Send,
        "buggify_send",
        "buggify delayed a message on its way into a tab's socket",
    ),
];

impl Site {
    /// The site's coverage point.
    pub fn point(self) -> &'static str {
        SITES[self as usize].1
    }
}

/// Phase one: the sites a seed switches on, each with probability one half (never none: a
/// seed drawn with no site on gets one).
pub fn draw_sites(rng: &mut impl Rng) -> BTreeSet<Site> {
    let mut on: BTreeSet<Site> = SITES
        .iter()
        .map(|s| s.0)
        .filter(|_| rng.gen_ratio(1, 2))
        .collect();
    if on.is_empty() {
        on.insert(SITES[rng.gen_range(0..SITES.len())].0);
    }
    on
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn sites_are_listed_in_order_and_named_apart() {
        for (i, (site, point, _)) in SITES.iter().enumerate() {
            assert_eq!(*site as usize, i, "{point} is out of place");
            let name = serde_json::to_string(site).expect("a site serialises");
            assert_eq!(
                format!("\"buggify_{}\"", name.trim_matches('"')),
                format!("{point:?}")
            );
        }
    }

    #[test]
    fn a_seed_switches_some_sites_on_and_never_none() {
        let mut seen = BTreeSet::new();
        for seed in 0..200u64 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let on = draw_sites(&mut rng);
            assert!(!on.is_empty());
            seen.insert(on.len());
        }
        assert!(seen.contains(&1) && seen.contains(&SITES.len()) && seen.len() >= 5);
    }
}
