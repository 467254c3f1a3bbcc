//! A store of known failures (`fuzz --store DIR`): the snapshots a campaign has shrunk its
//! failures into, kept between runs (a nightly job's cache), so each run reports only what is
//! new.
//!
//! **Known** means the same bug, not the same seed: a failure is known when the store holds a
//! snapshot against the same target, over the same transport (in process or through the
//! network), that fails with the same [signature](crate::check::outcome::Outcome::signature): the
//! same invariant broken by the same check (or a panic raised at the same place). Other seeds
//! of one bug shrink to other plans, but they trip the same check, so a second night over new
//! seeds reports the bug as known. A stored snapshot's signature is re-derived by replaying it
//! (a shrunk plan runs in milliseconds), never read back from the file.

use std::path::Path;
use std::sync::Arc;

use crate::check::outcome::Outcome;
use crate::run::recorder::Keep;
use crate::run::runtime::RuntimeError;
use crate::tooling::snapshot::{Snapshot, SnapshotError};
use crate::tooling::target::Target;

/// Why the store could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory could not be listed.
    #[error("reading the store {path}: {source}")]
    Read {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A stored snapshot could not be read.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// A stored snapshot could not be replayed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// The name of a stored snapshot that fails like `outcome` (a failure of `target`, in process
/// or through the network as `network` says), if the store at `dir` holds one. A store that
/// does not exist yet holds nothing.
pub fn alike(
    dir: &Path,
    target: &Target,
    network: bool,
    outcome: &Outcome,
) -> Result<Option<String>, StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StoreError::Read {
                path: dir.display().to_string(),
                source,
            })
        }
    };
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "snap"))
        .collect();
    paths.sort();
    let signature = outcome.signature();
    let prefix = format!("{}-", crate::tooling::snapshot::kind_of(outcome));
    for path in paths {
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        if !stem.is_some_and(|s| s.starts_with(&prefix)) {
            continue;
        }
        let snap = Snapshot::load(&path)?;
        if snap.target != target.name() || snap.plan.net.is_some() != network {
            continue;
        }
        let replayed = target.run(Arc::new(snap.plan), snap.runtime_seed, Keep::Tail(1))?;
        if replayed.outcome.signature() == signature {
            return Ok(Some(snap.name));
        }
    }
    Ok(None)
}
