//! The pool of a guided campaign: the plans that reached something new, each with its
//! runtime seed and every feature it reached, kept one JSON file each in a directory that CI can
//! keep between runs (as it keeps the failure store). A later campaign of the same target and
//! transport starts from them; entries of another target or transport are left alone.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::generate::plan::Plan;
use crate::generate::seed::Seed;
use crate::tooling::guided::features::Features;

/// The format of an entry file.
pub const POOL_VERSION: u32 = 1;

/// One kept plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Format version; must be [`POOL_VERSION`].
    pub version: u32,
    /// The target it ran against.
    pub target: String,
    /// The runtime seed it ran with.
    pub runtime_seed: Seed,
    /// Every feature its run reached.
    pub features: Features,
    /// The plan.
    pub plan: Plan,
}

impl Entry {
    /// Whether this entry belongs to a campaign of `target` whose plans look like `like`:
    /// the same target, in process or over the network alike, over as many nodes.
    pub fn fits(&self, target: &str, like: &Plan) -> bool {
        let shape = |p: &Plan| p.net.as_ref().map(|n| n.nodes);
        self.target == target && shape(&self.plan) == shape(like)
    }

    /// The entry's file name: its target and a hash of its plan and runtime seed.
    pub fn file_name(&self) -> String {
        let hash = run_hash(&self.plan, &self.target, self.runtime_seed);
        format!("{}-{hash}.json", self.target)
    }
}

/// A short hash of one run: its plan, target and runtime seed (what names its files).
pub fn run_hash(plan: &Plan, target: &str, runtime_seed: Seed) -> String {
    crate::tooling::snapshot::plan_hash(plan, &format!("{target}@{runtime_seed}"))
}

/// A pool that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The directory or a file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A file in the directory is not an entry this build reads.
    #[error("{path}: not an entry of a pool: {problem}")]
    Malformed {
        /// The file.
        path: String,
        /// What is wrong.
        problem: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PoolError + '_ {
    move |source| PoolError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Every entry in `dir` (created when missing), in file-name order so that a campaign reads
/// them the same way every time. A file that is not an entry is an error: nothing is skipped
/// silently.
pub fn load(dir: &Path) -> Result<Vec<Entry>, PoolError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    let mut entries = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        let malformed = |problem: String| PoolError::Malformed {
            path: path.display().to_string(),
            problem,
        };
        let entry: Entry = serde_json::from_str(&text).map_err(|e| malformed(e.to_string()))?;
        if entry.version != POOL_VERSION {
            return Err(malformed(format!(
                "version {} (this build reads {POOL_VERSION})",
                entry.version
            )));
        }
        entry
            .plan
            .validate()
            .map_err(|e| malformed(e.to_string()))?;
        entries.push(entry);
    }
    Ok(entries)
}

/// Writes `entry` into `dir` (created when missing); returns its path.
pub fn save(dir: &Path, entry: &Entry) -> Result<PathBuf, PoolError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let path = dir.join(entry.file_name());
    let text = serde_json::to_string_pretty(entry).expect("an entry serialises");
    std::fs::write(&path, text).map_err(io(&path))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::config::SimConfig;
    use crate::generate::workload::generate;

    fn entry() -> Entry {
        let config = SimConfig {
            users: 2,
            ops: 5,
            ..SimConfig::default()
        };
        Entry {
            version: POOL_VERSION,
            target: "core".into(),
            runtime_seed: Seed(9),
            features: ["a>b".to_owned()].into_iter().collect(),
            plan: generate(&config, Seed(3)),
        }
    }

    #[test]
    fn an_entry_survives_the_round_trip_and_a_bad_file_is_named() {
        let dir = std::env::temp_dir().join(format!("wsreg-pool-{}", std::process::id()));
        let e = entry();
        save(&dir, &e).expect("saved");
        assert_eq!(load(&dir).expect("loaded"), vec![e.clone()]);
        assert!(e.fits("core", &e.plan) && !e.fits("B3", &e.plan));
        std::fs::write(dir.join("zz.json"), "{\"version\": 1}").expect("written");
        let err = load(&dir).expect_err("a bad entry is refused").to_string();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            err.contains("zz.json") && err.contains("not an entry of a pool"),
            "{err}"
        );
    }
}
