//! Mistakes a team makes when it first puts its registry in the simulator, recognised from how
//! its runs fail, and what to change, said once before the failures themselves.

use crate::check::outcome::FailureKind;

/// A mistake, recognised by what its failures say.
struct Mistake {
    /// A failure of this kind...
    kind: FailureKind,
    /// ...whose message holds this.
    says: &'static str,
    /// What to change.
    fix: &'static str,
}

const MISTAKES: [Mistake; 3] = [
    Mistake {
        kind: FailureKind::Panic,
        says: "no reactor running",
        fix: "the system under test calls real tokio, which does not run inside the \
              simulator: depend on tokio under madsim's name, `tokio = { version = \"0.2\", \
              package = \"madsim-tokio\" }` (it is plain tokio in builds without `--cfg madsim`), \
              and build the simulator with `--cfg madsim` (`cargo sim`)",
    },
    Mistake {
        kind: FailureKind::Panic,
        says: "spawn a system thread",
        fix: "the system under test starts an OS thread (`std::thread::spawn`), which the \
              simulator cannot schedule: run that work as a task (`tokio::spawn`), or behind a \
              seam the simulator replaces",
    },
    Mistake {
        kind: FailureKind::Nondeterminism,
        says: "",
        fix: "a seed ran differently twice, so the system under test reads something the seed \
              does not decide: the wall clock (`SystemTime::now`), an OS-seeded random number \
              generator (rand 0.8's `thread_rng`), state kept in the process between seeds (a \
              `static`), or the iteration order of a `HashMap` that reaches what it does",
    },
];

/// What to change, for each recognised mistake among `failures` (each failure kind's label
/// and message), at most once each, in a fixed order.
pub fn diagnose<'a>(failures: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<&'static str> {
    let failures: Vec<(&str, &str)> = failures.into_iter().collect();
    MISTAKES
        .iter()
        .filter(|m| {
            failures.iter().any(|(label, message)| {
                FailureKind::parse(label) == Some(m.kind) && message.contains(m.says)
            })
        })
        .map(|m| m.fix)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mistake_is_named_once_and_nothing_else_is() {
        let tokio = "in the system under test: there is no reactor running, must be called \
                     from the context of a Tokio 1.x runtime";
        let found = diagnose([("PANIC", tokio), ("PANIC", tokio)]);
        assert_eq!(found.len(), 1);
        assert!(found[0].contains("madsim-tokio"), "{found:?}");
        let thread = "in the system under test: attempt to spawn a system thread in simulation";
        assert!(diagnose([("PANIC", thread)])[0].contains("std::thread::spawn"));
        let drift = diagnose([("NONDETERMINISM", "first differs at step 9")]);
        assert!(drift[0].contains("wall clock"), "{drift:?}");
        assert!(diagnose([("I2 one-manager-per-user", "no reactor running")]).is_empty());
        assert!(diagnose([("PANIC", "index out of bounds")]).is_empty());
    }
}
