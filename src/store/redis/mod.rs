//! [`RedisStore`]: the stream store on Redis (or Redis Cluster), one Lua script per operation.
//!
//! Keys, all hash-tagged with the user (`{user}`) so one user's keys live on one Cluster slot
//! and each script touches one slot:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `wsreg:{<user>}:meta` | hash | `epoch` (the stream's epoch, `<boot>.<n>`), `head` (the last position) and `lineage` (the server's replication id when the epoch began) |
//! | `wsreg:{<user>}:stream` | stream | one entry per retained message, id `<seq>-0`, fields `p` (the message, JSON) and `t` (append time, ms) |
//! | `wsreg:{<user>}:idem:<key>` | string | `<epoch> <seq>` of the append named `<key>`, for `ttl` |
//! | `wsreg:{<user>}:live` | channel | `<epoch> <seq> <message>` for every append |
//! | `wsreg:{<user>}:conns` | sorted set | one member per connection a node holds for the user (`<node boot>-<n>`), scored by its lease's expiry (ms); expires with the last lease |
//!
//! The stream is bounded by `MAXLEN` (exact) and by age (entries older than the bound are
//! deleted from the front on every append and read); meta, stream and idempotency keys expire
//! `ttl` after the last append. A stream whose meta record is gone is never continued: the
//! next operation starts a new epoch and deletes what is left. Nor is one whose meta record
//! names another lineage than the server's replication id (`INFO replication`,
//! `master_replid`, read inside the script): a replica promoted after an asynchronous
//! failover, or a server restarted without persistence, may have lost the newest writes while
//! keeping the epoch, and continuing that epoch would hand out again positions some clients
//! already read with other messages. Its clients are told the epoch changed instead.
//!
//! The scripts do exactly what [`StoreModel`](super::model::StoreModel) does; the differential
//! test (`tests/redis.rs`) checks it reply by reply against a real `redis-server`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSubSink, PubSubStream};
use redis::{Client, Script, Value};
use tokio::sync::mpsc;

use super::model::{Bounds, Op, Reply};
use super::{decode, decode_epoch, Live, ModelStore, StoreError, StoreFuture};
use crate::identity::UserKey;
use crate::stream::Position;

/// The append script (see the module docs), after the prelude that opens a stream.
pub const APPEND_SCRIPT: &str = concat!(include_str!("open.lua"), include_str!("append.lua"));
/// The read script (see the module docs), after the prelude that opens a stream.
pub const READ_SCRIPT: &str = concat!(include_str!("open.lua"), include_str!("read.lua"));
/// The lease script (see the module docs).
pub const LEASE_SCRIPT: &str = include_str!("lease.lua");

/// How long a command may take before the store counts as unavailable.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the subscription is probed (an echo: see `subscription_loop`): a connection can
/// stay open while nothing reaches it any more (a failover behind a proxy, a frozen peer), and
/// a node must not go on serving tabs from a subscription that hears nothing.
const PROBE: Duration = Duration::from_secs(1);

/// A node's handle on a Redis holding the streams (see the module docs).
pub struct RedisStore {
    bounds: Bounds,
    commands: ConnectionManager,
    append: Script,
    read: Script,
    lease: Script,
    subscriptions: Arc<Subscriptions>,
}

#[derive(Default)]
struct Subscriptions {
    /// The users this node follows (subscribed again after a reconnect).
    users: Mutex<BTreeSet<String>>,
    /// The current subscription connection's command half, while connected.
    sink: tokio::sync::Mutex<Option<PubSubSink>>,
}

/// The three keys and the channel of one user.
struct Keys {
    meta: String,
    stream: String,
    channel: String,
    leases: String,
    prefix: String,
}

fn keys(user: &str) -> Keys {
    let prefix = format!("wsreg:{{{user}}}:");
    Keys {
        meta: format!("{prefix}meta"),
        stream: format!("{prefix}stream"),
        channel: format!("{prefix}live"),
        leases: format!("{prefix}conns"),
        prefix,
    }
}

/// The user a live channel belongs to.
fn channel_user(channel: &str) -> Option<&str> {
    channel.strip_prefix("wsreg:{")?.strip_suffix("}:live")
}

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl RedisStore {
    /// Connects to the Redis at `url` (`redis://host:port/db`), checks it answers, and starts
    /// the subscription task; returns the store and the receiver of its live messages. A Redis
    /// that cannot be reached is an error here, not later.
    pub async fn connect(
        url: &str,
        bounds: Bounds,
    ) -> Result<(Self, mpsc::UnboundedReceiver<Live>), StoreError> {
        let client = Client::open(url).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(2);
        let mut commands = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(unavailable)?;
        let _: String = redis::cmd("PING")
            .query_async(&mut commands)
            .await
            .map_err(unavailable)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let subscriptions = Arc::new(Subscriptions::default());
        // The first subscription connection is in place (with its echo channel) before the
        // store is handed out, so a subscribe right after this returns has somewhere to go.
        let echo = echo_channel();
        let stream = open_subscription(&client, &subscriptions, &echo).await?;
        // Every new subscription connection announces itself, the first one too.
        let _ = tx.send(Live::Lost);
        tokio::spawn(subscription_loop(
            client,
            stream,
            echo,
            commands.clone(),
            Arc::clone(&subscriptions),
            tx,
        ));
        let store = Self {
            bounds,
            commands,
            append: Script::new(APPEND_SCRIPT),
            read: Script::new(READ_SCRIPT),
            lease: Script::new(LEASE_SCRIPT),
            subscriptions,
        };
        Ok((store, rx))
    }

    /// Runs one operation of the model's on Redis, with the scripts production uses; what
    /// [`StoreModel::apply`](super::model::StoreModel::apply) returns for it, Redis returns
    /// (the differential test's premise). [`Op::Flush`] is `FLUSHALL`, and [`Op::Evict`] a `DEL`
    /// of the key Redis would evict: for tests only.
    pub async fn apply(&self, op: &Op) -> Result<Reply, StoreError> {
        let b = self.bounds;
        let mut conn = self.commands.clone();
        match op {
            Op::Append {
                user,
                idem,
                payload,
                fresh,
                now_ms,
            } => {
                // The key names a Redis key: nothing that could reach into another's.
                if idem.is_empty() || !idem.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                {
                    return Err(StoreError::Protocol(format!("idempotency key {idem:?}")));
                }
                let k = keys(user);
                let (epoch, seq, duplicate): (String, u64, u8) = self
                    .append
                    .key(&k.meta)
                    .key(&k.stream)
                    .key(format!("{}idem:{idem}", k.prefix))
                    .arg(payload)
                    .arg(fresh)
                    .arg(now_ms)
                    .arg(b.capacity)
                    .arg(b.max_age_ms)
                    .arg(b.ttl_ms.max(1))
                    .arg(&k.channel)
                    .invoke_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                Ok(Reply::Appended {
                    epoch,
                    seq,
                    duplicate: duplicate == 1,
                })
            }
            Op::Read {
                user,
                after,
                limit,
                fresh,
                now_ms,
            } => {
                let k = keys(user);
                let (epoch, head, first, entries): (String, u64, u64, Vec<(u64, String)>) = self
                    .read
                    .key(&k.meta)
                    .key(&k.stream)
                    .arg(after)
                    .arg(limit)
                    .arg(fresh)
                    .arg(now_ms)
                    .arg(b.capacity)
                    .arg(b.max_age_ms)
                    .arg(b.ttl_ms.max(1))
                    .invoke_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                Ok(Reply::Range {
                    epoch,
                    head,
                    first,
                    entries,
                })
            }
            Op::Lease {
                user,
                holder,
                limit,
                now_ms,
                lease_ms,
            } => {
                let (granted, held): (u8, u64) = self
                    .lease
                    .key(keys(user).leases)
                    .arg(holder)
                    .arg(limit)
                    .arg(now_ms)
                    .arg(lease_ms.max(&1))
                    .invoke_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                Ok(Reply::Leased {
                    granted: granted == 1,
                    held,
                })
            }
            Op::Release { user, holder } => {
                let _: Value = redis::cmd("ZREM")
                    .arg(keys(user).leases)
                    .arg(holder)
                    .query_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                Ok(Reply::Released)
            }
            Op::Flush => {
                let _: Value = redis::cmd("FLUSHALL")
                    .query_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                Ok(Reply::Flushed)
            }
            Op::Evict { user, history } => {
                let k = keys(user);
                let key = if *history { k.stream } else { k.meta };
                let _: Value = redis::cmd("DEL")
                    .arg(key)
                    .query_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                Ok(Reply::Evicted)
            }
            Op::Failover { .. } => Err(StoreError::Protocol(
                "a failover happens to a Redis deployment; no client can ask for one".into(),
            )),
        }
    }

    /// The bytes Redis uses for `user`'s meta record and stream (`MEMORY USAGE`).
    pub async fn memory_usage(&self, user: &UserKey) -> Result<u64, StoreError> {
        let k = keys(user.as_str());
        let mut conn = self.commands.clone();
        let mut total = 0;
        for key in [k.meta, k.stream] {
            let bytes: Option<u64> = redis::cmd("MEMORY")
                .arg("USAGE")
                .arg(key)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            total += bytes.unwrap_or(0);
        }
        Ok(total)
    }
}

/// Milliseconds of the wall clock: every node of a deployment shares it (the age bound and
/// the idempotency window are measured on it). Never used inside the simulator.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl ModelStore for RedisStore {
    fn now_ms(&self) -> u64 {
        now_ms()
    }

    fn run(&self, op: Op) -> StoreFuture<'_, Reply> {
        Box::pin(async move { self.apply(&op).await })
    }

    fn subscribe<'a>(&'a self, user: &'a UserKey) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let s = &self.subscriptions;
            s.users
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(user.as_str().to_owned());
            let mut sink = s.sink.lock().await;
            let sink = sink
                .as_mut()
                .ok_or_else(|| StoreError::Unavailable("no subscription connection".into()))?;
            sink.subscribe(keys(user.as_str()).channel)
                .await
                .map_err(unavailable)
        })
    }

    fn unsubscribe<'a>(&'a self, user: &'a UserKey) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let s = &self.subscriptions;
            s.users
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(user.as_str());
            if let Some(sink) = s.sink.lock().await.as_mut() {
                sink.unsubscribe(keys(user.as_str()).channel)
                    .await
                    .map_err(unavailable)?;
            }
            Ok(())
        })
    }
}

/// Forwards every live message; when the subscription connection is lost, connects again
/// (waiting 50 ms, doubling to 2 s), subscribes to every followed user again, and tells the
/// node its subscription was [`Live::Lost`] so it reads its mirrors' streams again.
///
/// A subscription can also go silent with its connection open and answering (a failover
/// behind a proxy, a primary demoted while the commands follow the new one): a `PING` would
/// pass. So every [`PROBE`] the loop publishes a token on a channel of this store's own
/// through the *command* connection, and counts the subscription lost when the token has not
/// come back on it within [`RESPONSE_TIMEOUT`]: the echo travels exactly the way live
/// messages do.
async fn subscription_loop(
    client: Client,
    first: PubSubStream,
    echo_channel: String,
    commands: ConnectionManager,
    subs: Arc<Subscriptions>,
    tx: mpsc::UnboundedSender<Live>,
) {
    let mut first = Some(first);
    let mut backoff = Duration::from_millis(50);
    let mut token = 0u64;
    loop {
        let mut stream = match first.take() {
            Some(stream) => stream,
            None => match open_subscription(&client, &subs, &echo_channel).await {
                Ok(stream) => {
                    if tx.send(Live::Lost).is_err() {
                        return;
                    }
                    stream
                }
                Err(_) => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            },
        };
        backoff = Duration::from_millis(50);
        let mut probe = tokio::time::interval(PROBE);
        // The token published and not heard back yet, and since when.
        let mut awaiting: Option<(String, tokio::time::Instant)> = None;
        loop {
            tokio::select! {
                biased;
                msg = stream.next() => {
                    let Some(msg) = msg else { break };
                    if msg.get_channel_name() == echo_channel {
                        let heard = msg.get_payload_bytes();
                        if awaiting.as_ref().is_some_and(|(t, _)| t.as_bytes() == heard) {
                            awaiting = None;
                        }
                        continue;
                    }
                    let Some(live) = parse(msg.get_channel_name(), msg.get_payload_bytes()) else {
                        continue;
                    };
                    if tx.send(live).is_err() {
                        return;
                    }
                }
                _ = probe.tick() => {
                    if let Some((_, since)) = &awaiting {
                        if since.elapsed() > RESPONSE_TIMEOUT {
                            break; // a subscription that no longer hears is as good as lost
                        }
                        continue;
                    }
                    token += 1;
                    let t = token.to_string();
                    let mut conn = commands.clone();
                    let mut publish = redis::cmd("PUBLISH");
                    publish.arg(&echo_channel).arg(&t);
                    // Whether or not the publish was answered: the echo decides.
                    let _ = tokio::time::timeout(
                        RESPONSE_TIMEOUT,
                        publish.query_async::<Value>(&mut conn),
                    )
                    .await;
                    awaiting = Some((t, tokio::time::Instant::now()));
                }
            }
        }
        *subs.sink.lock().await = None;
        if tx.send(Live::Lost).is_err() {
            return;
        }
    }
}

/// Opens a subscription connection, subscribes it to every user the node follows and to
/// `echo`, and makes it the one new subscriptions go to; its stream of messages.
async fn open_subscription(
    client: &Client,
    subs: &Subscriptions,
    echo: &str,
) -> Result<PubSubStream, StoreError> {
    let connection = tokio::time::timeout(RESPONSE_TIMEOUT, client.get_async_pubsub())
        .await
        .unwrap_or_else(|_| Err(timed_out()))
        .map_err(unavailable)?;
    let (mut sink, stream) = connection.split();
    let mut channels: Vec<String> = subs
        .users
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|user| keys(user).channel)
        .collect();
    channels.push(echo.to_owned());
    for channel in channels {
        tokio::time::timeout(RESPONSE_TIMEOUT, sink.subscribe(channel))
            .await
            .unwrap_or_else(|_| Err(timed_out()))
            .map_err(unavailable)?;
    }
    *subs.sink.lock().await = Some(sink);
    Ok(stream)
}

/// A channel name no other store handle uses, for its echoes: drawn from the process's
/// randomly keyed hasher, the process id and the clock.
fn echo_channel() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u64(now_ms());
    format!("wsreg:echo:{:016x}", h.finish())
}

fn timed_out() -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "the store did not answer in time",
    ))
}

/// A live message: `<epoch> <seq> <message>` on `wsreg:{<user>}:live`.
fn parse(channel: &str, bytes: &[u8]) -> Option<Live> {
    let user = UserKey::new(channel_user(channel)?).ok()?;
    let text = std::str::from_utf8(bytes).ok()?;
    let (epoch, rest) = text.split_once(' ')?;
    let (seq, payload) = rest.split_once(' ')?;
    Some(Live::Published {
        user,
        at: Position::new(decode_epoch(epoch).ok()?, seq.parse().ok()?),
        payload: decode(payload).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Payload;
    use crate::stream::Epoch;

    #[test]
    fn every_key_of_a_user_carries_the_same_hash_tag_and_the_channel_names_the_user() {
        for user in ["alice", "a}b", "{x}", "é:1"] {
            let k = keys(user);
            for key in [&k.meta, &k.stream, &k.channel] {
                assert!(key.starts_with(&format!("wsreg:{{{user}}}:")));
            }
            assert_eq!(channel_user(&k.channel), Some(user));
        }
    }

    #[test]
    fn a_live_message_parses_and_garbage_is_skipped() {
        let ok = parse(
            "wsreg:{al ice}:live",
            br#"3.4 7 {"kind":"text","text":"a b"}"#,
        );
        let Some(Live::Published { user, at, payload }) = ok else {
            panic!("{ok:?}")
        };
        assert_eq!(user.as_str(), "al ice");
        assert_eq!(at, Position::new(Epoch::new(3, 4), 7));
        assert_eq!(payload, Payload::Text { text: "a b".into() });
        for (channel, bytes) in [
            ("other", &b"3.4 7 {}"[..]),
            ("wsreg:{a}:live", b"3.4"),
            ("wsreg:{a}:live", b"x 7 {}"),
            ("wsreg:{a}:live", b"3.4 x {}"),
            ("wsreg:{a}:live", b"3.4 7 not-json"),
        ] {
            assert!(parse(channel, bytes).is_none(), "{channel} {bytes:?}");
        }
    }
}
