//! The `World`: one run of a plan against a backend. A safety phase plays every user's ops
//! (faults included) with the invariants checked after every step; a liveness phase then heals
//! (slow readers speed up, every user returns to `unified`), requires every queue to drain
//! within the plan's bound, closes every tab, and requires every idle manager to be reaped.

mod client;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use wsreg::{Envelope, Mode, Position, UserContext};

use crate::check::coverage::Coverage;
use crate::check::invariant::holding::Learned;
use crate::check::invariant::violation;
use crate::check::invariant::Checks;
use crate::check::invariant::Invariant;
use crate::check::outcome::Outcome;
use crate::check::trace::{Step, What};
use crate::generate::plan::{NetFault, NetFaultKind, Plan};
use crate::generate::sites::Site;
use crate::run::backend::{Backend, Factory, Network};
use crate::run::recorder::{tag, Keep, Recorder, Stats};
use client::{close_handle, drop_all_tabs, user_task, Tab};

/// A simulated user.
pub(crate) struct SimUser {
    pub(crate) name: Arc<str>,
    pub(crate) ctx: UserContext,
}

/// Everything the tasks of one run share.
pub(crate) struct World {
    plan: Arc<Plan>,
    backend: Arc<dyn Backend>,
    /// Network runs: the faults of the simulated network.
    network: Option<Arc<dyn Network>>,
    recorder: Arc<Recorder>,
    users: Vec<SimUser>,
    tabs: Vec<Mutex<Vec<Tab>>>,
    start: Instant,
    healed: AtomicBool,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    readers: Mutex<Vec<JoinHandle<()>>>,
    /// Tabs whose reader is still reading (user, connection): a stall report names them.
    reading: Mutex<std::collections::BTreeSet<(usize, u64)>>,
    /// What each user's client is in the middle of, and since when (virtual ms).
    busy: Mutex<Vec<Option<(&'static str, u64)>>>,
    /// The last position each user's tabs saw (what its client resumes after).
    seen: Mutex<Vec<Option<Position>>>,
    /// Network runs: how many partitions are in force (the link heals when the last ends).
    cuts: AtomicUsize,
    /// Network runs: the server's life; a reader stops reading when the server it was
    /// connected to has died.
    life: AtomicU64,
    /// Network runs: between a server kill and its restart (probes would see a dead registry).
    restarting: AtomicBool,
    /// One restart at a time.
    restart_lock: tokio::sync::Mutex<()>,
    /// Tabs the clients have opened (or tried to), for the client's own tab numbers.
    tabs_opened: AtomicU64,
    /// The checks that apply to this run.
    checks: Checks,
    /// The mode each user last asked for (what healing undoes when the backend cannot be
    /// probed).
    modes: Mutex<Vec<Mode>>,
    /// Connects their clients gave up on whose sockets the backend still holds (by the
    /// client's tab number), and the tasks watching them.
    abandoned: Mutex<std::collections::BTreeMap<u64, (usize, u64)>>,
    watchers: Mutex<Vec<JoinHandle<()>>>,
    /// Users a fault touched (see [`World::fill`]).
    shaken: Mutex<std::collections::BTreeMap<usize, Shaken>>,
}

/// How long a killed server node stays down before it boots again.
const DOWNTIME: Duration = Duration::from_millis(50);
/// Many nodes: how long the store is down when it restarts.
const STORE_DOWNTIME: Duration = Duration::from_millis(20);

/// What one run produced.
#[derive(Debug, Serialize)]
pub struct RunReport {
    /// How it ended.
    pub outcome: Outcome,
    /// Steps taken.
    pub steps: u64,
    /// The trace hash after the last step.
    pub hash: u64,
    /// Virtual time the run took, in microseconds.
    pub virtual_us: u64,
    /// The kept steps.
    #[serde(skip)]
    pub trace: Vec<Step>,
    /// What senders were told, beside the trace (with every step kept).
    #[serde(skip)]
    pub confirms: Vec<crate::check::trace::Confirmed>,
    /// What clients learned that no step shows, beside the trace (with every step kept).
    #[serde(skip)]
    pub learned: Vec<crate::check::invariant::holding::Noted>,
    /// Coverage points hit.
    pub coverage: Coverage,
    /// Counts.
    pub stats: Stats,
}

impl World {
    pub(crate) fn step(&self, u: usize, conn: Option<u64>, what: What) {
        self.record(u, conn, None, what);
    }

    pub(crate) fn record(&self, u: usize, conn: Option<u64>, mgr: Option<u64>, what: What) {
        self.recorder
            .record(Arc::clone(&self.users[u].name), conn, mgr, what);
    }

    /// Records a step about one of the user's tabs: `tab` is the client's own number for it,
    /// `conn` the backend's.
    pub(crate) fn record_tab(&self, u: usize, tab: u64, conn: u64, mgr: Option<u64>, what: What) {
        let user = Arc::clone(&self.users[u].name);
        self.recorder
            .record_tab(user, Some(conn), mgr, Some(tab), what);
    }

    /// The client's number for a new tab: the run's connect attempts, counted.
    pub(crate) fn next_tab(&self) -> u64 {
        self.tabs_opened.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Records a step about a connect attempt of the user's (`tab`: the client's number for it),
    /// before the backend has given it a number of its own.
    pub(crate) fn record_attempt(&self, u: usize, tab: u64, what: What) {
        let user = Arc::clone(&self.users[u].name);
        self.recorder.record_tab(user, None, None, Some(tab), what);
    }

    /// Hands the checker what the user's client learned that no step shows.
    pub(crate) fn learned(&self, u: usize, tab: Option<u64>, learned: &Learned) {
        self.recorder.learned(&self.users[u].name, tab, learned);
    }

    /// Keeps watching the socket of a connect its client gave up on (`reader` watches it).
    pub(crate) fn watch_abandoned(&self, u: usize, tab: u64, reader: JoinHandle<()>) {
        let gave_up = self.recorder.last_step();
        self.abandoned
            .lock()
            .expect("abandoned")
            .insert(tab, (u, gave_up));
        self.watchers.lock().expect("watchers").push(reader);
    }

    /// The backend let go of the socket of an abandoned connect.
    pub(crate) fn let_go(&self, tab: u64) {
        self.abandoned.lock().expect("abandoned").remove(&tab);
    }

    /// The managers the backend (or, over many nodes, every node that is up) still holds
    /// (none when it cannot be inspected).
    fn managers_left(&self) -> Vec<wsreg::ManagerView> {
        if let Some(nodes) = self.network.as_ref().and_then(|n| n.inspect_nodes()) {
            return nodes.into_iter().flat_map(|v| v.managers).collect();
        }
        self.backend.inspect().map_or(Vec::new(), |v| v.managers)
    }

    /// Connections the backend (or, over many nodes, every node) still reports (none when it
    /// cannot be inspected).
    fn connections_left(&self) -> usize {
        self.managers_left()
            .iter()
            .map(|m| m.connections.len())
            .sum()
    }

    /// After every tab closed and the idle time passed: a connect its client gave up on whose
    /// socket the backend still holds is a tab nobody holds, taking a slot for ever.
    fn abandoned_still_held(&self) {
        let first = self
            .abandoned
            .lock()
            .expect("abandoned")
            .values()
            .next()
            .copied();
        if let Some((u, step)) = first {
            if self.checks.black {
                self.recorder.violate(violation!(self.recorder.last_step(), Invariant::I5, "{} gave up on a connect at step {step}, yet once every tab had closed and the idle time had passed the backend still held that socket: a tab nobody holds, taking a slot",
                    self.users[u].name));
            }
        }
        for w in std::mem::take(&mut *self.watchers.lock().expect("watchers")) {
            w.abort();
        }
    }

    pub(crate) fn refused(&self, u: usize, action: &'static str, error: &wsreg::Error) {
        self.refused_tab(u, None, action, error);
    }

    /// A call about the client's tab `tab` (or about no tab) was refused.
    pub(crate) fn refused_tab(
        &self,
        u: usize,
        tab: Option<u64>,
        action: &'static str,
        error: &wsreg::Error,
    ) {
        let shown = Arc::from(error.to_string());
        let user = Arc::clone(&self.users[u].name);
        let what = What::Refused {
            action,
            error: shown,
        };
        self.recorder.record_tab(user, None, None, tab, what);
        self.learned(u, tab, &Learned::Refusal(error.clone()));
        if matches!(error, wsreg::Error::Store(_)) {
            self.shaken(u, Shaken::StoreFailed);
        }
        // A refusal that names a mode the user never set: another user's mode reached it.
        if let wsreg::Error::Suppressed { mode, .. } = error {
            let set = self.modes.lock().expect("modes")[u];
            if *mode != set && self.checks.black && self.recorder.checking() {
                self.recorder.violate(violation!(self.recorder.last_step(), Invariant::I4, "{}'s {action} was refused because its mode is {mode}, but {} last set {set}: another user's mode reached it",
                        self.users[u].name, self.users[u].name));
            }
        }
    }

    /// A tab read an item of its stream: a message or a gap marker. The user's client keeps the
    /// last position its tabs saw, to resume from.
    /// `conn` is the backend's number for the tab (none for a connect its client gave up on).
    pub(crate) fn received(
        &self,
        u: usize,
        tab: u64,
        conn: Option<u64>,
        env: &Envelope,
        lost: bool,
    ) {
        let at = env.position();
        let what = match env.payload() {
            wsreg::Payload::Gap { from, reason, .. } => What::Gap {
                at,
                from: *from,
                reason: *reason,
                lost,
            },
            payload => What::Received {
                at,
                msg: tag(payload),
                to: env.to().to_shared(),
                lost,
            },
        };
        let user = Arc::clone(&self.users[u].name);
        self.recorder.record_tab(user, conn, None, Some(tab), what);
        if !lost {
            let mut seen = self.seen.lock().expect("seen");
            let last = &mut seen[u];
            // Within one epoch the furthest position; a new epoch replaces the old one.
            if last.is_none_or(|l| l.epoch != at.epoch || l.seq < at.seq) {
                *last = Some(at);
            }
        }
    }

    /// The last position the user's tabs saw, to resume after.
    pub(crate) fn last_seen(&self, u: usize) -> Option<Position> {
        self.seen.lock().expect("seen")[u]
    }

    pub(crate) fn probe(&self, u: usize) {
        if !self.recorder.checking() || self.restarting.load(Ordering::Relaxed) {
            return;
        }
        if !self.checks.probes {
            return;
        }
        let probe = self.backend.probe(&self.users[u].ctx);
        self.recorder.probe(&self.users[u].name, probe);
    }

    /// Yields when buggify fires at `site`.
    pub(crate) async fn maybe_yield(&self, site: Site) {
        crate::run::buggify::maybe_yield(&self.plan, &self.recorder, site).await;
    }

    pub(crate) fn doing(&self, u: usize, op: Option<&'static str>) {
        let since = self.start.elapsed().as_millis() as u64;
        self.busy.lock().expect("busy")[u] = op.map(|op| (op, since));
    }

    /// Waits for `clients` to finish. Clients may run behind their plan (over a slow network an
    /// op takes round trips), so the run is only stalled when, past the last op's time plus the
    /// liveness bound, some client has been in one op for longer than the bound (or none is in
    /// an op and they still have not finished). Returns whether they finished.
    async fn finish_or_stall(&self, clients: impl Future<Output = ()>, last_op_ms: u64) -> bool {
        let bound = self.plan.liveness_bound_ms;
        let mut deadline = last_op_ms + bound;
        tokio::pin!(clients);
        loop {
            let wait = Duration::from_millis(deadline).saturating_sub(self.start.elapsed());
            if tokio::time::timeout(wait, &mut clients).await.is_ok() {
                return true;
            }
            let now = self.start.elapsed().as_millis() as u64;
            match self.oldest_op_since() {
                Some(since) if since + bound > now => deadline = since + bound,
                _ => return false,
            }
        }
    }

    /// When the longest-running op of any client began (virtual ms), if one is running.
    fn oldest_op_since(&self) -> Option<u64> {
        let busy = self.busy.lock().expect("busy");
        busy.iter().flatten().map(|(_, since)| *since).min()
    }

    /// Users whose client is stuck in an op, for a stall report.
    fn stalled(&self) -> Vec<String> {
        let busy = self.busy.lock().expect("busy");
        let mut out: Vec<String> = busy
            .iter()
            .enumerate()
            .filter_map(|(u, b)| {
                b.map(|(op, since)| {
                    format!(
                        "{}: stuck in `{op}` since t={:.3}s",
                        self.users[u].name,
                        since as f64 / 1e3
                    )
                })
            })
            .collect();
        if out.is_empty() {
            out.push("agent, burst or cleanup tasks never finished".to_owned());
        }
        out
    }

    /// The server's current life (network runs; always 0 in process).
    pub(crate) fn life(&self) -> u64 {
        self.life.load(Ordering::Relaxed)
    }

    /// Plays one network fault at its time.
    async fn fault(&self, fault: NetFault) {
        let Some(net) = &self.network else {
            return;
        };
        let at = self.start + Duration::from_millis(fault.at_ms);
        tokio::time::sleep_until(at).await;
        if self.recorder.failed() {
            return;
        }
        match fault.kind {
            NetFaultKind::Partition { ms } => {
                self.system(What::Partition { ms });
                if self.cuts.fetch_add(1, Ordering::Relaxed) == 0 {
                    net.partition(true);
                }
                tokio::time::sleep(Duration::from_millis(ms)).await;
                if self.cuts.fetch_sub(1, Ordering::Relaxed) == 1 {
                    net.partition(false);
                    self.system(What::Healed);
                }
            }
            NetFaultKind::NodeRestart { node } => {
                let _one = self.restart_lock.lock().await;
                client::drop_tabs_on(self, net.as_ref(), node);
                self.system(What::NodeDown { node });
                net.kill_node(node);
                tokio::time::sleep(DOWNTIME).await;
                net.start_node(node);
                self.system(What::NodeUp { node });
            }
            NetFaultKind::StoreRestart => {
                let _one = self.restart_lock.lock().await;
                net.kill_store();
                tokio::time::sleep(STORE_DOWNTIME).await;
                net.start_store();
                self.system(What::StoreRestarted);
            }
            NetFaultKind::StoreCut { node, ms } => {
                self.system(What::StoreCut { node, ms });
                net.cut_store(node, true);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                net.cut_store(node, false);
                self.system(What::StoreHealed { node });
            }
            NetFaultKind::StoreFailover { lose } => {
                let _one = self.restart_lock.lock().await;
                net.fail_over_store(lose);
                tokio::time::sleep(STORE_DOWNTIME).await;
                net.start_store();
                self.system(What::StoreFailedOver { lose });
            }
            NetFaultKind::StoreFlush => {
                net.flush_store();
                self.system(What::StoreFlushed);
            }
            NetFaultKind::StoreEvict { nth, history } => {
                let key = net.evict_in_store(nth, history);
                self.system(What::StoreEvicted { key, history });
            }
            NetFaultKind::StoreSilence => {
                net.silence_store();
                self.system(What::StoreSilenced);
            }
            NetFaultKind::StoreLiveLate { max_ms, ms } => {
                self.system(What::StoreLiveLate { max_ms, ms });
                net.delay_live(max_ms);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                net.delay_live(0);
                self.system(What::StoreLiveOnTime);
            }
            NetFaultKind::Pause { node, ms } => self.pause(net.as_ref(), Some(node), ms).await,
            NetFaultKind::StorePause { ms } => self.pause(net.as_ref(), None, ms).await,
            NetFaultKind::StoreSlow { reply_ms, ms } => {
                self.system(What::StoreSlow { reply_ms, ms });
                net.slow_store(reply_ms);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                net.slow_store(0);
                self.system(What::StorePrompt);
            }
            NetFaultKind::Restart => {
                let _one = self.restart_lock.lock().await;
                net.kill_server();
                self.restarting.store(true, Ordering::Relaxed);
                drop_all_tabs(self).await;
                self.life.fetch_add(1, Ordering::Relaxed);
                self.system(What::ServerDown);
                tokio::time::sleep(DOWNTIME).await;
                net.start_server();
                self.system(What::ServerUp);
                self.restarting.store(false, Ordering::Relaxed);
            }
        }
    }

    /// Stops server node `node` (`None`: the store) for `ms`, then lets it run what reached
    /// it meanwhile. Not across a restart: a node killed while paused would start paused.
    async fn pause(&self, net: &dyn Network, node: Option<u32>, ms: u64) {
        let _one = self.restart_lock.lock().await;
        self.system(What::Paused { node, ms });
        net.pause(node, true);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        net.pause(node, false);
        self.system(What::Resumed { node });
    }

    pub(crate) fn healed(&self) -> bool {
        self.healed.load(Ordering::Relaxed)
    }

    pub(crate) fn track(&self, task: JoinHandle<()>) {
        self.tasks.lock().expect("tasks").push(task);
    }

    pub(crate) fn track_reader(&self, task: JoinHandle<()>) {
        self.readers.lock().expect("readers").push(task);
    }

    async fn join_all(list: &Mutex<Vec<JoinHandle<()>>>) {
        loop {
            let batch = std::mem::take(&mut *list.lock().expect("tasks"));
            if batch.is_empty() {
                return;
            }
            for task in batch {
                let _ = task.await;
            }
        }
    }

    fn phase(&self, name: &'static str) {
        self.system(What::Phase(name));
    }

    /// Records a step about the run itself (a phase, a fault), not about a user.
    fn system(&self, what: What) {
        self.recorder.record(Arc::from("-"), None, None, what);
    }

    /// Heal, drain, close, reap. Returns `Stuck` if the drain misses its bound.
    async fn liveness(self: &Arc<Self>) -> Option<Outcome> {
        let bound = Duration::from_millis(self.plan.liveness_bound_ms);
        if tokio::time::timeout(bound, Self::join_all(&self.tasks))
            .await
            .is_err()
        {
            return Some(Outcome::Stuck {
                blocked: self.stalled(),
            });
        }
        self.phase("heal");
        self.healed.store(true, Ordering::Relaxed);
        for (u, user) in self.users.iter().enumerate() {
            let mode = if self.checks.probes {
                self.backend.probe(&user.ctx).map(|p| p.mode)
            } else {
                Some(self.modes.lock().expect("modes")[u])
            };
            if mode.is_some_and(|m| m != Mode::Unified) {
                self.step(u, None, What::SetMode(Mode::Unified));
                if let Err(e) = self.backend.set_mode(&user.ctx, Mode::Unified) {
                    self.refused(u, "mode", &e);
                }
            }
        }
        // Every open tab must now read everything its user's senders were told about, or be
        // told with a gap marker what it will never get. One that cannot within the bound lost
        // messages silently (a backend that stalls outright is caught earlier, as stuck). The
        // world waits the same whoever judges; only the black-box oracle judges what it saw.
        // Over many nodes a node closes the tabs of a stream the store lost, and their clients
        // may only learn it later: split tabs are judged once the tabs drained.
        let many_nodes = self.network.as_ref().is_some_and(|n| n.nodes() > 1);
        if !many_nodes {
            self.recorder.check_fan_out();
        }
        let deadline = Instant::now() + bound;
        while self.recorder.in_flight() > 0 && !self.recorder.failed() {
            if Instant::now() >= deadline && !self.checks.black {
                break;
            }
            if Instant::now() >= deadline {
                let behind = self.recorder.in_flight_by_tab();
                self.recorder.violate(violation!(
                    self.recorder.last_step(),
                    Invariant::I8,
                    "{} ms after healing, {} tab(s) still miss messages: {}",
                    bound.as_millis(),
                    behind.len(),
                    behind.first().map_or("", String::as_str)
                ));
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if many_nodes {
            self.recorder.check_fan_out();
            if self.recorder.failed() {
                return None;
            }
        }
        self.phase("close every tab");
        if let Some(stuck) = self.close_every_tab().await {
            return Some(stuck);
        }
        if many_nodes {
            if let Some(stuck) = self.fill().await {
                return Some(stuck);
            }
        }
        self.phase("reap");
        // A server may still hold the socket of a connect its client gave up on (its close
        // travels the network like any packet): the idle time counts from when it let go.
        let deadline = Instant::now() + bound;
        while Instant::now() < deadline && self.connections_left() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let ttl = Duration::from_millis(self.plan.limits.idle_ttl_ms);
        tokio::time::sleep(ttl + Duration::from_millis(50)).await;
        self.abandoned_still_held();
        // Over many nodes, every node's registry: a manager a node kept past its idle time is
        // a zombie there, whatever the other nodes did. A node may still be working through a
        // connect its client gave up on long ago (behind the store), and make a manager for it
        // now, to be reaped an idle time later: so a manager counts only once it has been there
        // a whole idle time.
        let mut left = self.managers_left();
        if many_nodes && !left.is_empty() {
            let seen = |m: &wsreg::ManagerView| (m.user.clone(), m.manager, m.epoch);
            let before: std::collections::BTreeSet<_> = left.iter().map(seen).collect();
            tokio::time::sleep(ttl + Duration::from_millis(50)).await;
            left = self.managers_left();
            left.retain(|m| before.contains(&seen(m)));
        }
        if let Some(m) = left.first() {
            self.recorder.violate(violation!(self.recorder.last_step(), Invariant::I9, "{} manager(s) outlived the idle TTL after every tab closed, first {}'s {} with {} connection(s)",
                    left.len(),
                    m.user,
                    m.manager,
                    m.connections.len()));
        }
        None
    }

    /// Closes every tab the clients hold and waits for their sockets to end. Returns `Stuck`
    /// if one does not within the liveness bound.
    async fn close_every_tab(&self) -> Option<Outcome> {
        let bound = Duration::from_millis(self.plan.liveness_bound_ms);
        for (u, tabs) in self.tabs.iter().enumerate() {
            let open = std::mem::take(&mut *tabs.lock().expect("tabs"));
            for t in open {
                close_handle(self, u, t).await;
            }
        }
        if tokio::time::timeout(bound, Self::join_all(&self.readers))
            .await
            .is_err()
        {
            let reading = self.reading.lock().expect("reading");
            let mut blocked: Vec<String> = reading
                .iter()
                .map(|(u, conn)| {
                    format!(
                        "{}: tab c{conn} was still open {} ms after every tab was closed (its socket never ended)",
                        self.users[*u].name,
                        bound.as_millis()
                    )
                })
                .collect();
            if blocked.is_empty() {
                blocked.push(format!(
                    "some tabs were still connecting {} ms after every tab was closed",
                    bound.as_millis()
                ));
            }
            return Some(Outcome::Stuck { blocked });
        }
        None
    }

    /// Over many nodes each user's count of connections lives in the store, where no
    /// inspection reaches, so clients probe it. Once every tab is closed, no node holds a
    /// connection, and whatever a dead node or an unanswered call may have left counted has
    /// run out (two leases), a few users (those a fault touched first) open as many tabs as
    /// their limit allows, one after another, and close them again. Each connect is judged
    /// like any other, and from the phase on nothing earlier counts: a refusal now, with no
    /// tab of the user's open, is a false refusal (I6), whatever leaked the slot.
    async fn fill(self: &Arc<Self>) -> Option<Outcome> {
        // Quiet first: no node holds a connection any more (each noticed every socket that
        // dropped), and any slot a dead node, an unanswered call or a close's release still
        // in flight held has run out. A run that never gets there skips the fill (the reap
        // judges what was left held).
        let deadline = Instant::now() + Duration::from_millis(self.plan.liveness_bound_ms);
        while self.connections_left() > 0 {
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let stale = 2 * crate::generate::config::NODE_LEASE_MS + 50;
        tokio::time::sleep(Duration::from_millis(stale)).await;
        self.phase(crate::check::trace::FILL_PHASE);
        let tabs = self.plan.limits.max_connections_per_user.min(FILL_TABS);
        for u in self.fill_users() {
            for _ in 0..tabs {
                client::open_tab(Arc::clone(self), u, client::TabKind::default()).await;
            }
        }
        self.close_every_tab().await
    }

    /// Who fills to the limit: the users a fault touched (a node died under their tabs, the
    /// store failed a call of theirs), then others drawn by the seed, `FILL_USERS` in all.
    fn fill_users(&self) -> Vec<usize> {
        use rand::seq::SliceRandom;
        let mut users: Vec<usize> = (0..self.users.len()).collect();
        users.shuffle(&mut madsim::rand::thread_rng());
        let shaken = self.shaken.lock().expect("shaken");
        users.sort_by_key(|u| shaken.get(u).copied().unwrap_or(Shaken::Not));
        users.truncate(FILL_USERS);
        users
    }

    /// A fault touched user `u` (see [`World::fill`]).
    pub(crate) fn shaken(&self, u: usize, how: Shaken) {
        let mut shaken = self.shaken.lock().expect("shaken");
        let was = shaken.entry(u).or_insert(how);
        *was = (*was).min(how);
    }
}

/// How a fault touched a user, most telling first (who fills to the limit first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Shaken {
    /// A server node died under one of its tabs.
    Dropped,
    /// The store failed one of its calls.
    StoreFailed,
    /// No fault touched it.
    Not,
}

/// Over many nodes, how many users fill their tabs to the limit once the run is over, and at
/// most how many tabs each opens.
const FILL_USERS: usize = 6;
const FILL_TABS: usize = 16;

/// The backend a run drives, and its network when the plan has one: then the backend the
/// factory makes sits behind the real WebSocket server on a simulated node (see
/// `net::NetBackend`), and the world drives the server's clients.
fn over_transport(
    factory: Factory,
    plant: Option<crate::run::backend::StorePlant>,
    config: wsreg::RegistryConfig,
    observer: Option<Arc<dyn wsreg::Observer>>,
    plan: &Plan,
) -> (Arc<dyn Backend>, Option<Arc<dyn Network>>) {
    #[cfg(madsim)]
    if let Some(net) = &plan.net {
        let net = Arc::new(crate::run::net::NetBackend::new(
            factory, config, observer, net, plant,
        ));
        return (
            Arc::clone(&net) as Arc<dyn Backend>,
            Some(net as Arc<dyn Network>),
        );
    }
    let _ = (plan, plant);
    (factory(config, observer), None)
}

/// Runs `plan` against a fresh backend inside the current (simulated) runtime.
pub async fn execute(
    factory: Factory,
    plan: Arc<Plan>,
    keep: Keep,
    black_box: Arc<std::sync::OnceLock<Arc<Recorder>>>,
) -> RunReport {
    execute_over(factory, None, plan, keep, black_box).await
}

/// [`execute`], with each server node's store handle wrapped by `plant` when the plan runs over
/// many nodes.
pub async fn execute_over(
    factory: Factory,
    plant: Option<crate::run::backend::StorePlant>,
    plan: Arc<Plan>,
    keep: Keep,
    black_box: Arc<std::sync::OnceLock<Arc<Recorder>>>,
) -> RunReport {
    if plan.buggify && plan.net.is_none() {
        madsim::buggify::enable();
    }
    let network = plan.net.is_some();
    let recorder = Arc::new(Recorder::new(plan.limits.clone(), keep, network));
    if plan.net.as_ref().is_some_and(|n| n.nodes > 1) {
        recorder.over_many_nodes();
    }
    // Should the run panic, its trace up to the panic is read from here.
    let _ = black_box.set(Arc::clone(&recorder));
    let observer = (recorder.checking() && plan.oracle.white())
        .then(|| Arc::clone(&recorder) as Arc<dyn wsreg::Observer>);
    let config = plan.limits.registry_config();
    let (backend, network) = over_transport(factory, plant, config, observer, &plan);
    let checks = Checks::new(plan.oracle, backend.capabilities());
    recorder.set_checks(checks);
    let users: Vec<SimUser> = plan
        .users
        .iter()
        .map(|u| SimUser {
            name: Arc::from(u.name.as_str()),
            ctx: UserContext::new(&u.name)
                .and_then(|c| c.with_thread_id(&u.thread))
                .expect("plans are validated before they run"),
        })
        .collect();
    let tabs = users.iter().map(|_| Mutex::new(Vec::new())).collect();
    let world = Arc::new(World {
        plan: Arc::clone(&plan),
        backend,
        network,
        recorder: Arc::clone(&recorder),
        users,
        tabs,
        start: Instant::now(),
        healed: AtomicBool::new(false),
        tasks: Mutex::new(Vec::new()),
        readers: Mutex::new(Vec::new()),
        reading: Mutex::new(std::collections::BTreeSet::new()),
        busy: Mutex::new(vec![None; plan.users.len()]),
        seen: Mutex::new(vec![None; plan.users.len()]),
        cuts: AtomicUsize::new(0),
        life: AtomicU64::new(0),
        restarting: AtomicBool::new(false),
        restart_lock: tokio::sync::Mutex::new(()),
        tabs_opened: AtomicU64::new(0),
        checks,
        modes: Mutex::new(vec![Mode::Unified; plan.users.len()]),
        abandoned: Mutex::new(std::collections::BTreeMap::new()),
        watchers: Mutex::new(Vec::new()),
        shaken: Mutex::new(std::collections::BTreeMap::new()),
    });
    world.phase("safety");
    for fault in plan.net.iter().flat_map(|n| n.faults.iter().cloned()) {
        let world2 = Arc::clone(&world);
        world.track(tokio::spawn(async move { world2.fault(fault).await }));
    }
    let mut clients = Vec::new();
    for (u, ops) in plan.ops_by_user().into_iter().enumerate() {
        if ops.is_empty() {
            continue;
        }
        let ops = ops.into_iter().cloned().collect();
        clients.push(tokio::spawn(user_task(Arc::clone(&world), u, ops)));
    }
    // The safety phase may take until the last op plus the liveness bound; a client still busy
    // then is stuck (a wedged backend), reported as such rather than waited on forever.
    let last_op_ms = plan.ops.iter().map(|o| o.at_ms).max().unwrap_or(0);
    let last_op_ms = plan
        .net
        .iter()
        .flat_map(|n| &n.faults)
        .map(|f| f.at_ms)
        .fold(last_op_ms, u64::max);
    let all_done = async {
        for c in clients {
            let _ = c.await;
        }
    };
    let finished = world.finish_or_stall(all_done, last_op_ms).await;
    let stuck = if recorder.failed() {
        None
    } else if !finished {
        Some(Outcome::Stuck {
            blocked: world.stalled(),
        })
    } else {
        world.liveness().await
    };
    let virtual_us = world.start.elapsed().as_micros() as u64;
    let rec = recorder.finish(!recorder.failed() && stuck.is_none());
    let outcome = match (rec.violation, stuck) {
        (Some(v), _) => Outcome::Violation(v),
        (None, Some(stuck)) => stuck,
        (None, None) => Outcome::Pass,
    };
    // The report is made: stop the simulated nodes and let the executor drop what they still
    // ran. Left waiting, their tasks (and every registry, socket and queue they hold) would
    // outlive the run: about 0.6 MB a seed through the network, for as long as the campaign.
    if let Some(net) = &world.network {
        net.shut_down();
        tokio::task::yield_now().await;
    }
    RunReport {
        outcome,
        steps: rec.steps,
        hash: rec.hash,
        virtual_us,
        trace: rec.trace,
        confirms: rec.confirms,
        learned: rec.learned,
        coverage: rec.coverage,
        stats: rec.stats,
    }
}
