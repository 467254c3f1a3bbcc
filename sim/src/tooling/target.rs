//! Targets: what a run is run against, by name. The built-in ones are the real core (`core`)
//! and the zoo's planted bugs (`B1` ... `B29`); a team registers its own backend under a name
//! of its choosing, and every command (campaigns, determinism checks in worker processes,
//! shrinking, snapshots, replay) finds it by that name.

use std::fmt;
use std::sync::Arc;

use wsreg::{Observer, RegistryConfig};

use crate::generate::plan::Plan;
use crate::generate::seed::Seed;
use crate::run::backend::{core_factory, Backend, Factory};
use crate::run::recorder::Keep;
use crate::run::runtime::{run_plan, RuntimeError};
use crate::run::world::RunReport;
use crate::zoo::nodes::NodeBug;
use crate::zoo::Bug;

/// How to run one plan with one runtime seed, keeping what it is told.
pub type Runner =
    Arc<dyn Fn(Arc<Plan>, Seed, Keep) -> Result<RunReport, RuntimeError> + Send + Sync>;

/// A named backend to run plans against.
#[derive(Clone)]
pub struct Target {
    name: Arc<str>,
    bug: Option<Bug>,
    node_bug: Option<NodeBug>,
    run: Runner,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({})", self.name)
    }
}

/// The runner for backends that `factory` makes.
fn runner(factory: Factory) -> Runner {
    Arc::new(move |plan, seed, keep| run_plan(Arc::clone(&factory), plan, seed.0, keep))
}

impl Target {
    /// A backend of your own, made by `factory` for each run from the run's limits and the
    /// observer to report to (`None` when nobody listens). The name is what snapshots record
    /// and `--target` selects.
    pub fn new<B, F>(name: &str, factory: F) -> Self
    where
        B: Backend,
        F: Fn(RegistryConfig, Option<Arc<dyn Observer>>) -> B + Send + Sync + 'static,
    {
        Self {
            name: Arc::from(name),
            bug: None,
            node_bug: None,
            run: runner(Arc::new(move |config, observer| {
                Arc::new(factory(config, observer)) as Arc<dyn Backend>
            })),
        }
    }

    /// A backend of your own, by the [`Factory`] that makes it (a planted bug's, say:
    /// [`crate::zoo::plant::factory`]).
    pub fn from_factory(name: &str, factory: Factory) -> Self {
        Self {
            name: Arc::from(name),
            bug: None,
            node_bug: None,
            run: runner(factory),
        }
    }

    /// The real core.
    pub fn core() -> Self {
        Self::builtin(None)
    }

    /// The real core (`None`) or a planted bug.
    pub fn builtin(bug: Option<Bug>) -> Self {
        Self {
            name: Arc::from(bug.map_or_else(|| "core".to_owned(), |b| b.to_string())),
            bug,
            node_bug: None,
            run: runner(bug.map_or_else(core_factory, crate::zoo::factory)),
        }
    }

    /// A planted bug of many nodes: the core's nodes, each with its store handle wrapped by
    /// the bug (runs only over many nodes).
    pub fn node_bug(bug: NodeBug) -> Self {
        let factory = core_factory();
        let plant = bug.plant();
        Self {
            name: Arc::from(bug.to_string()),
            bug: None,
            node_bug: Some(bug),
            run: Arc::new(move |plan, seed, keep| {
                if plan.net.as_ref().is_none_or(|n| n.nodes < 2) {
                    return Err(RuntimeError::Mismatch(format!(
                        "{bug} is a bug of many nodes: run it with --net --nodes 2 (or more)"
                    )));
                }
                crate::run::runtime::run_plan_over(
                    Arc::clone(&factory),
                    Some(plant),
                    plan,
                    seed.0,
                    keep,
                )
            }),
        }
    }

    /// The planted bug of many nodes it is, if it is one.
    pub fn node_bug_of(&self) -> Option<NodeBug> {
        self.node_bug
    }

    /// Its name: `core`, `B3`, or the name it was registered under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The planted bug it is, if it is one.
    pub fn bug(&self) -> Option<Bug> {
        self.bug
    }

    /// What it is, in a line: the name, and a planted bug's story.
    pub fn describe(&self) -> String {
        match (self.bug, self.node_bug) {
            (Some(b), _) => format!("{b} ({})", b.story()),
            (None, Some(b)) => format!("{b} ({})", b.story()),
            (None, None) => self.name.to_string(),
        }
    }

    /// Runs `plan` with `runtime_seed` on a fresh thread.
    pub fn run(
        &self,
        plan: Arc<Plan>,
        runtime_seed: Seed,
        keep: Keep,
    ) -> Result<RunReport, RuntimeError> {
        (self.run)(plan, runtime_seed, keep)
    }
}

/// The targets one binary knows, by name.
#[derive(Clone, Debug)]
pub struct Targets {
    list: Vec<Target>,
}

/// A target name this binary does not know.
#[derive(Debug, thiserror::Error)]
#[error("no target named {name:?} in this binary (it knows {known}); a team's own registry runs, shrinks and replays with the team's binary, the one that registers it and calls `wsreg_sim::cli::main_with`")]
pub struct UnknownTarget {
    /// The name asked for.
    pub name: String,
    /// The names it knows, listed.
    pub known: String,
}

impl Targets {
    /// The real core and every planted bug.
    pub fn builtin() -> Self {
        let mut list = vec![Target::core()];
        list.extend(Bug::ALL.iter().map(|&b| Target::builtin(Some(b))));
        list.extend(NodeBug::ALL.iter().map(|&b| Target::node_bug(b)));
        Self { list }
    }

    /// These targets and `target`, which replaces any target of the same name.
    pub fn with(mut self, target: Target) -> Self {
        self.list.retain(|t| t.name != target.name);
        self.list.push(target);
        self
    }

    /// The target named `name`.
    pub fn get(&self, name: &str) -> Result<&Target, UnknownTarget> {
        self.list
            .iter()
            .find(|t| &*t.name == name)
            .ok_or_else(|| UnknownTarget {
                name: name.to_owned(),
                known: self.names(),
            })
    }

    /// Every name, in registration order, comma-separated (built-in bugs as a range).
    pub fn names(&self) -> String {
        let own: Vec<&str> = self
            .list
            .iter()
            .filter(|t| t.bug.is_none() && t.node_bug.is_none())
            .map(|t| t.name())
            .collect();
        let bugs = Bug::ALL;
        let nodes: Vec<String> = NodeBug::ALL.iter().map(ToString::to_string).collect();
        format!(
            "{}, the planted bugs {}, {} to {}, and over many nodes {}",
            own.join(", "),
            bugs[0],
            bugs[1],
            bugs[bugs.len() - 1],
            nodes.join(", ")
        )
    }
}

impl Default for Targets {
    fn default() -> Self {
        Self::builtin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_found_by_name_and_an_unknown_one_is_named_in_the_error() {
        let t = Targets::builtin().with(Target::new("mine", crate::run::backend::registry));
        assert_eq!(t.get("core").unwrap().name(), "core");
        assert_eq!(t.get("B3").unwrap().bug(), Some(Bug::B3));
        assert_eq!(t.get("mine").unwrap().bug(), None);
        let err = t.get("theirs").unwrap_err().to_string();
        assert!(
            err.contains("\"theirs\"") && err.contains("core, mine"),
            "{err}"
        );
    }
}
