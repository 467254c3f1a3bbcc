//! Buggify in two phases, as FoundationDB does it: each named site (see
//! [`crate::generate::sites`]) is switched on or off for the whole seed when its plan is drawn,
//! and a site that is on fires one time in four, adding a yield there. A seed thus stresses a
//! few places hard instead of every place a little.

use rand::Rng;

use crate::generate::plan::Plan;
use crate::generate::sites::Site;
use crate::run::recorder::Recorder;

/// Phase two: whether buggify fires at `site` now (one time in four when the plan has it on).
/// In process that is madsim's buggify. Network runs draw from madsim's seeded RNG instead and
/// leave madsim's buggify off, because it would also delay one TCP connect in ten by 1 to 5
/// virtual seconds, which starves a plan of its timing; latency and partitions are the plan's
/// own faults there.
pub fn fires(plan: &Plan, site: Site) -> bool {
    if !plan.buggify {
        return false;
    }
    if plan
        .buggify_sites
        .as_ref()
        .is_some_and(|on| !on.contains(&site))
    {
        return false;
    }
    if plan.net.is_some() {
        return madsim::rand::thread_rng().gen_ratio(1, 4);
    }
    madsim::buggify::buggify()
}

/// Yields when buggify fires at `site`, counting it in `recorder`'s coverage.
pub(crate) async fn maybe_yield(plan: &Plan, recorder: &Recorder, site: Site) {
    if fires(plan, site) {
        recorder.buggified(site);
        tokio::task::yield_now().await;
    }
}
