//! [`StoreModel`]: what the store's scripts do, as plain data and one pure function per script.
//!
//! Every store of the seam has these semantics: the in-process [`MemoryStore`] runs this model,
//! the simulator's store node runs it behind madsim's network, and the Redis store runs Lua
//! scripts written to do the same, which a differential test checks reply by reply against
//! this model on a real `redis-server`.
//!
//! Per user the store keeps a meta record (the stream's epoch and head, and the store's lineage
//! when the epoch began), the stream's retained entries (position, payload, the time of the
//! append) and, per append, its idempotency key.
//!
//! **Lineage.** A store that may have lost its newest writes (a replica promoted after an
//! asynchronous failover, a restart without persistence) continues under a new lineage (in
//! Redis, its replication id). A stream whose meta record was written under another lineage
//! is never continued: it is started again under a new epoch, as if it had been lost, because
//! continuing it would hand out again positions some clients already read with other
//! messages. Its clients are then told the epoch changed, and what they can no longer get.
//! Times are milliseconds on the caller's clock, passed in with each operation, so the model
//! is a pure function of the operations it is given.
//!
//! [`MemoryStore`]: super::MemoryStore

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

/// The bounds every operation applies: the history's count and age, and how long an idle
/// user's stream (and an idempotency key) is kept at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bounds {
    /// Entries retained per user (Redis: `XTRIM MAXLEN`, exact).
    pub capacity: u64,
    /// Entries older than this (by their append time) are let go (Redis: `XTRIM MINID`).
    pub max_age_ms: u64,
    /// How long a user's stream outlives its last append, and how long an append's
    /// idempotency key is remembered (Redis: `PEXPIRE`, `SET PX`).
    pub ttl_ms: u64,
}

/// One operation on the store, as plain data (the differential test generates these).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Appends `payload` to `user`'s stream. `fresh` is the epoch to start if the user has no
    /// stream; `idem` names the append, so that the same append retried is stored once.
    Append {
        /// The user's key.
        user: String,
        /// The append's idempotency key.
        idem: String,
        /// The message, opaque to the store.
        payload: String,
        /// The epoch to start if the stream does not exist.
        fresh: String,
        /// The caller's clock.
        now_ms: u64,
    },
    /// Reads up to `limit` entries after `after`, with the stream's epoch, head and oldest
    /// retained position; starts the stream (epoch `fresh`, empty) if it does not exist.
    Read {
        /// The user's key.
        user: String,
        /// The last position the reader has.
        after: u64,
        /// Most entries returned.
        limit: u64,
        /// The epoch to start if the stream does not exist.
        fresh: String,
        /// The caller's clock.
        now_ms: u64,
    },
    /// Takes, or renews, `holder`'s lease on one of `user`'s connection slots until
    /// `now_ms + lease_ms`; granted when `holder` holds one already or fewer than `limit`
    /// unexpired leases are held (Redis: a sorted set scored by expiry).
    Lease {
        /// The user's key.
        user: String,
        /// Who holds it (a node's connection).
        holder: String,
        /// The per-user connection limit.
        limit: u64,
        /// The caller's clock.
        now_ms: u64,
        /// How long the lease lasts unless renewed.
        lease_ms: u64,
    },
    /// Gives `holder`'s lease on one of `user`'s slots back.
    Release {
        /// The user's key.
        user: String,
        /// Who held it.
        holder: String,
    },
    /// Forgets everything (Redis: `FLUSHALL`; a store restarted without persistence).
    Flush,
    /// A failover to a replica that had not received the newest `lose` writes of each stream:
    /// they are gone, the epochs and heads rolled back with them, and the store continues
    /// under a new lineage (Redis: the promoted replica's new replication id). Not something
    /// a node asks for: the simulator's store plays it as a fault.
    Failover {
        /// Writes lost from the end of each stream.
        lose: u64,
    },
    /// One of `user`'s keys dropped, as Redis evicts under `maxmemory` with an eviction
    /// policy: the meta record (`history: false`: the entries linger, but nothing names their
    /// epoch any more, so the stream is started again) or the history (`history: true`: the
    /// epoch and head stay, the entries are gone). Not something a node asks for: the
    /// simulator's store plays it as a fault (Redis: `DEL` of the key).
    Evict {
        /// The user's key.
        user: String,
        /// The history rather than the meta record.
        history: bool,
    },
}

/// The reply to an [`Op`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// Where an append was stored; `duplicate` when the idempotency key was seen in this epoch
    /// (nothing was stored again).
    Appended {
        /// The stream's epoch.
        epoch: String,
        /// The append's position.
        seq: u64,
        /// Whether this append had been stored before.
        duplicate: bool,
    },
    /// What a read found.
    Range {
        /// The stream's epoch.
        epoch: String,
        /// The last position appended.
        head: u64,
        /// The oldest position retained (`head + 1` when nothing is).
        first: u64,
        /// The entries after `after`, oldest first, at most `limit`.
        entries: Vec<(u64, String)>,
    },
    /// Whether a lease was granted, and how many unexpired leases the user's slots hold now.
    Leased {
        /// Granted (taken or renewed).
        granted: bool,
        /// Leases held after it.
        held: u64,
    },
    /// A lease was given back (or was not held).
    Released,
    /// The store forgot everything.
    Flushed,
    /// The store failed over.
    FailedOver,
    /// A key was evicted (or was not there).
    Evicted,
}

/// What an append makes the store publish to the user's live channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish {
    /// The user's key.
    pub user: String,
    /// The stream's epoch.
    pub epoch: String,
    /// The entry's position.
    pub seq: u64,
    /// The message.
    pub payload: String,
}

#[derive(Clone, Debug)]
struct Entry {
    seq: u64,
    payload: String,
    at_ms: u64,
}

#[derive(Clone, Debug, Default)]
struct Stream {
    /// `None`: no meta record (the stream does not exist, whatever entries linger).
    epoch: Option<String>,
    head: u64,
    entries: VecDeque<Entry>,
    /// When the stream's keys expire (the caller's clock).
    expires_ms: u64,
    /// The store's lineage when the epoch began.
    lineage: u64,
}

/// The store's state: every user's stream and the idempotency keys, and the scripts as
/// methods. Deterministic: the same operations give the same replies.
///
/// ```
/// use wsreg::store::model::{Bounds, Op, Reply, StoreModel};
/// let bounds = Bounds { capacity: 2, max_age_ms: 60_000, ttl_ms: 3_600_000 };
/// let mut store = StoreModel::new(bounds);
/// let append = |idem: &str, payload: &str| Op::Append {
///     user: "alice".into(), idem: idem.into(), payload: payload.into(),
///     fresh: "7.1".into(), now_ms: 0,
/// };
/// for (i, p) in ["a", "b", "c"].iter().enumerate() {
///     store.apply(&append(&format!("k{i}"), p));
/// }
/// // A retried append is stored once.
/// let again = store.apply(&append("k2", "c")).0;
/// assert_eq!(again, Reply::Appended { epoch: "7.1".into(), seq: 3, duplicate: true });
/// // The history keeps two entries.
/// let read = Op::Read { user: "alice".into(), after: 0, limit: 10, fresh: "8.1".into(), now_ms: 0 };
/// let Reply::Range { first, head, entries, .. } = store.apply(&read).0 else { unreachable!() };
/// assert_eq!((first, head, entries.len()), (2, 3, 2));
/// ```
#[derive(Clone, Debug)]
pub struct StoreModel {
    bounds: Bounds,
    streams: BTreeMap<String, Stream>,
    /// Idempotency keys: (user, key) -> (epoch, seq, expiry).
    idem: BTreeMap<(String, String), (String, u64, u64)>,
    /// Connection-slot leases: user -> holder -> expiry.
    leases: BTreeMap<String, BTreeMap<String, u64>>,
    /// The store's lineage (see the module docs).
    lineage: u64,
}

impl StoreModel {
    /// An empty store applying `bounds`.
    pub fn new(bounds: Bounds) -> Self {
        Self {
            bounds,
            streams: BTreeMap::new(),
            idem: BTreeMap::new(),
            leases: BTreeMap::new(),
            lineage: 0,
        }
    }

    /// The bounds it applies.
    pub fn bounds(&self) -> Bounds {
        self.bounds
    }

    /// Applies one operation; returns its reply and what it published, if anything.
    pub fn apply(&mut self, op: &Op) -> (Reply, Option<Publish>) {
        match op {
            Op::Append {
                user,
                idem,
                payload,
                fresh,
                now_ms,
            } => self.append(user, idem, payload, fresh, *now_ms),
            Op::Read {
                user,
                after,
                limit,
                fresh,
                now_ms,
            } => (self.read(user, *after, *limit, fresh, *now_ms), None),
            Op::Lease {
                user,
                holder,
                limit,
                now_ms,
                lease_ms,
            } => {
                let held = self.leases.entry(user.clone()).or_default();
                held.retain(|_, expiry| *expiry > *now_ms);
                let granted = held.contains_key(holder) || (held.len() as u64) < *limit;
                if granted {
                    held.insert(holder.clone(), now_ms.saturating_add(*lease_ms));
                }
                let held = held.len() as u64;
                (Reply::Leased { granted, held }, None)
            }
            Op::Release { user, holder } => {
                if let Some(held) = self.leases.get_mut(user) {
                    held.remove(holder);
                }
                (Reply::Released, None)
            }
            Op::Flush => {
                self.streams.clear();
                self.idem.clear();
                self.leases.clear();
                self.lineage += 1;
                (Reply::Flushed, None)
            }
            Op::Failover { lose } => {
                for s in self.streams.values_mut() {
                    let head = s.head.saturating_sub(*lose);
                    s.entries.retain(|e| e.seq <= head);
                    s.head = head;
                }
                self.lineage += 1;
                (Reply::FailedOver, None)
            }
            Op::Evict { user, history } => {
                if let Some(s) = self.streams.get_mut(user) {
                    if *history {
                        s.entries.clear();
                    } else {
                        s.epoch = None;
                    }
                }
                (Reply::Evicted, None)
            }
        }
    }

    /// The users whose streams the store holds (or whose keys linger), in key order.
    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.streams.keys().map(String::as_str)
    }

    /// The user's stream, expired keys forgotten, started as `fresh` if it does not exist.
    fn open(&mut self, user: &str, fresh: &str, now_ms: u64) -> &mut Stream {
        let ttl = self.bounds.ttl_ms;
        let lineage = self.lineage;
        let s = self.streams.entry(user.to_owned()).or_default();
        if s.epoch.is_some() && (s.expires_ms <= now_ms || s.lineage != lineage) {
            *s = Stream::default();
        }
        if s.epoch.is_none() {
            // A stream without its meta record is never continued: its entries may belong to
            // an epoch nobody can name any more. Nor is one of another lineage: it may have
            // lost its newest writes.
            *s = Stream {
                epoch: Some(fresh.to_owned()),
                head: 0,
                entries: VecDeque::new(),
                expires_ms: now_ms.saturating_add(ttl),
                lineage,
            };
        }
        s
    }

    fn append(
        &mut self,
        user: &str,
        idem: &str,
        payload: &str,
        fresh: &str,
        now_ms: u64,
    ) -> (Reply, Option<Publish>) {
        let bounds = self.bounds;
        let epoch = self
            .open(user, fresh, now_ms)
            .epoch
            .clone()
            .unwrap_or_default();
        let key = (user.to_owned(), idem.to_owned());
        if let Some((e, seq, expires)) = self.idem.get(&key) {
            if *expires > now_ms && *e == epoch {
                let reply = Reply::Appended {
                    epoch,
                    seq: *seq,
                    duplicate: true,
                };
                return (reply, None);
            }
        }
        let s = self.streams.get_mut(user).expect("opened above");
        s.head += 1;
        let seq = s.head;
        s.entries.push_back(Entry {
            seq,
            payload: payload.to_owned(),
            at_ms: now_ms,
        });
        trim(s, bounds, now_ms);
        s.expires_ms = now_ms.saturating_add(bounds.ttl_ms);
        let expires = now_ms.saturating_add(bounds.ttl_ms);
        self.idem.insert(key, (epoch.clone(), seq, expires));
        let publish = Publish {
            user: user.to_owned(),
            epoch: epoch.clone(),
            seq,
            payload: payload.to_owned(),
        };
        let reply = Reply::Appended {
            epoch,
            seq,
            duplicate: false,
        };
        (reply, Some(publish))
    }

    fn read(&mut self, user: &str, after: u64, limit: u64, fresh: &str, now_ms: u64) -> Reply {
        let bounds = self.bounds;
        let s = self.open(user, fresh, now_ms);
        trim(s, bounds, now_ms);
        let first = s.entries.front().map_or(s.head + 1, |e| e.seq);
        let entries = s
            .entries
            .iter()
            .filter(|e| e.seq > after)
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|e| (e.seq, e.payload.clone()))
            .collect();
        Reply::Range {
            epoch: s.epoch.clone().unwrap_or_default(),
            head: s.head,
            first,
            entries,
        }
    }
}

/// Lets go of entries beyond the count, then of the oldest ones older than the age bound (up
/// to the first young one, so the history stays contiguous).
fn trim(s: &mut Stream, bounds: Bounds, now_ms: u64) {
    while s.entries.len() as u64 > bounds.capacity {
        s.entries.pop_front();
    }
    let cutoff = now_ms.saturating_sub(bounds.max_age_ms);
    while s.entries.front().is_some_and(|e| e.at_ms < cutoff) {
        s.entries.pop_front();
    }
}
