//! `wsreg-sim disconnect`: the disconnect benchmark realtime servers publish, run on wsreg in
//! virtual time, so a seed prints the same summary on every machine.
//!
//! Every user has one client and one agent. The agent emits full agent runs (started, thinking,
//! tool executing, tool completed, completed) at a steady rate. The client connects once, fresh,
//! at a time drawn over the first 12 s; then, again and again, its socket is closed by force after an online spell (12–18 s, drawn
//! per spell), it stays offline (1.5–2.5 s) and reconnects with the last position it read. When
//! the agents stop, every client stays until it has read the whole stream.
//!
//! Each client's ledger checks what it reads against the stream contract: positions follow one
//! another within an epoch; a gap marker accounts for everything it skips; nothing arrives
//! twice. The summary counts what the agents had accepted, what reached the clients, the gaps
//! the backend signalled and the ones it did not (the target is 0), duplicates (target 0), and
//! the replay latency: from the start of a reconnect to the moment the client holds everything
//! accepted before it started, in virtual milliseconds.
//!
//! In process, the client reads the core's sink directly: no virtual time passes between a
//! send and its receipt, so latencies are 0 and the run measures loss and cost. With `--net`
//! every client is a real WebSocket client of the real server over madsim's TCP (latency per
//! packet), so the latency is what a user would wait. With `--nodes N` the server runs as N
//! nodes over the simulated store behind a load balancer that sends each connect to the next
//! node, and one [`Fault`] is played at half time; a client whose socket a node ends comes
//! back 100 to 600 ms later, as a real client does.

mod faults;

pub use faults::Fault;

use std::hash::Hasher;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rand::Rng;
use serde::Serialize;
use tokio::sync::oneshot;
use tokio::time::Instant;
use wsreg::{
    AgentEvent, Envelope, Payload, Position, RegistryConfig, SendFuture, Sink, SinkError,
    UserContext,
};

use crate::check::outcome::Exit;
use crate::check::reading::{place, Place};
use crate::measure::table::{Column, Table};
use crate::run::backend::{core_factory, Backend, Factory, Handle, Network};
use crate::run::runtime::{simulate, Link, Panicked, RuntimeError};
use crate::zoo::Bug;

/// What to run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Options {
    /// Users, each with one client and one agent.
    pub users: usize,
    /// Virtual seconds the agents emit for.
    pub seconds: u64,
    /// Events each agent emits per second.
    pub rate_per_s: u64,
    /// The runtime seed.
    pub seed: u64,
    /// Through the real server over the simulated network (`Some`: its per-packet latency
    /// range in ms), or in process.
    pub net: Option<[u64; 2]>,
    /// Messages each user's history retains (the core's default is 256); below what a client
    /// misses while offline, reconnects get gap markers.
    pub history: usize,
    /// A planted bug to run instead of the real core.
    pub bug: Option<Bug>,
    /// Server nodes over the simulated store (1: the server on its own).
    pub nodes: u32,
    /// With many nodes: the fault played at half time.
    pub fault: Fault,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            users: 10_000,
            seconds: 60,
            rate_per_s: 2,
            seed: 0,
            net: None,
            history: RegistryConfig::default().history_capacity,
            bug: None,
            nodes: 1,
            fault: Fault::None,
        }
    }
}

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum DisconnectError {
    /// The options make no sense.
    #[error("{0}")]
    Options(String),
    /// The simulation could not start.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The system under test panicked.
    #[error("the run panicked: {0}")]
    Panic(String),
}

/// An online spell, in ms: how long a socket lives before it is closed by force.
const ONLINE_MS: std::ops::Range<u64> = 12_000..18_001;
/// An offline spell, in ms.
const OFFLINE_MS: std::ops::Range<u64> = 1_500..2_501;
/// How long clients may take to read the rest of the stream once the agents stop.
const DRAIN: Duration = Duration::from_secs(30);
/// How long a refused connect waits before it tries again.
const RETRY: Duration = Duration::from_millis(100);
/// Over many nodes, how long a connection's lease lasts unless renewed: the nodes' default.
#[cfg(madsim)]
const LEASE_MS: u64 = 30_000;
/// How long a client whose socket the server ended waits before it comes back, in ms.
const BACK_MS: std::ops::Range<u64> = 100..601;

/// What one run measured. Every field is a function of the options and the seed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// What ran.
    pub options: Options,
    /// `in process` or `network`.
    pub mode: &'static str,
    /// Messages the backend accepted from the agents.
    pub accepted: u64,
    /// Distinct messages the clients read.
    pub delivered: u64,
    /// `delivered / accepted`.
    pub delivery_ratio: f64,
    /// Connects after a forced close.
    pub reconnects: u64,
    /// Reconnects the backend said it recovered in full.
    pub recovered: u64,
    /// Gap markers the clients read, and the messages they covered.
    pub gaps_signalled: u64,
    /// Messages covered by signalled gaps.
    pub lost_signalled: u64,
    /// Holes in a client's positions with no gap marker, plus clients left short of the
    /// stream's end when the run stopped (target 0).
    pub unsignalled_gaps: u64,
    /// Messages in those holes.
    pub lost_unsignalled: u64,
    /// Messages a client read a second time, or out of order (target 0).
    pub duplicates: u64,
    /// Connects the backend refused (each retried).
    pub refused: u64,
    /// Sockets the server ended by itself (a node that died, a stream it could no longer
    /// follow); their clients came back.
    pub ended_by_server: u64,
    /// Replay latencies measured (reconnects with something to catch up on).
    pub replays: u64,
    /// Replay latency percentiles, virtual ms.
    pub replay_p50_ms: f64,
    /// 99th percentile.
    pub replay_p99_ms: f64,
    /// Longest.
    pub replay_max_ms: f64,
    /// Connect latency (from the call to the backend's answer, retries included) percentiles,
    /// virtual ms.
    pub connect_p50_ms: f64,
    /// 99th percentile.
    pub connect_p99_ms: f64,
    /// Virtual seconds from start to the last client done.
    pub virtual_s: f64,
    /// A hash over every client's final position and counts, in user order (explicit bytes).
    pub digest: String,
}

/// One client's account of what it read.
#[derive(Debug, Default)]
struct Ledger {
    /// The last position read (a gap marker's is its `to`).
    last: Option<Position>,
    /// The last position the backend accepted for this user.
    head: Option<Position>,
    accepted: u64,
    delivered: u64,
    gaps: u64,
    lost_signalled: u64,
    holes: u64,
    lost_unsignalled: u64,
    duplicates: u64,
    reconnects: u64,
    recovered: u64,
    refused: u64,
    ended_by_server: u64,
    /// The last position accepted in each epoch: what a client that leaves an epoch lost of
    /// it.
    acked: std::collections::BTreeMap<wsreg::Epoch, u64>,
    /// A reconnect waiting to catch up: the head when it started, and when.
    replay: Option<(Position, Instant)>,
}

impl Ledger {
    /// Takes in one item a client read, at virtual time `now`; returns a finished replay's
    /// latency.
    fn read(&mut self, env: &Envelope, now: Instant) -> Option<Duration> {
        let at = env.position();
        // What this item may start at, had nothing been lost.
        let expected = match self.last {
            Some(last) if last.epoch == at.epoch => last.seq + 1,
            _ => 1,
        };
        let (start, end) = match env.payload() {
            Payload::Gap { from, to, .. } => (*from, *to),
            _ => (at.seq, at.seq),
        };
        let mut counted = false;
        if let Some(last) = self.last.filter(|last| last.epoch != at.epoch) {
            // The client leaves an epoch: what was accepted in it after its position is lost,
            // told only by an `epoch_changed` marker.
            let left = self
                .acked
                .get(&last.epoch)
                .map_or(0, |acked| acked.saturating_sub(last.seq));
            let told = matches!(
                env.payload(),
                Payload::Gap {
                    reason: wsreg::GapReason::EpochChanged,
                    ..
                }
            );
            if told {
                self.gaps += 1;
                counted = true;
                self.lost_signalled += left;
            } else if left > 0 {
                self.holes += 1;
                self.lost_unsignalled += left;
            }
        }
        match place(expected, start) {
            Place::InOrder => {}
            Place::Ahead { skipped } => {
                self.holes += 1;
                self.lost_unsignalled += skipped;
            }
            // Nothing new: the client's position stays.
            Place::Behind => {
                self.duplicates += 1;
                return None;
            }
        }
        if env.payload().is_gap() {
            if end >= start {
                self.gaps += u64::from(!counted);
                self.lost_signalled += end - start + 1;
            }
        } else {
            self.delivered += 1;
        }
        self.last = Some(Position::new(at.epoch, end));
        let (target, since) = self.replay?;
        if target.epoch != at.epoch {
            self.replay = None; // another stream: nothing left to wait for in the old one
            return None;
        }
        (end >= target.seq).then(|| {
            self.replay = None;
            now - since
        })
    }

    /// Whether the client has read everything accepted so far.
    fn caught_up(&self) -> bool {
        match (self.head, self.last) {
            (None, _) => true,
            (Some(head), Some(last)) => last.epoch == head.epoch && last.seq >= head.seq,
            (Some(_), None) => false,
        }
    }
}

/// Every client's ledger and every replay latency measured.
#[derive(Default)]
struct Books {
    ledgers: Vec<Mutex<Ledger>>,
    latencies: Mutex<Vec<Duration>>,
    /// How long each connect took, from the call to the backend's answer.
    connects: Mutex<Vec<Duration>>,
}

impl Books {
    fn ledger(&self, user: usize) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledgers[user]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A client's sink: records what it reads, until its socket is closed by force. Dropped when
/// the socket ends, which its client hears of.
struct ClientSink {
    user: usize,
    books: Arc<Books>,
    open: Arc<AtomicBool>,
    _ended: oneshot::Sender<()>,
}

impl Sink for ClientSink {
    fn send(&mut self, envelope: Envelope) -> SendFuture<'_> {
        let result = if self.open.load(Ordering::Relaxed) {
            let latency = self.books.ledger(self.user).read(&envelope, Instant::now());
            if let Some(l) = latency {
                self.books
                    .latencies
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(l);
            }
            Ok(())
        } else {
            Err(SinkError("the socket was closed by force".into()))
        };
        Box::pin(std::future::ready(result))
    }
}

/// Runs the benchmark; returns the summary and the wall time it took.
pub fn run(opts: &Options) -> Result<(Summary, Duration), DisconnectError> {
    if opts.users == 0 || opts.users > 100_000 {
        return Err(DisconnectError::Options(
            "--users must be 1 to 100,000".into(),
        ));
    }
    if opts.seconds == 0 || opts.seconds > 3_600 {
        return Err(DisconnectError::Options(
            "--seconds must be 1 to 3,600".into(),
        ));
    }
    if opts.history == 0 {
        return Err(DisconnectError::Options(
            "--history must be at least 1".into(),
        ));
    }
    if opts.rate_per_s == 0 || opts.rate_per_s > 100 {
        return Err(DisconnectError::Options(
            "--rate must be 1 to 100 events per second".into(),
        ));
    }
    let max = crate::generate::config::MAX_NODES;
    if !(1..=max).contains(&opts.nodes) || (opts.nodes > 1 && opts.net.is_none()) {
        return Err(DisconnectError::Options(format!(
            "--nodes must be 1 to {max}, and more than 1 needs --net"
        )));
    }
    if opts.nodes == 1 && opts.fault != Fault::None {
        return Err(DisconnectError::Options(
            "--fault needs --nodes 2 or more".into(),
        ));
    }
    if opts.nodes > 1 && opts.bug.is_some() {
        return Err(DisconnectError::Options(
            "--bug runs a registry of the zoo on one node; it cannot be combined with --nodes"
                .into(),
        ));
    }
    let started = std::time::Instant::now();
    let o = opts.clone();
    let factory = opts.bug.map_or_else(core_factory, crate::zoo::factory);
    let summary = simulated(factory, o)?.map_err(|p| {
        let at = p.at.map_or(String::new(), |at| format!(" at {at}"));
        DisconnectError::Panic(format!("in {}{at}: {}", p.by, p.message))
    })?;
    Ok((summary, started.elapsed()))
}

/// `disconnect`: runs the benchmark once per fault of `faults` (over one node: `[None]`) and
/// prints each summary (and, with `check_determinism`, runs each again and requires the same
/// summary byte for byte); writes the summaries as JSON (one object, or a list over many
/// faults) and the table for the README when asked. Fails (exit 1) on an unsignalled gap or a
/// duplicate.
pub fn command(
    opts: &Options,
    faults: &[Fault],
    check_determinism: bool,
    json: Option<&std::path::Path>,
    tables: Option<&std::path::Path>,
) -> Result<Exit, DisconnectError> {
    let mut exit = Exit::Pass;
    let mut summaries = Vec::new();
    for &fault in faults {
        let opts = Options {
            fault,
            ..opts.clone()
        };
        let (summary, wall) = run(&opts)?;
        let printed = markdown(&summary);
        print!("{printed}");
        println!(
            "wall time {:.2} s ({:.0} messages read per wall second; not part of the summary)",
            wall.as_secs_f64(),
            summary.delivered as f64 / wall.as_secs_f64().max(1e-9)
        );
        if summary.unsignalled_gaps > 0 || summary.duplicates > 0 {
            exit = Exit::Violation;
        }
        if check_determinism {
            let (again, _) = run(&opts)?;
            if markdown(&again) == printed {
                println!("determinism: the second run printed the same summary, byte for byte");
            } else {
                println!(
                    "determinism: NONDETERMINISM, the second run printed:\n{}",
                    markdown(&again)
                );
                exit = Exit::Nondeterminism;
            }
        }
        summaries.push(summary);
    }
    let write = |path: &std::path::Path, text: String| {
        std::fs::write(path, text)
            .map_err(|e| DisconnectError::Options(format!("writing {}: {e}", path.display())))
    };
    if let Some(path) = json {
        let text = match summaries.as_slice() {
            [one] => serde_json::to_string_pretty(one),
            many => serde_json::to_string_pretty(many),
        };
        write(path, text.expect("a summary serialises"))?;
    }
    if let Some(dir) = tables {
        let command = crate::measure::table::invocation("cargo sim");
        let table = match summaries.as_slice() {
            [one] if one.options.nodes == 1 => table(one, &command),
            many => nodes_table(many, &command),
        };
        table
            .write_to(dir)
            .map_err(|e| DisconnectError::Options(e.to_string()))?;
    }
    Ok(exit)
}

/// One run against what `factory` makes, on a fresh thread and runtime.
fn simulated(factory: Factory, o: Options) -> Result<Result<Summary, Panicked>, RuntimeError> {
    let link = o.net.map(|latency_ms| Link {
        latency_ms,
        loss_percent: 0,
    });
    simulate(o.seed, link, move || async move {
        let config = registry_config(&o);
        #[cfg(madsim)]
        if o.net.is_some() {
            let plan = crate::generate::plan::NetPlan {
                latency_ms: [0, 0],
                loss_percent: 0,
                faults: Vec::new(),
                nodes: o.nodes,
                // Each connect to the next node: a client's reconnects move between nodes.
                spread: o.nodes > 1,
                // A deployment's lease (renewed every 10 s), not the campaigns' 250 ms.
                lease_ms: LEASE_MS,
                connect_deadline_ms: None,
            };
            let net = Arc::new(crate::run::net::NetBackend::new(
                factory, config, None, &plan, None,
            ));
            let mode = if o.nodes > 1 { "nodes" } else { "network" };
            return measure(Arc::clone(&net) as _, Some(net as _), o, mode).await;
        }
        measure(factory(config, None), None, o, "in process").await
    })
}

/// The registry's limits: room for every user, the history asked for, defaults otherwise, a
/// fixed boot so the epochs (and so the summary) do not depend on the process.
fn registry_config(opts: &Options) -> RegistryConfig {
    RegistryConfig {
        max_managers: opts.users,
        max_connections: opts.users * 2,
        history_capacity: opts.history,
        boot: Some(0),
        ..RegistryConfig::default()
    }
}

async fn measure(
    backend: Arc<dyn Backend>,
    network: Option<Arc<dyn Network>>,
    opts: Options,
    mode: &'static str,
) -> Summary {
    let books = Arc::new(Books {
        ledgers: (0..opts.users).map(|_| Mutex::default()).collect(),
        latencies: Mutex::default(),
        connects: Mutex::default(),
    });
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs(opts.seconds);
    let period = Duration::from_micros(1_000_000 / opts.rate_per_s);
    if let (Some(net), fault) = (&network, opts.fault) {
        let (net, users) = (Arc::clone(net), opts.users);
        let half = Duration::from_secs(opts.seconds) / 2;
        tokio::spawn(async move {
            tokio::time::sleep_until(t0 + half).await;
            fault.play(&net, users).await;
        });
    }
    let mut tasks = Vec::with_capacity(opts.users);
    for user in 0..opts.users {
        let ctx = UserContext::new(&format!("user-{user}")).expect("a valid generated id");
        let client = Client {
            user,
            ctx,
            backend: Arc::clone(&backend),
            network: network.clone(),
            books: Arc::clone(&books),
            end,
            period,
        };
        tasks.push(tokio::spawn(client.live()));
    }
    for task in tasks {
        task.await.expect("a client task never panics");
    }
    summarize(opts, mode, &books, t0.elapsed())
}

/// One user: its client and, once the client is connected, its agent.
struct Client {
    user: usize,
    ctx: UserContext,
    backend: Arc<dyn Backend>,
    network: Option<Arc<dyn Network>>,
    books: Arc<Books>,
    end: Instant,
    period: Duration,
}

impl Client {
    async fn live(self) {
        // The first connects ramp up over the shortest online spell, so that from the start
        // the sockets' cycles are spread out as in a running deployment (madsim's listener
        // accepts about a thousand connections per virtual second: one at a time, each after a
        // timer).
        tokio::time::sleep(Duration::from_micros(draw(0..ONLINE_MS.start * 1_000))).await;
        let (mut handle, mut open, mut ended) = self.connect().await;
        let agent = tokio::spawn(agent(
            Arc::clone(&self.backend),
            self.ctx.clone(),
            Arc::clone(&self.books),
            self.user,
            self.end,
            self.period,
        ));
        loop {
            let online = Duration::from_millis(draw(ONLINE_MS));
            let until = self.end.min(Instant::now() + online);
            let by_server = tokio::select! {
                biased;
                _ = &mut ended => true,
                _ = tokio::time::sleep_until(until) => false,
            };
            if by_server {
                // The server ended the socket: the client comes back shortly.
                self.books.ledger(self.user).ended_by_server += 1;
                tokio::time::sleep(Duration::from_millis(draw(BACK_MS))).await;
            } else if until >= self.end {
                break;
            } else {
                open.store(false, Ordering::Relaxed);
                match &self.network {
                    Some(net) => net.crash(&handle),
                    // In process nobody notices a dead socket by itself: the server's cleanup.
                    None => {
                        let _ = self.backend.close(&handle).await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(draw(OFFLINE_MS))).await;
            }
            (handle, open, ended) = self.connect().await;
        }
        agent.await.expect("an agent task never panics");
        let deadline = Instant::now() + DRAIN;
        while !self.caught_up() && Instant::now() < deadline {
            let by_server = tokio::select! {
                biased;
                _ = &mut ended => true,
                _ = tokio::time::sleep(Duration::from_millis(5)) => false,
            };
            if by_server {
                self.books.ledger(self.user).ended_by_server += 1;
                tokio::time::sleep(Duration::from_millis(draw(BACK_MS))).await;
                (handle, open, ended) = self.connect().await;
            }
        }
        drop(open);
        let _ = self.backend.close(&handle).await;
    }

    fn caught_up(&self) -> bool {
        self.books.ledger(self.user).caught_up()
    }

    /// Connects, resuming after the last position read (fresh the first time); retries a
    /// refusal. With the handle: the flag that closes the client's sink, and what fires when
    /// the socket ends (its sink dropped).
    async fn connect(&self) -> (Handle, Arc<AtomicBool>, oneshot::Receiver<()>) {
        loop {
            let resume = {
                let mut ledger = self.books.ledger(self.user);
                if let (Some(head), Some(last)) = (ledger.head, ledger.last) {
                    ledger.reconnects += 1;
                    if head != last {
                        ledger.replay = Some((head, Instant::now()));
                    }
                }
                ledger.last
            };
            let open = Arc::new(AtomicBool::new(true));
            let (ended, ended_rx) = oneshot::channel();
            let sink = ClientSink {
                user: self.user,
                books: Arc::clone(&self.books),
                open: Arc::clone(&open),
                _ended: ended,
            };
            let asked = Instant::now();
            let connected = self
                .backend
                .connect(&self.ctx, Box::new(sink), resume)
                .await;
            self.books
                .connects
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Instant::now() - asked);
            match connected {
                Ok(c) => {
                    let mut ledger = self.books.ledger(self.user);
                    if resume.is_none() {
                        // A fresh client's stream starts where the backend says it does.
                        ledger.last = Some(c.from);
                    }
                    if resume.is_some() && c.recovered {
                        ledger.recovered += 1;
                    }
                    return (c.handle, open, ended_rx);
                }
                Err(_) => {
                    {
                        let mut ledger = self.books.ledger(self.user);
                        ledger.refused += 1;
                        ledger.replay = None;
                    }
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }
}

/// A user's agent: full runs, one event every `period`, until `end`.
async fn agent(
    backend: Arc<dyn Backend>,
    ctx: UserContext,
    books: Arc<Books>,
    user: usize,
    end: Instant,
    period: Duration,
) {
    let mut run = 0u64;
    loop {
        for event in AgentEvent::example_run(&format!("r{run}"), 1, 1) {
            if Instant::now() >= end {
                return;
            }
            if let Ok(at) = backend.emit(&ctx, event).await {
                let mut ledger = books.ledger(user);
                ledger.accepted += 1;
                ledger.head = Some(at);
                let acked = ledger.acked.entry(at.epoch).or_default();
                *acked = (*acked).max(at.seq);
            }
            tokio::time::sleep(period).await;
        }
        run += 1;
    }
}

/// A number from the runtime's seeded generator.
fn draw(range: std::ops::Range<u64>) -> u64 {
    madsim::rand::thread_rng().gen_range(range)
}

fn sorted(samples: &Mutex<Vec<Duration>>) -> Vec<Duration> {
    let mut v = samples
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    v.sort();
    v
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

fn summarize(opts: Options, mode: &'static str, books: &Books, elapsed: Duration) -> Summary {
    let mut s = Summary {
        options: opts,
        mode,
        accepted: 0,
        delivered: 0,
        delivery_ratio: 0.0,
        reconnects: 0,
        recovered: 0,
        gaps_signalled: 0,
        lost_signalled: 0,
        unsignalled_gaps: 0,
        lost_unsignalled: 0,
        duplicates: 0,
        refused: 0,
        ended_by_server: 0,
        replays: 0,
        replay_p50_ms: 0.0,
        replay_p99_ms: 0.0,
        replay_max_ms: 0.0,
        connect_p50_ms: 0.0,
        connect_p99_ms: 0.0,
        virtual_s: elapsed.as_secs_f64(),
        digest: String::new(),
    };
    let mut digest = fnv::FnvHasher::default();
    for user in 0..books.ledgers.len() {
        let l = books.ledger(user);
        s.accepted += l.accepted;
        s.delivered += l.delivered;
        s.reconnects += l.reconnects;
        s.recovered += l.recovered;
        s.gaps_signalled += l.gaps;
        s.lost_signalled += l.lost_signalled;
        s.unsignalled_gaps += l.holes;
        s.lost_unsignalled += l.lost_unsignalled;
        s.duplicates += l.duplicates;
        s.refused += l.refused;
        s.ended_by_server += l.ended_by_server;
        if !l.caught_up() {
            // The stream's end never arrived and nothing said it would not.
            let head = l.head.map_or(0, |h| h.seq);
            s.unsignalled_gaps += 1;
            s.lost_unsignalled += match l.last {
                Some(last) if Some(last.epoch) == l.head.map(|h| h.epoch) => {
                    head.saturating_sub(last.seq)
                }
                _ => head,
            };
        }
        let last = l.last.map_or_else(String::new, |p| p.to_string());
        digest.write(last.as_bytes());
        for n in [
            user as u64,
            l.accepted,
            l.delivered,
            l.reconnects,
            l.recovered,
            l.gaps,
            l.duplicates,
        ] {
            digest.write(&n.to_le_bytes());
        }
    }
    let latencies = sorted(&books.latencies);
    for l in &latencies {
        digest.write(&(l.as_nanos() as u64).to_le_bytes());
    }
    let connects = sorted(&books.connects);
    s.connect_p50_ms = percentile(&connects, 0.50);
    s.connect_p99_ms = percentile(&connects, 0.99);
    s.replays = latencies.len() as u64;
    s.replay_p50_ms = percentile(&latencies, 0.50);
    s.replay_p99_ms = percentile(&latencies, 0.99);
    s.replay_max_ms = percentile(&latencies, 1.0);
    s.delivery_ratio = if s.accepted == 0 {
        1.0
    } else {
        s.delivered as f64 / s.accepted as f64
    };
    s.digest = format!("{:#018x}", digest.finish());
    s
}

/// The summary as printed: a sentence, a markdown table and the digest. Byte-identical for
/// the same options and seed.
pub fn markdown(s: &Summary) -> String {
    let o = &s.options;
    let link = match o.net {
        Some([lo, hi]) if o.nodes > 1 => format!(
            "through {} real server nodes over a simulated store and simulated TCP ({lo}–{hi} ms per packet), fault at half time: {}",
            o.nodes, o.fault
        ),
        Some([lo, hi]) => format!(
            "through the real WebSocket server over simulated TCP ({lo}–{hi} ms per packet)"
        ),
        None => "in process (clients read the core's sinks directly)".to_owned(),
    };
    let target = o
        .bug
        .map_or("the core".to_owned(), |b| format!("{b} ({})", b.story()));
    format!(
        "disconnect benchmark: {} users, {} events/s each for {} virtual s, every socket closed by force every 12–18 s and offline 1.5–2.5 s; history {} messages a user; seed {}; {target}, {link}\n\n{}digest {}\n",
        o.users,
        o.rate_per_s,
        o.seconds,
        o.history,
        o.seed,
        table(s, "").markdown(),
        s.digest,
    )
}

/// The summary as a one-row table, named `disconnect-` and the mode. Every cell is a function
/// of the options and the seed (times are virtual).
pub fn table(s: &Summary, command: &str) -> Table {
    let name = format!("disconnect-{}", s.mode.replace(' ', "-"));
    let mut t = Table::new(
        &name,
        command,
        [
            "users",
            "accepted",
            "delivered",
            "delivery ratio",
            "reconnects",
            "recovered in full",
            "gaps signalled (messages)",
            "unsignalled gaps",
            "duplicates",
            "replays",
            "replay p50 ms",
            "replay p99 ms",
            "replay max ms",
            "virtual s",
        ]
        .iter()
        .fold(vec![Column::text("mode")], |mut c, title| {
            c.push(Column::count(title));
            c
        }),
    );
    t.row(vec![
        s.mode.to_owned(),
        s.options.users.to_string(),
        s.accepted.to_string(),
        s.delivered.to_string(),
        format!("{:.6}", s.delivery_ratio),
        s.reconnects.to_string(),
        s.recovered.to_string(),
        format!("{} ({})", s.gaps_signalled, s.lost_signalled),
        s.unsignalled_gaps.to_string(),
        s.duplicates.to_string(),
        s.replays.to_string(),
        format!("{:.1}", s.replay_p50_ms),
        format!("{:.1}", s.replay_p99_ms),
        format!("{:.1}", s.replay_max_ms),
        format!("{:.1}", s.virtual_s),
    ]);
    t.notes.push(format!(
        "{}: connects p50 {:.1} ms, p99 {:.1} ms, {} refused",
        s.mode, s.connect_p50_ms, s.connect_p99_ms, s.refused
    ));
    t
}

/// Runs over many nodes as one table, `disconnect-nodes`: a row per fault.
pub fn nodes_table(summaries: &[Summary], command: &str) -> Table {
    let mut t = Table::new(
        "disconnect-nodes",
        command,
        [
            "users",
            "accepted",
            "delivery ratio",
            "reconnects",
            "recovered in full",
            "gaps signalled (messages)",
            "unsignalled gaps",
            "duplicates",
            "ended by a node",
            "replay p50 ms",
            "replay p99 ms",
        ]
        .iter()
        .fold(vec![Column::text("fault")], |mut c, title| {
            c.push(Column::count(title));
            c
        }),
    );
    for s in summaries {
        t.row(vec![
            s.options.fault.label().to_owned(),
            s.options.users.to_string(),
            s.accepted.to_string(),
            format!("{:.6}", s.delivery_ratio),
            s.reconnects.to_string(),
            s.recovered.to_string(),
            format!("{} ({})", s.gaps_signalled, s.lost_signalled),
            s.unsignalled_gaps.to_string(),
            s.duplicates.to_string(),
            s.ended_by_server.to_string(),
            format!("{:.1}", s.replay_p50_ms),
            format!("{:.1}", s.replay_p99_ms),
        ]);
    }
    if let Some(s) = summaries.first() {
        t.notes.push(format!(
            "{} nodes over the simulated store, each connect to the next node; {} events/s a user for {} virtual s; each fault once at half time; seed {}",
            s.options.nodes, s.options.rate_per_s, s.options.seconds, s.options.seed
        ));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use wsreg::{Epoch, GapReason, UserKey};

    fn env(epoch: Epoch, seq: u64, payload: Payload) -> Envelope {
        let key = UserKey::new("u").expect("valid");
        Envelope::new(key, Position::new(epoch, seq), payload)
    }

    fn text(epoch: Epoch, seq: u64) -> Envelope {
        env(epoch, seq, Payload::Text { text: "t".into() })
    }

    #[test]
    fn a_ledger_tells_holes_gaps_and_duplicates_apart() {
        let e = Epoch::new(0, 1);
        let now = Instant::now();
        let mut l = Ledger::default();
        l.read(&text(e, 1), now);
        l.read(&text(e, 2), now);
        l.read(&text(e, 2), now); // again
        l.read(&text(e, 5), now); // 3 and 4 never said
        let gap = Payload::Gap {
            from: 6,
            to: 8,
            reason: GapReason::Trimmed,
        };
        l.read(&env(e, 8, gap), now);
        l.read(&text(e, 9), now);
        assert_eq!(
            (l.delivered, l.duplicates, l.holes, l.lost_unsignalled),
            (4, 1, 1, 2)
        );
        assert_eq!((l.gaps, l.lost_signalled), (1, 3));
        assert_eq!(l.last, Some(Position::new(e, 9)));
    }

    #[test]
    fn leaving_an_epoch_counts_what_was_accepted_after_the_position_as_told_or_not() {
        let (old, new) = (Epoch::new(0, 1), Epoch::new(0, 2));
        let now = Instant::now();
        let ledger = |head: u64| Ledger {
            last: Some(Position::new(old, 3)),
            acked: [(old, head)].into_iter().collect(),
            ..Ledger::default()
        };
        let changed = Payload::Gap {
            from: 1,
            to: 0,
            reason: GapReason::EpochChanged,
        };
        // Told: an `epoch_changed` marker covers messages 4 and 5 of the old epoch.
        let mut told = ledger(5);
        told.read(&env(new, 0, changed), now);
        told.read(&text(new, 1), now);
        assert_eq!((told.gaps, told.lost_signalled, told.holes), (1, 2, 0));
        // Not told: the new epoch's first message with no marker before it.
        let mut silent = ledger(5);
        silent.read(&text(new, 1), now);
        assert_eq!((silent.holes, silent.lost_unsignalled), (1, 2));
        // Nothing accepted after the position: nothing lost either way.
        let mut even = ledger(3);
        even.read(&text(new, 1), now);
        assert_eq!(
            (even.holes, even.lost_unsignalled, even.delivered),
            (0, 0, 1)
        );
    }

    #[test]
    fn a_replay_ends_when_the_head_at_reconnect_is_read() {
        let e = Epoch::new(0, 1);
        let t = Instant::now();
        let mut l = Ledger {
            last: Some(Position::new(e, 1)),
            replay: Some((Position::new(e, 3), t)),
            ..Ledger::default()
        };
        assert_eq!(l.read(&text(e, 2), t + Duration::from_millis(4)), None);
        assert_eq!(
            l.read(&text(e, 3), t + Duration::from_millis(7)),
            Some(Duration::from_millis(7))
        );
        assert!(l.replay.is_none());
    }
}
