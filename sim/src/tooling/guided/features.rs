//! What a run reached, as a set of named features: each coverage point with how often it was
//! hit (in powers of two, so a point hit eight times is new after one hit once), and each pair
//! of adjacent steps of one user (a `ConnAdded` right after a `Trimmed`, say), the shape of what
//! the registry did for that user, told apart when both steps fell in one virtual instant. A run that reaches a feature no earlier run reached is kept.

use std::collections::{BTreeMap, BTreeSet};

use crate::check::trace::{Side, Step};
use crate::run::world::RunReport;

/// A run's features, by name.
pub type Features = BTreeSet<String>;

/// The features `report` reached (its trace must have been kept whole).
pub fn features(report: &RunReport) -> Features {
    let mut out = Features::new();
    for (point, &hits) in &report.coverage.hits {
        if hits > 0 {
            out.insert(format!("{point}@{}", hits.ilog2()));
        }
    }
    let mut last: BTreeMap<&str, (String, u64)> = BTreeMap::new();
    for s in &report.trace {
        if s.what.side() == Side::World {
            continue;
        }
        let kind = kind(s);
        if let Some((before, t_us)) = last.insert(&s.user, (kind.clone(), s.t_us)) {
            // Two steps of one user in one virtual instant are what the narrowest races
            // need: that the pair happened so is a feature of its own.
            let together = if t_us == s.t_us { "=" } else { "" };
            out.insert(format!("{before}>{together}{kind}"));
        }
    }
    out
}

/// A step's kind: its variant's name, refined where the variant alone says little.
fn kind(s: &Step) -> String {
    use crate::check::trace::What;
    let debug = format!("{:?}", s.what);
    let name: String = debug.chars().take_while(|c| c.is_alphanumeric()).collect();
    match &s.what {
        What::ConnRemoved { reason, .. } => format!("{name}({reason:?})"),
        What::ManagerRemoved(reason) => format!("{name}({reason:?})"),
        What::Connected { recovered, .. } => format!("{name}(recovered={recovered})"),
        What::Refused { action, .. } => format!("{name}({action})"),
        _ => name,
    }
}
