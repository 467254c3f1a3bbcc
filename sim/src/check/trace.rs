//! Steps: every core observation and every client action or receipt is one [`Step`], rendered
//! as one aligned line and folded into a running hash that is identical across processes for the
//! same plan and runtime seed.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use wsreg::{CloseReason, Epoch, GapReason, Mode, Position, RemoveReason};

/// The column legend printed above every trace.
pub const LEGEND: &str = "step: number; time: virtual seconds; user: who the step is about (the core's key for core steps, the simulated user for client steps); conn/mgr: connection and manager numbers; event: what happened (`>` client action, `<` client receipt, `!` a refusal)";

/// The header line of a trace.
pub const HEADER: &str = " step      time  user     conn  mgr   event";

/// Which message a step is about, as the harness tagged it: `u3/r7` (run 7 of u3) or `u3/m2`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MsgTag {
    /// Event kind (`agent_started`...) or `text`.
    pub kind: &'static str,
    /// The run id or text, as sent.
    pub tag: Arc<str>,
}

impl MsgTag {
    /// The user the harness addressed the message to: the part of the tag before the last `/`.
    pub fn owner(&self) -> &str {
        self.tag
            .rsplit_once('/')
            .map_or(&self.tag, |(owner, _)| owner)
    }
}

impl fmt::Display for MsgTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.tag)
    }
}

/// What happened in one step.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum What {
    /// A phase of the run began.
    Phase(&'static str),
    /// Core: a manager was registered, starting a stream of this epoch.
    ManagerCreated {
        /// Its stream's epoch.
        epoch: Epoch,
    },
    /// Core: a manager was removed.
    ManagerRemoved(RemoveReason),
    /// Core: a connection was added (`live` afterwards).
    ConnAdded {
        /// Live connections of the key afterwards.
        live: usize,
    },
    /// Core: a connection was removed.
    ConnRemoved {
        /// Why.
        reason: CloseReason,
        /// Live connections of the key afterwards.
        live: usize,
    },
    /// Core: a message was accepted.
    Accepted {
        /// Its position.
        at: Position,
        /// What.
        msg: MsgTag,
    },
    /// Core: a connection's sink took the item numbered `seq` (a gap marker: its last).
    Delivered {
        /// Sequence number.
        seq: u64,
    },
    /// Core: the history let go of `from..=to`.
    Trimmed {
        /// First.
        from: u64,
        /// Last.
        to: u64,
    },
    /// Core: mode changed.
    ModeChanged {
        /// Old.
        from: Mode,
        /// New.
        to: Mode,
    },
    /// Client: asks to connect.
    Connect {
        /// A slow reader.
        slow: bool,
        /// The last position the client saw, to resume after (none: fresh).
        resume: Option<Position>,
    },
    /// Client: connected, filed under `key`; its stream continues after `from`.
    Connected {
        /// The key the backend used.
        key: Arc<str>,
        /// What the client asked to resume after.
        asked: Option<Position>,
        /// Where the backend says the stream continues.
        from: Position,
        /// Whether the backend says nothing after `asked` is missing.
        recovered: bool,
    },
    /// Client: closes a tab.
    Close,
    /// Client: a tab crashes (drops without closing).
    Crash,
    /// Server: the deferred cleanup of a crashed tab runs.
    Cleanup,
    /// Client: sends a text message.
    Send {
        /// What.
        msg: MsgTag,
    },
    /// Client: its agent emits an event.
    Emit {
        /// What.
        msg: MsgTag,
    },
    /// Client: sets its mode.
    SetMode(Mode),
    /// Client: a tab received a message.
    Received {
        /// Its position.
        at: Position,
        /// What.
        msg: MsgTag,
        /// The key the envelope was addressed to.
        to: Arc<str>,
        /// Whether it was lost unread in the tab's buffer when the tab crashed.
        lost: bool,
    },
    /// Client: a tab received a gap marker: it will never get `from..=at.seq`.
    Gap {
        /// The gap's end (its position).
        at: Position,
        /// Its first missing number.
        from: u64,
        /// Why.
        reason: GapReason,
        /// Whether it was lost unread in the tab's buffer when the tab crashed.
        lost: bool,
    },
    /// Network: the clients' node and the server's are cut off from each other.
    Partition {
        /// For how long.
        ms: u64,
    },
    /// Network: the partition healed.
    Healed,
    /// Server: its node was killed; every socket and everything the registry held is gone.
    ServerDown,
    /// Server: its node started again, with a fresh registry.
    ServerUp,
    /// A call was refused by the backend.
    Refused {
        /// What was asked.
        action: &'static str,
        /// The error.
        error: Arc<str>,
    },
    /// Client: gives up on a connect that took longer than its timeout (last among the
    /// variants, so the trace hashes of runs without one stay as they were).
    GaveUp {
        /// The timeout, in milliseconds.
        after_ms: u64,
    },
    /// Many nodes: server node `node` was killed (its tabs dropped; the store keeps the
    /// streams).
    NodeDown {
        /// Which node.
        node: u32,
    },
    /// Many nodes: server node `node` started again, over a fresh registry.
    NodeUp {
        /// Which node.
        node: u32,
    },
    /// Many nodes: the store was killed and started again empty.
    StoreRestarted,
    /// Many nodes: server node `node` cannot reach the store for `ms` milliseconds.
    StoreCut {
        /// Which node.
        node: u32,
        /// For how long.
        ms: u64,
    },
    /// Many nodes: server node `node` reaches the store again.
    StoreHealed {
        /// Which node.
        node: u32,
    },
    /// Many nodes: the tab's socket dropped because its server node `node` died (as a crash
    /// to its client; the node, and all it held, is gone).
    Dropped {
        /// Which node.
        node: u32,
    },
    /// Many nodes: the store answers every call `reply_ms` late for `ms` milliseconds.
    StoreSlow {
        /// How late.
        reply_ms: u64,
        /// For how long.
        ms: u64,
    },
    /// Many nodes: the store answers at once again.
    StorePrompt,
    /// Many nodes: the store failed over to a replica missing each stream's newest `lose`
    /// writes, under a new lineage.
    StoreFailedOver {
        /// Writes lost from the end of each stream.
        lose: u64,
    },
    /// Many nodes: the store forgot every stream while running (`FLUSHALL`).
    StoreFlushed,
    /// Many nodes: the store evicted a user's meta record, or its history.
    StoreEvicted {
        /// The user's key in the store (`None`: the store held no stream).
        key: Option<String>,
        /// The history rather than the meta record.
        history: bool,
    },
    /// Many nodes: every store connection stopped getting pushes, while answering on.
    StoreSilenced,
    /// Many nodes: the store holds each push back by up to `max_ms`, for `ms` milliseconds.
    StoreLiveLate {
        /// Longest hold.
        max_ms: u64,
        /// For how long.
        ms: u64,
    },
    /// Many nodes: the store pushes at once again.
    StoreLiveOnTime,
    /// A server node (`None`: the store) stopped running for `ms` milliseconds.
    Paused {
        /// Which node; `None` for the store.
        node: Option<u32>,
        /// For how long.
        ms: u64,
    },
    /// The paused node (`None`: the store) runs again: what reached it meanwhile runs now.
    Resumed {
        /// Which node; `None` for the store.
        node: Option<u32>,
    },
}

/// The phase in which, over many nodes, a few users fill their tabs to the limit once the
/// world has settled (nothing asked before it counts any more).
pub const FILL_PHASE: &str = "fill to the limit";

/// A sender was told where its message is: not a step of the trace (it changes nothing the
/// trace shows), but what the black-box oracle judges every tab's reading against. Kept beside
/// the trace of a run that keeps every step, so the run's reading can be judged again from
/// what was recorded (the report page's ledger).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confirmed {
    /// The last step before the sender was told.
    pub step: u64,
    /// The sender (the simulated user whose message it is).
    pub user: Arc<str>,
    /// The message.
    pub msg: MsgTag,
    /// Where it was told the message is.
    pub at: Position,
}

/// Whose account a step is: the world's (phases, network and server faults), a client's (its
/// actions, receipts and the refusals it got), or the core's (what the backend reported).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Phases and faults of the simulated world.
    World,
    /// A simulated client: what it did and what it read.
    Client,
    /// The backend's own account (observer events).
    Core,
}

impl What {
    /// Whose account this step is.
    pub fn side(&self) -> Side {
        match self {
            What::Phase(_)
            | What::Partition { .. }
            | What::Healed
            | What::ServerDown
            | What::ServerUp
            | What::NodeDown { .. }
            | What::NodeUp { .. }
            | What::StoreRestarted
            | What::StoreCut { .. }
            | What::StoreHealed { .. }
            | What::StoreSlow { .. }
            | What::StorePrompt
            | What::StoreFailedOver { .. }
            | What::StoreFlushed
            | What::StoreEvicted { .. }
            | What::StoreSilenced
            | What::StoreLiveLate { .. }
            | What::StoreLiveOnTime
            | What::Paused { .. }
            | What::Resumed { .. } => Side::World,
            What::Connect { .. }
            | What::Connected { .. }
            | What::GaveUp { .. }
            | What::Close
            | What::Crash
            | What::Dropped { .. }
            | What::Cleanup
            | What::Send { .. }
            | What::Emit { .. }
            | What::SetMode(_)
            | What::Received { .. }
            | What::Gap { .. }
            | What::Refused { .. } => Side::Client,
            What::ManagerCreated { .. }
            | What::ManagerRemoved(_)
            | What::ConnAdded { .. }
            | What::ConnRemoved { .. }
            | What::Accepted { .. }
            | What::Delivered { .. }
            | What::Trimmed { .. }
            | What::ModeChanged { .. } => Side::Core,
        }
    }
}

/// One step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// 1-based step number.
    pub n: u64,
    /// Virtual microseconds since the run began.
    pub t_us: u64,
    /// Who it is about.
    pub user: Arc<str>,
    /// Connection number, if any: the backend's number for it.
    pub conn: Option<u64>,
    /// Manager number, if any.
    pub mgr: Option<u64>,
    /// For a step about one of a client's tabs: the client's own number for that tab (the
    /// run's n-th connect attempt). A tab is the client's thing: this, never the backend's
    /// number (which a correct registry may reuse), says which tab read what.
    pub tab: Option<u64>,
    /// What happened.
    pub what: What,
}

/// The trace hash covers what the run did, as the trace shows it; the client's tab numbers
/// follow from the same steps, so they add nothing to compare (and hashes stay comparable
/// with runs recorded before they existed).
impl Hash for Step {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.n.hash(state);
        self.t_us.hash(state);
        self.user.hash(state);
        self.conn.hash(state);
        self.mgr.hash(state);
        self.what.hash(state);
    }
}

/// An id as traces, stories and diagrams show it: printable ASCII as it is (a backslash
/// doubled), everything else (non-ASCII letters, combining marks, spaces, controls) as
/// `\u{…}`. So `alice` and `Alice`, Latin `a` and Cyrillic `а`, `é` and `e` with a combining
/// accent, `u3` and `u3 ` all read differently, and distinct ids never print alike.
pub fn escaped(id: &str) -> std::borrow::Cow<'_, str> {
    if id.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') {
        return id.into();
    }
    let mut out = String::with_capacity(id.len() + 8);
    for c in id.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if c.is_ascii_graphic() => out.push(c),
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    out.into()
}

fn opt(f: &mut fmt::Formatter<'_>, prefix: char, v: Option<u64>) -> fmt::Result {
    match v {
        Some(v) => write!(f, "{:<6}", format!("{prefix}{v}")),
        None => write!(f, "{:<6}", "-"),
    }
}

impl fmt::Display for What {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            What::Phase(p) => write!(f, "== {p}"),
            What::ManagerCreated { epoch } => write!(f, "manager registered (epoch {epoch})"),
            What::ManagerRemoved(r) => write!(f, "manager removed ({r:?})"),
            What::ConnAdded { live } => write!(f, "connection added (live {live})"),
            What::ConnRemoved { reason, live } => {
                write!(f, "connection removed: {reason:?} (live {live})")
            }
            What::Accepted { at, msg } => write!(f, "accepted {at} {msg}"),
            What::Delivered { seq } => write!(f, "delivered #{seq}"),
            What::Trimmed { from, to } => write!(f, "history let go of #{from}..#{to}"),
            What::ModeChanged { from, to } => write!(f, "mode {from} -> {to}"),
            What::Connect { slow, resume } => {
                f.write_str("> connect")?;
                if let Some(p) = resume {
                    write!(f, " resuming after {p}")?;
                }
                f.write_str(if *slow { " (slow reader)" } else { "" })
            }
            What::Connected {
                key,
                asked,
                from,
                recovered,
            } => {
                write!(f, "> connected as key {key}, continues after {from}")?;
                match (asked, recovered) {
                    (None, _) => Ok(()),
                    (Some(_), true) => f.write_str(" (recovered)"),
                    (Some(_), false) => f.write_str(" (not recovered)"),
                }
            }
            What::GaveUp { after_ms } => write!(f, "> gives up connecting after {after_ms} ms"),
            What::Close => f.write_str("> close"),
            What::Crash => f.write_str("> crash (no close)"),
            What::Cleanup => f.write_str("> server cleans up the crashed tab"),
            What::Send { msg } => write!(f, "> send {msg}"),
            What::Emit { msg } => write!(f, "> emit {msg}"),
            What::SetMode(m) => write!(f, "> set mode {m}"),
            What::Received { at, msg, to, lost } => {
                let verb = if *lost {
                    "lost unread in the crash"
                } else {
                    "received"
                };
                write!(f, "< {verb} {at} {msg} (to {to})")
            }
            What::Gap {
                at,
                from,
                reason,
                lost,
            } => {
                let verb = if *lost { "lost unread: " } else { "" };
                write!(f, "< {verb}gap {}#{from}..#{} ({reason})", at.epoch, at.seq)
            }
            What::Refused { action, error } => write!(f, "! {action} refused: {error}"),
            What::Partition { ms } => {
                write!(
                    f,
                    "!! network partition: clients cut off from the server for {ms} ms"
                )
            }
            What::Healed => f.write_str("!! network partition healed"),
            What::ServerDown => {
                f.write_str("!! server node killed: every socket and all registry state are gone")
            }
            What::ServerUp => f.write_str("!! server node restarted with a fresh registry"),
            What::NodeDown { node } => write!(
                f,
                "!! server node n{node} killed: its sockets and registry are gone (the store keeps the streams)"
            ),
            What::NodeUp { node } => {
                write!(f, "!! server node n{node} restarted with a fresh registry")
            }
            What::StoreRestarted => {
                f.write_str("!! store restarted empty: every stream is lost")
            }
            What::StoreCut { node, ms } => {
                write!(f, "!! server node n{node} cut off from the store for {ms} ms")
            }
            What::StoreHealed { node } => {
                write!(f, "!! server node n{node} reaches the store again")
            }
            What::Dropped { node } => write!(f, "> dropped: server node n{node} died"),
            What::StoreSlow { reply_ms, ms } => write!(
                f,
                "!! the store answers every call {reply_ms} ms late, for {ms} ms"
            ),
            What::StorePrompt => f.write_str("!! the store answers at once again"),
            What::StoreFailedOver { lose } => write!(
                f,
                "!! the store failed over to a replica missing each stream's last {lose} write(s)"
            ),
            What::StoreFlushed => f.write_str("!! the store was flushed: every stream is lost"),
            What::StoreEvicted { key, history } => {
                let what = if *history { "history" } else { "meta record" };
                match key {
                    Some(key) => write!(f, "!! the store evicted the {what} of {key}"),
                    None => write!(f, "!! the store had no {what} to evict"),
                }
            }
            What::StoreSilenced => f.write_str(
                "!! every store connection stopped getting pushes, and answers on",
            ),
            What::StoreLiveLate { max_ms, ms } => write!(
                f,
                "!! the store holds each push back up to {max_ms} ms, for {ms} ms"
            ),
            What::StoreLiveOnTime => f.write_str("!! the store pushes at once again"),
            What::Paused { node: Some(n), ms } => {
                write!(f, "!! server node {n} stops running for {ms} ms")
            }
            What::Paused { node: None, ms } => write!(f, "!! the store stops running for {ms} ms"),
            What::Resumed { node: Some(n) } => write!(
                f,
                "!! server node {n} runs again: what reached it meanwhile runs now"
            ),
            What::Resumed { node: None } => {
                f.write_str("!! the store runs again: what reached it meanwhile runs now")
            }
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>5}  {:>8.6}  {:<8} ",
            self.n,
            self.t_us as f64 / 1e6,
            escaped(&self.user)
        )?;
        opt(f, 'c', self.conn)?;
        opt(f, 'm', self.mgr)?;
        write!(f, "{}", self.what)
    }
}

/// The running hash over every step so far: FNV-1a over explicit bytes. Integers go in as their
/// little-endian bytes, and the enum discriminants `derive(Hash)` feeds in as 8, so the hash
/// depends on neither the platform's byte order nor its width; the golden hashes pinned in the
/// test suite catch any change of what a step feeds in.
#[derive(Default)]
pub struct TraceHash {
    h: StableHasher,
}

impl fmt::Debug for TraceHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceHash({:#018x})", self.value())
    }
}

impl TraceHash {
    /// Folds one step in.
    pub fn add(&mut self, step: &Step) {
        step.hash(&mut self.h);
    }

    /// The hash so far.
    pub fn value(&self) -> u64 {
        self.h.finish()
    }
}

/// FNV-1a with every integer written as its little-endian bytes (`usize` and `isize`, whose
/// width is the platform's, as 8), so nothing depends on the platform's byte order or width.
#[derive(Default)]
pub struct StableHasher(fnv::FnvHasher);

impl Hasher for StableHasher {
    fn finish(&self) -> u64 {
        self.0.finish()
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
    }

    fn write_u8(&mut self, n: u8) {
        self.0.write(&[n]);
    }

    fn write_u16(&mut self, n: u16) {
        self.0.write(&n.to_le_bytes());
    }

    fn write_u32(&mut self, n: u32) {
        self.0.write(&n.to_le_bytes());
    }

    fn write_u64(&mut self, n: u64) {
        self.0.write(&n.to_le_bytes());
    }

    fn write_u128(&mut self, n: u128) {
        self.0.write(&n.to_le_bytes());
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn write_i8(&mut self, n: i8) {
        self.write_u8(n as u8);
    }

    fn write_i16(&mut self, n: i16) {
        self.write_u16(n as u16);
    }

    fn write_i32(&mut self, n: i32) {
        self.write_u32(n as u32);
    }

    fn write_i64(&mut self, n: i64) {
        self.write_u64(n as u64);
    }

    fn write_i128(&mut self, n: i128) {
        self.write_u128(n as u128);
    }

    fn write_isize(&mut self, n: isize) {
        self.write_u64(n as u64);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn look_alike_ids_print_apart() {
        use super::escaped;
        assert_eq!(escaped("team|3"), "team|3");
        assert_eq!(escaped("u3 "), "u3\\u{20}");
        assert_eq!(escaped("\u{440}\u{430}vel1"), "\\u{440}\\u{430}vel1");
        assert_eq!(escaped("jose\u{301}2"), "jose\\u{301}2");
        assert_eq!(escaped("jos\u{e9}2"), "jos\\u{e9}2");
        assert_eq!(escaped("a\\u{20}"), "a\\\\u{20}");
        assert_ne!(escaped("a\\u{20}"), escaped("a "));
    }

    use super::*;

    #[test]
    fn a_step_renders_in_aligned_columns() {
        let step = Step {
            n: 9,
            t_us: 4_000,
            user: "u1".into(),
            conn: Some(2),
            mgr: Some(1),
            tab: None,
            what: What::Received {
                at: Position::new(Epoch::new(0, 1), 3),
                msg: MsgTag {
                    kind: "tool_completed",
                    tag: "u2/r7".into(),
                },
                to: "u2".into(),
                lost: false,
            },
        };
        assert_eq!(
            step.to_string(),
            "    9  0.004000  u1       c2    m1    < received 0.1#3 tool_completed u2/r7 (to u2)"
        );
        assert_eq!(
            MsgTag {
                kind: "text",
                tag: "a/b/m1".into()
            }
            .owner(),
            "a/b"
        );
    }

    #[test]
    fn the_hash_depends_on_every_step() {
        let step = |n| Step {
            n,
            t_us: 0,
            user: "u".into(),
            conn: None,
            mgr: None,
            tab: None,
            what: What::Close,
        };
        let (mut a, mut b) = (TraceHash::default(), TraceHash::default());
        a.add(&step(1));
        b.add(&step(1));
        assert_eq!(a.value(), b.value());
        a.add(&step(2));
        b.add(&step(3));
        assert_ne!(a.value(), b.value());
    }
}
