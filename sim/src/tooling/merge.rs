//! Merging the summaries of a campaign's shards (`fuzz --shard i/n --json FILE` on n machines)
//! into one: they must be of one campaign (format version, target, transport, seed range), and
//! between them cover the range exactly once; failures that shrank to the same snapshot (the
//! same invariant and shrunk plan) are one failure, whichever shards found it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::check::outcome::Outcome;
use crate::generate::seed::{Seed, SeedRange};
use crate::tooling::campaign::{FailureGroup, SUMMARY_VERSION};

/// One shard's summary, as `fuzz --json` wrote it (fields merge does not need are ignored).
#[derive(Debug, Deserialize)]
pub struct ShardSummary {
    /// The format's version.
    pub version: u32,
    /// What ran.
    pub target: String,
    /// Whether through the network.
    pub network: bool,
    /// The whole campaign's range.
    pub range: String,
    /// This shard, `i/n`.
    pub shard: String,
    /// Seeds it ran.
    pub seeds_run: u64,
    /// Whether its time budget cut it short.
    pub stopped_by_budget: bool,
    /// Wall seconds.
    pub wall_s: f64,
    /// Steps.
    pub steps: u64,
    /// Failures by kind.
    pub failures: BTreeMap<String, FailureGroup>,
    /// Coverage.
    pub coverage: BTreeMap<String, u64>,
    /// Its failing seeds.
    pub failing: Vec<ShardSeed>,
}

/// A failing seed.
#[derive(Clone, Debug, Deserialize)]
pub struct ShardSeed {
    /// The seed.
    pub seed: Seed,
    /// How it ended.
    pub outcome: Outcome,
}

/// One failure of the merged campaign.
#[derive(Clone, Debug, Serialize)]
pub struct MergedFailure {
    /// The kind (`I2 one-manager-per-user`, `NONDETERMINISM`...).
    pub kind: String,
    /// The snapshot it shrank to, if shrunk.
    pub snapshot: Option<String>,
    /// Seeds that failed this way, over the shards that found it.
    pub count: u64,
    /// The lowest.
    pub first_seed: Seed,
    /// Its message.
    pub message: String,
    /// The shards that found it.
    pub shards: Vec<String>,
    /// Every shard that found it had it in its store already (`fuzz --store`): it is not new,
    /// and it does not fail the merge, as it did not fail those shards.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub known: bool,
}

/// The merged campaign.
#[derive(Clone, Debug, Serialize)]
pub struct Merged {
    /// [`SUMMARY_VERSION`].
    pub version: u32,
    /// What ran.
    pub target: String,
    /// Whether through the network.
    pub network: bool,
    /// The range.
    pub range: String,
    /// The shards merged, `i/n`.
    pub shards: Vec<String>,
    /// Seeds run over all shards.
    pub seeds_run: u64,
    /// Seeds of the range no shard ran (their shards' time budgets ran out).
    pub seeds_missing: u64,
    /// Wall seconds, summed.
    pub wall_s: f64,
    /// Steps, summed.
    pub steps: u64,
    /// Failures, one per kind and snapshot.
    pub failures: Vec<MergedFailure>,
    /// Coverage, summed.
    pub coverage: BTreeMap<String, u64>,
    /// The exit code `fuzz` would give the whole campaign.
    pub exit_code: i32,
}

impl Merged {
    /// What `merge` prints: the coverage of the range, then each failure.
    pub fn report(&self) -> String {
        let mut out = format!(
            "merged: {} shard(s) of {} against {}{}: {} seeds run{}\n",
            self.shards.len(),
            self.range,
            self.target,
            if self.network { " (network)" } else { "" },
            self.seeds_run,
            if self.seeds_missing == 0 {
                ", the range covered exactly once".to_owned()
            } else {
                format!(
                    ", {} seed(s) unrun (a time budget ran out); no seed twice",
                    self.seeds_missing
                )
            }
        );
        out.push_str(if self.failures.is_empty() {
            "failures: none\n"
        } else {
            "failures:\n"
        });
        for f in &self.failures {
            out.push_str(&format!(
                "  {}: {} seed(s), first {} (shards {}){}{}: {}\n",
                f.kind,
                f.count,
                f.first_seed,
                f.shards.join(", "),
                f.snapshot
                    .as_ref()
                    .map_or(String::new(), |s| format!(", snapshot {s}")),
                if f.known { ", known to the store" } else { "" },
                f.message
            ));
        }
        out
    }
}

/// Why shards would not merge.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// No file given.
    #[error("give at least one shard summary")]
    Empty,
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not a summary of this format.
    #[error("{path}: not a campaign summary (`fuzz --json`): {source}")]
    Parse {
        /// The file.
        path: String,
        /// Why.
        source: serde_json::Error,
    },
    /// A summary of another format version.
    #[error("{path}: summary format version {found}, this build reads version {SUMMARY_VERSION}")]
    Version {
        /// The file.
        path: String,
        /// Its version.
        found: u32,
    },
    /// Two summaries are of different campaigns.
    #[error("{a} and {b} are of different campaigns: {what} {x:?} against {y:?}")]
    Mismatch {
        /// The first file.
        a: String,
        /// The other.
        b: String,
        /// What differs.
        what: &'static str,
        /// Its value in `a`.
        x: String,
        /// In `b`.
        y: String,
    },
    /// A malformed field.
    #[error("{path}: {problem}")]
    Field {
        /// The file.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// Two shards ran the same seeds.
    #[error(
        "the shards overlap: {count} seed(s) ran more than once, first {first} (in {a} and {b})"
    )]
    Overlap {
        /// Seeds run twice or more.
        count: u64,
        /// The lowest.
        first: Seed,
        /// One shard that ran it.
        a: String,
        /// Another.
        b: String,
    },
    /// Seeds no shard ran, though no shard ran out of time.
    #[error(
        "the shards leave {count} seed(s) of {range} unrun, first {first}: a shard is missing"
    )]
    Gap {
        /// Seeds no shard ran.
        count: u64,
        /// The lowest.
        first: Seed,
        /// The range.
        range: String,
    },
    /// The range is too large to check seed by seed.
    #[error("{range} has too many seeds to check coverage seed by seed (at most {MAX_SEEDS})")]
    TooLarge {
        /// The range.
        range: String,
    },
}

/// The most seeds a merged range may hold (coverage is checked seed by seed).
pub const MAX_SEEDS: u64 = 50_000_000;

/// Reads and merges the summaries at `paths`.
pub fn merge_files(paths: &[PathBuf]) -> Result<Merged, MergeError> {
    let mut shards = Vec::new();
    for path in paths {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| MergeError::Read {
            path: shown.clone(),
            source,
        })?;
        shards.push((shown, parse(&text, path)?));
    }
    merge(&shards)
}

fn parse(text: &str, path: &Path) -> Result<ShardSummary, MergeError> {
    let shown = path.display().to_string();
    // The version first, so a summary of another version says so rather than naming a field.
    #[derive(Deserialize)]
    struct Versioned {
        version: Option<u32>,
    }
    let parse_error = |source| MergeError::Parse {
        path: shown.clone(),
        source,
    };
    let v: Versioned = serde_json::from_str(text).map_err(parse_error)?;
    match v.version {
        Some(SUMMARY_VERSION) => serde_json::from_str(text).map_err(parse_error),
        found => Err(MergeError::Version {
            path: shown.clone(),
            found: found.unwrap_or(0),
        }),
    }
}

fn shard_of(path: &str, s: &ShardSummary) -> Result<(u64, u64), MergeError> {
    let bad = || MergeError::Field {
        path: path.to_owned(),
        problem: format!("shard {:?} is not i/n with i < n", s.shard),
    };
    let (i, n) = s.shard.split_once('/').ok_or_else(bad)?;
    let (i, n): (u64, u64) = (i.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

/// Merges shard summaries, each with the name it is reported by.
pub fn merge(shards: &[(String, ShardSummary)]) -> Result<Merged, MergeError> {
    let (first_path, first) = shards.first().ok_or(MergeError::Empty)?;
    for (path, s) in &shards[1..] {
        let differ = |what, x: String, y: String| {
            (x != y).then(|| MergeError::Mismatch {
                a: first_path.clone(),
                b: path.clone(),
                what,
                x,
                y,
            })
        };
        let checks = [
            differ("target", first.target.clone(), s.target.clone()),
            differ(
                "transport",
                transport(first.network).into(),
                transport(s.network).into(),
            ),
            differ("seed range", first.range.clone(), s.range.clone()),
        ];
        if let Some(e) = checks.into_iter().flatten().next() {
            return Err(e);
        }
    }
    let range: SeedRange = first.range.parse().map_err(|e| MergeError::Field {
        path: first_path.clone(),
        problem: format!("seed range {:?}: {e}", first.range),
    })?;
    if range.len() > MAX_SEEDS {
        return Err(MergeError::TooLarge {
            range: first.range.clone(),
        });
    }
    // Which shard ran each seed: a shard runs its seeds in order, so a shard cut short by its
    // time budget ran a prefix of them.
    let mut ran: BTreeMap<u64, usize> = BTreeMap::new();
    let mut overlap: Option<(u64, u64, usize, usize)> = None;
    for (k, (path, s)) in shards.iter().enumerate() {
        let (i, n) = shard_of(path, s)?;
        if s.seeds_run > range.shard_len(i, n) {
            return Err(MergeError::Field {
                path: path.clone(),
                problem: format!(
                    "{} seeds run, more than shard {} of {} holds",
                    s.seeds_run, s.shard, s.range
                ),
            });
        }
        for seed in range.shard(i, n).take(s.seeds_run as usize) {
            if let Some(before) = ran.insert(seed.0, k) {
                let o = overlap.get_or_insert((0, seed.0, before, k));
                o.0 += 1;
            }
        }
    }
    if let Some((count, first, a, b)) = overlap {
        return Err(MergeError::Overlap {
            count,
            first: Seed(first),
            a: shards[a].0.clone(),
            b: shards[b].0.clone(),
        });
    }
    let missing = range.len() - ran.len() as u64;
    if missing > 0 && !shards.iter().any(|(_, s)| s.stopped_by_budget) {
        let unrun = (range.start..range.end)
            .find(|s| !ran.contains_key(s))
            .unwrap_or(range.start);
        return Err(MergeError::Gap {
            count: missing,
            first: Seed(unrun),
            range: first.range.clone(),
        });
    }
    Ok(combine(shards, missing))
}

fn transport(network: bool) -> &'static str {
    if network {
        "network"
    } else {
        "in process"
    }
}

fn combine(shards: &[(String, ShardSummary)], missing: u64) -> Merged {
    let first = &shards[0].1;
    let mut failures: BTreeMap<(String, Option<String>), MergedFailure> = BTreeMap::new();
    let mut coverage = BTreeMap::new();
    for (_, s) in shards {
        for (kind, f) in &s.failures {
            let key = (kind.clone(), f.snapshot.clone());
            let merged = failures.entry(key).or_insert_with(|| MergedFailure {
                kind: kind.clone(),
                snapshot: f.snapshot.clone(),
                count: 0,
                first_seed: f.first_seed,
                message: f.message.clone(),
                shards: Vec::new(),
                known: true,
            });
            merged.known &= f.known;
            merged.count += f.count;
            merged.shards.push(s.shard.clone());
            if f.first_seed.0 < merged.first_seed.0 {
                merged.first_seed = f.first_seed;
                merged.message = f.message.clone();
            }
        }
        for (point, hits) in &s.coverage {
            *coverage.entry(point.clone()).or_insert(0) += hits;
        }
    }
    let failures: Vec<MergedFailure> = failures.into_values().collect();
    // As `fuzz` exits: only failures new to the shards' stores count.
    let exit_code = crate::check::outcome::campaign_exit(
        failures.iter().map(|f| (f.kind.as_str(), f.known)),
        shards
            .iter()
            .flat_map(|(_, s)| &s.failing)
            .map(|r| (r.seed.0, &r.outcome)),
    )
    .code();
    Merged {
        version: SUMMARY_VERSION,
        target: first.target.clone(),
        network: first.network,
        range: first.range.clone(),
        shards: shards.iter().map(|(_, s)| s.shard.clone()).collect(),
        seeds_run: shards.iter().map(|(_, s)| s.seeds_run).sum(),
        seeds_missing: missing,
        wall_s: shards.iter().map(|(_, s)| s.wall_s).sum(),
        steps: shards.iter().map(|(_, s)| s.steps).sum(),
        failures,
        coverage,
        exit_code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(shard: &str, seeds_run: u64, failures: &[(&str, u64, Option<&str>)]) -> ShardSummary {
        shard_knowing(shard, seeds_run, failures, false)
    }

    fn shard_knowing(
        shard: &str,
        seeds_run: u64,
        failures: &[(&str, u64, Option<&str>)],
        known: bool,
    ) -> ShardSummary {
        ShardSummary {
            version: SUMMARY_VERSION,
            target: "B3".into(),
            network: false,
            range: "0x0..0xa".into(),
            shard: shard.into(),
            seeds_run,
            stopped_by_budget: false,
            wall_s: 1.0,
            steps: 10,
            failures: failures
                .iter()
                .map(|&(kind, first, snap)| {
                    let f = FailureGroup {
                        count: 1,
                        first_seed: Seed(first),
                        message: format!("at {first}"),
                        snapshot: snap.map(str::to_owned),
                        known,
                    };
                    (kind.to_owned(), f)
                })
                .collect(),
            coverage: BTreeMap::new(),
            failing: failures
                .iter()
                .map(|&(_, first, _)| ShardSeed {
                    seed: Seed(first),
                    outcome: Outcome::Stuck {
                        blocked: Vec::new(),
                    },
                })
                .collect(),
        }
    }

    #[test]
    fn failures_every_shard_knew_do_not_fail_the_merge_and_a_new_one_does() {
        // The labels match the outcome the helper files for each failing seed (stuck, I10).
        let i10 = "I10 liveness";
        let known = |s| shard_knowing(s, 5, &[(i10, 2, Some("I10-liveness-aaaa"))], true);
        let m = merge(&[("a".into(), known("0/2")), ("b".into(), known("1/2"))]).unwrap();
        assert_eq!(m.failures.len(), 1);
        assert!(m.failures[0].known);
        assert_eq!(
            m.exit_code,
            crate::check::outcome::Exit::Pass.code(),
            "{m:?}"
        );
        // One shard found it new (it wrote it to the store): the campaign has a new failure.
        let fresh = shard_knowing("1/2", 5, &[(i10, 3, Some("I10-liveness-aaaa"))], false);
        let m = merge(&[("a".into(), known("0/2")), ("b".into(), fresh)]).unwrap();
        assert!(!m.failures[0].known);
        assert_eq!(
            m.exit_code,
            crate::check::outcome::Exit::Stuck.code(),
            "{m:?}"
        );
    }

    #[test]
    fn the_same_shrunk_failure_from_two_shards_is_one_and_a_new_plan_is_another() {
        let i2 = "I2 one-manager-per-user";
        let a = shard("0/2", 5, &[(i2, 2, Some("I2-x-aaaa"))]);
        let b = shard("1/2", 5, &[(i2, 1, Some("I2-x-aaaa"))]);
        let m = merge(&[("a".into(), a), ("b".into(), b)]).unwrap();
        assert_eq!(m.failures.len(), 1);
        assert_eq!(
            (m.failures[0].count, m.failures[0].first_seed),
            (2, Seed(1))
        );
        assert_eq!(m.seeds_run, 10);
        let a = shard("0/2", 5, &[(i2, 2, Some("I2-x-aaaa"))]);
        let b = shard("1/2", 5, &[(i2, 1, Some("I2-x-bbbb"))]);
        let m = merge(&[("a".into(), a), ("b".into(), b)]).unwrap();
        assert_eq!(m.failures.len(), 2);
    }

    #[test]
    fn overlapping_gapped_and_foreign_shards_are_refused() {
        let overlap = merge(&[
            ("a".into(), shard("0/2", 5, &[])),
            ("b".into(), shard("0/2", 5, &[])),
        ]);
        assert!(
            matches!(overlap, Err(MergeError::Overlap { count: 5, .. })),
            "{overlap:?}"
        );
        let gap = merge(&[("a".into(), shard("0/2", 5, &[]))]);
        assert!(
            matches!(gap, Err(MergeError::Gap { count: 5, .. })),
            "{gap:?}"
        );
        let mut other = shard("1/2", 5, &[]);
        other.target = "core".into();
        let foreign = merge(&[("a".into(), shard("0/2", 5, &[])), ("b".into(), other)]);
        assert!(matches!(
            foreign,
            Err(MergeError::Mismatch { what: "target", .. })
        ));
        // A shard cut short by its time budget leaves a gap that is reported, not refused.
        let mut short = shard("1/2", 3, &[]);
        short.stopped_by_budget = true;
        let m = merge(&[("a".into(), shard("0/2", 5, &[])), ("b".into(), short)]).unwrap();
        assert_eq!(m.seeds_missing, 2);
    }

    #[test]
    fn a_summary_of_another_version_says_so() {
        let err = parse(r#"{"version": 9, "target": "core"}"#, Path::new("s.json")).unwrap_err();
        assert!(err.to_string().contains("version 9"), "{err}");
        let err = parse("[]", Path::new("s.json")).unwrap_err();
        assert!(matches!(err, MergeError::Parse { .. }), "{err}");
    }
}
