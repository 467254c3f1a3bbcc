//! [`Seed`]: one number in, every other choice derived from it through labelled child seeds.

use std::fmt;
use std::str::FromStr;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use thiserror::Error;

/// The one input of a simulated run. Printed as `0x…`; parsed from decimal or `0x` hex.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seed(pub u64);

/// A seed that did not parse.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{0:?} is not a seed: give a decimal number or 0x-prefixed hex")]
pub struct SeedError(pub String);

impl FromStr for Seed {
    type Err = SeedError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().replace('_', "");
        let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => t.parse::<u64>(),
        };
        parsed.map(Seed).map_err(|_| SeedError(s.to_owned()))
    }
}

impl serde::Serialize for Seed {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for Seed {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// splitmix64's finaliser: a bijective mix, so distinct inputs give distinct outputs.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Seed {
    /// The child seed for one component (`"config"`, `"workload"`, `"runtime"`...). Children depend
    /// only on the parent and the label, so adding a component never shifts the others.
    pub fn child(self, label: &str) -> Seed {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325; // FNV-1a over the label
        for b in label.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Seed(mix(self.0 ^ mix(h)))
    }

    /// A portable, named RNG (ChaCha8) for one component.
    pub fn rng(self, label: &str) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(self.child(label).0)
    }
}

/// A half-open range of seeds, `A..B`, or a single seed `A` (meaning `A..A+1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedRange {
    /// First seed.
    pub start: u64,
    /// One past the last seed.
    pub end: u64,
}

impl FromStr for SeedRange {
    type Err = SeedError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (start, end) = match s.split_once("..") {
            Some((a, b)) => (a.parse::<Seed>()?.0, b.parse::<Seed>()?.0),
            None => {
                let a = s.parse::<Seed>()?.0;
                (a, a.saturating_add(1))
            }
        };
        if end <= start {
            return Err(SeedError(format!("{s} (the range is empty)")));
        }
        Ok(SeedRange { start, end })
    }
}

impl SeedRange {
    /// How many seeds.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Whether it has no seed.
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// The seeds of shard `index` of `count`: every `count`-th seed, so `count` machines cover
    /// the range exactly once between them.
    pub fn shard(&self, index: u64, count: u64) -> impl Iterator<Item = Seed> {
        let (count, start) = (count.max(1), self.start);
        (0..self.shard_len(index, count)).map(move |i| Seed(start + index + i * count))
    }

    /// How many seeds shard `index` of `count` holds.
    pub fn shard_len(&self, index: u64, count: u64) -> u64 {
        let count = count.max(1);
        let first = self.start.saturating_add(index);
        if first >= self.end {
            0
        } else {
            (self.end - first - 1) / count + 1
        }
    }

    /// Seed number `i` of shard `index` of `count`.
    pub fn nth_in_shard(&self, index: u64, count: u64, i: u64) -> Seed {
        Seed(self.start + index + i * count.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_decimal_and_hex_and_ranges() {
        assert_eq!("42".parse::<Seed>(), Ok(Seed(42)));
        assert_eq!("0x2A".parse::<Seed>(), Ok(Seed(42)));
        assert!("x".parse::<Seed>().is_err());
        assert_eq!(
            "0..0x10".parse::<SeedRange>(),
            Ok(SeedRange { start: 0, end: 16 })
        );
        assert!("5..5".parse::<SeedRange>().is_err());
        assert_eq!("7".parse::<SeedRange>().unwrap().len(), 1);
    }

    #[test]
    fn children_are_distinct_and_stable() {
        let s = Seed(1);
        assert_ne!(s.child("workload"), s.child("runtime"));
        assert_ne!(s.child("workload"), Seed(2).child("workload"));
        // Pinned: a change here changes every recorded seed's meaning.
        assert_eq!(Seed(0).child("runtime"), Seed(1777879451275523015));
        assert_eq!(Seed(0x2a).child("runtime"), Seed(12554016060724579046));
    }

    #[test]
    fn shards_cover_the_range_exactly_once() {
        let r = SeedRange { start: 10, end: 47 };
        let mut all: Vec<u64> = (0..4).flat_map(|i| r.shard(i, 4)).map(|s| s.0).collect();
        all.sort();
        assert_eq!(all, (10..47).collect::<Vec<_>>());
        assert_eq!((0..4).map(|i| r.shard_len(i, 4)).sum::<u64>(), 37);
        // A huge range is never materialised.
        let huge = SeedRange {
            start: 0,
            end: u64::MAX,
        };
        assert_eq!(huge.shard_len(0, 1), u64::MAX);
        assert_eq!(huge.shard(3, 4).nth(2), Some(Seed(11)));
        assert_eq!(SeedRange { start: 5, end: 6 }.shard_len(2, 4), 0);
    }
}
