//! [`NetBackend`]: any backend behind the real WebSocket server of `wsreg-server`, running on a
//! simulated server node (10.0.0.1), with every client socket on a simulated clients' node
//! (10.0.0.2) speaking the real protocol over madsim's TCP. Messages reach the simulated users
//! only through real WebSocket frames; agents, probes and inspection go in-process to the
//! server's registry, as an agent inside the server process would.
//!
//! Faults ([`Network`]): partitions clog the link both ways; a restart kills the server node
//! (every socket drops, the registry is lost) and boots it again over a fresh registry. A
//! client whose connect fails for a network reason retries with backoff, as a real one would;
//! a registration the server made before it died is never handed to the harness.
//!
//! **Many nodes** (`nodes > 1`): that many server nodes, each the real server over the core's
//! [`wsreg::Node`], share one simulated stream store on a node of its own ([`store`]), reached
//! over madsim's TCP. A sticky load balancer puts each user's tabs on one node; each agent run
//! executes on the next node in turn (a text too), so messages cross nodes. Faults add node
//! restarts, store restarts and cuts between a node and the store. The registries are per
//! node, so such runs are judged by the black-box oracle: what the clients read.

use crate::check::coverage::CONNECT_DEADLINE_MARK;

mod gate;
mod socket;
mod store;
mod store_client;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use madsim::net::NetSim;
use madsim::runtime::{Handle as Sim, NodeHandle};
use madsim::task::NodeId;
use tokio::sync::{mpsc, oneshot};
use wsreg::{
    AgentEvent, Error, Mode, Observer, Position, RegistryConfig, RegistryView, Sink, UserContext,
    UserKey,
};
use wsreg_server::{auth, Server, ServerConfig};

use crate::run::backend::{
    Backend, BoxFuture, Capabilities, Connected, Factory, Handle, Network, Probe,
};
use gate::Gate;
use socket::{socket, Command, Dial, Greeting, Wiring};

const SERVER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const CLIENTS_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
const SERVER_ADDR: &str = "10.0.0.1:9001";
const STORE_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3));
const STORE_ADDR: &str = "10.0.0.3:6379";

/// Server node `i`'s address (node 0 is the single server's).
fn server_ip(i: usize) -> IpAddr {
    match i {
        0 => SERVER_IP,
        i => IpAddr::V4(Ipv4Addr::new(10, 0, 1, i as u8)),
    }
}

fn server_addr(i: usize) -> String {
    format!("{}:9001", server_ip(i))
}
const SECRET: &[u8] = b"wsreg-sim";
/// Tokens are checked against a clock that always says 0, and expire after one virtual hour.
const TOKEN_EXPIRY_MS: u64 = 3_600_000;
/// First and longest wait between connect attempts.
const RETRY: (Duration, Duration) = (Duration::from_millis(5), Duration::from_millis(200));

/// One life of the server process.
struct Life {
    /// Counts restarts; a registration from an earlier life is stale.
    epoch: u64,
    /// False between a kill and the next start.
    up: bool,
    backend: Arc<dyn Backend>,
    server: Arc<Server>,
    gate: Option<Arc<Gate>>,
}

/// A backend behind the real server, over the simulated network.
pub struct NetBackend {
    factory: Factory,
    config: RegistryConfig,
    /// The plan's server connect timeout (none: the server waits as long as the registry takes).
    connect_deadline: Option<Duration>,
    observer: Option<Arc<dyn Observer>>,
    /// Each server node's current life (one, unless the run has many nodes).
    lives: Vec<Arc<Mutex<Life>>>,
    /// Per node, one signal per socket of its current life, dropped when it dies. (Not a
    /// `watch`: tokio's watch wakes its waiters in an order drawn from an unseeded RNG.)
    deaths: Vec<Mutex<Vec<oneshot::Sender<()>>>>,
    server_nodes: Vec<NodeId>,
    clients: NodeHandle,
    /// Many nodes: the store's node, and how runs and numbers are spread over the nodes.
    many: Option<Many>,
}

/// What only a run over many nodes needs.
struct Many {
    store: NodeId,
    /// How late the store answers, and what its next start holds (the world's faults).
    control: Arc<store::StoreControl>,
    /// Whether the load balancer spreads connects over the nodes (else it is sticky).
    spread: bool,
    /// With `spread`: the node the next connect goes to.
    next_connect: std::sync::atomic::AtomicUsize,
    /// Each agent run in flight, by run id: the node it executes on.
    runs: Mutex<std::collections::BTreeMap<String, usize>>,
    /// The node the next run (or text) goes to.
    turn: std::sync::atomic::AtomicUsize,
    /// Connection numbers over every node and life (each node's registry numbers its own).
    conns: std::sync::atomic::AtomicU64,
    /// Manager numbers over every node and life: (node, life, manager) -> number.
    managers: Mutex<std::collections::BTreeMap<(usize, u64, u64), u64>>,
}

/// A tab's socket, as the harness holds it.
pub struct NetHandle {
    commands: mpsc::UnboundedSender<Command>,
    user: String,
    conn: u64,
    node: usize,
}

/// The server's settings in its `epoch`-th life, with the plan's connect timeout (none: the
/// server waits for the registry as long as it takes, as it did before plans had one, so that
/// every older plan replays as it was recorded).
fn server_config(epoch: u64, connect_deadline: Option<Duration>) -> ServerConfig {
    let mut config = ServerConfig::new(SECRET, || 0);
    config.boot = epoch;
    config.connect_timeout = connect_deadline;
    // The simulation judges the registry; the server's own guard against a client reconnecting
    // in a loop (tested in its abuse suite) would only add refusals of its own here.
    config.max_connects_per_user_per_second = u32::MAX;
    config
}

fn lock(life: &Mutex<Life>) -> MutexGuard<'_, Life> {
    life.lock().unwrap_or_else(PoisonError::into_inner)
}

impl NetBackend {
    /// Node `i`'s life.
    fn life_of(&self, i: usize) -> MutexGuard<'_, Life> {
        lock(&self.lives[i])
    }

    /// The single server's life (node 0).
    fn life(&self) -> MutexGuard<'_, Life> {
        self.life_of(0)
    }

    /// Node `i`'s current backend, or `None` while it is down.
    fn current_on(&self, i: usize) -> Option<Arc<dyn Backend>> {
        let life = self.life_of(i);
        life.up.then(|| Arc::clone(&life.backend))
    }

    /// The single server's current backend.
    fn current(&self) -> Option<Arc<dyn Backend>> {
        self.current_on(0)
    }

    /// The node a connect goes to: the user's own (a sticky load balancer), or the next one
    /// in turn (one that spreads).
    fn home(&self, ctx: &UserContext) -> usize {
        let n = self.lives.len();
        if n == 1 {
            return 0;
        }
        if let Some(many) = self.many.as_ref().filter(|m| m.spread) {
            return many.next_connect.fetch_add(1, Ordering::Relaxed) % n;
        }
        // FNV-1a of the user id: stable, and spread evenly enough.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in ctx.user_id().bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        (h % n as u64) as usize
    }

    /// The node the next run or text goes to: the next one up, in turn. Waits (a virtual
    /// millisecond at a time, a second at most) while every node is down or still booting.
    async fn next_up(&self, many: &Many) -> Result<usize, Error> {
        let n = self.lives.len();
        for _ in 0..1_000 {
            let start = many.turn.fetch_add(1, Ordering::Relaxed);
            if let Some(i) = (0..n)
                .map(|k| (start + k) % n)
                .find(|&i| self.life_of(i).up)
            {
                return Ok(i);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Err(Error::ShuttingDown)
    }

    /// Many nodes: where `event` executes (a run stays on the node it started on).
    async fn node_for_event(&self, many: &Many, event: &AgentEvent) -> Result<usize, Error> {
        let run = event.run_id().to_owned();
        if let AgentEvent::AgentStarted { .. } = event {
            let node = self.next_up(many).await?;
            many.runs
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(run, node);
            return Ok(node);
        }
        let mut runs = many.runs.lock().unwrap_or_else(PoisonError::into_inner);
        let node = runs.get(&run).copied().unwrap_or(0);
        if let AgentEvent::AgentCompleted { .. } = event {
            runs.remove(&run);
        }
        Ok(node)
    }

    fn new_life(
        factory: &Factory,
        config: &RegistryConfig,
        observer: &Option<Arc<dyn Observer>>,
        epoch: u64,
        connect_deadline: Option<Duration>,
    ) -> Life {
        let gate = observer.as_ref().map(|inner| {
            Arc::new(Gate {
                open: AtomicBool::new(true),
                inner: Arc::clone(inner),
            })
        });
        let observer = gate.clone().map(|g| g as Arc<dyn Observer>);
        // Each life of the server process gets its own boot id, so its streams' epochs differ
        // from every earlier life's.
        let config = RegistryConfig {
            boot: Some(epoch),
            ..config.clone()
        };
        let backend = factory(config, observer);
        let server =
            Server::with_backend(server_config(epoch, connect_deadline), Arc::clone(&backend));
        Life {
            epoch,
            up: true,
            backend,
            server,
            gate,
        }
    }

    /// One connect attempt; `Ok(Err(sink))` hands the sink back for a retry.
    async fn attempt(
        &self,
        ctx: &UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> Result<Result<Connected, Box<dyn Sink>>, Error> {
        let (greeting_tx, greeting) = oneshot::channel();
        let (sink_tx, sink_rx) = oneshot::channel();
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let token = auth::issue(SECRET, ctx.user_id(), TOKEN_EXPIRY_MS);
        let thread = ctx.thread_id().map(str::to_owned);
        let wiring = Wiring {
            greeting: greeting_tx,
            sink: sink_rx,
            commands: commands_rx,
        };
        let node = self.home(ctx);
        let (death, died) = oneshot::channel();
        {
            let mut deaths = self.deaths[node]
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            deaths.retain(|d| !d.is_closed());
            deaths.push(death);
        }
        let dial = Dial {
            addr: server_addr(node),
            token,
            thread,
            resume,
        };
        let task = socket(dial, ctx.key().clone(), wiring, died);
        self.clients.spawn(task);
        let (key, conn, manager, boot, from, recovered) = match greeting.await {
            Ok(Greeting::Welcome {
                key,
                conn,
                manager,
                boot,
                from,
                recovered,
            }) => (key, conn, manager, boot, from, recovered),
            Ok(Greeting::Refused { code, message }) => {
                return Err(self.refusal(ctx, &code, message))
            }
            Ok(Greeting::Unreachable) | Err(_) => return Ok(Err(sink)),
        };
        // Registered by a server process that has died since: its registry is gone.
        let life = self.life_of(node);
        let this_life = life.epoch;
        if !life.up || life.epoch != boot {
            return Ok(Err(sink));
        }
        drop(life);
        let (conn, manager) = match &self.many {
            None => (conn, manager),
            // Each node's registry numbers its own; the harness needs numbers no other node or
            // life of a node handed out.
            Some(many) => {
                let conn = many.conns.fetch_add(1, Ordering::Relaxed) + 1;
                let mut managers = many.managers.lock().unwrap_or_else(PoisonError::into_inner);
                let next = managers.len() as u64 + 1;
                let manager = *managers.entry((node, this_life, manager)).or_insert(next);
                (conn, manager)
            }
        };
        // Hubs hand out valid keys; a frame that says otherwise is refused, not retried.
        let key = UserKey::new(&key)?;
        if let Err(sink) = sink_tx.send(sink) {
            return Ok(Err(sink)); // the socket died after its welcome
        }
        Ok(Ok(Connected {
            key,
            manager,
            conn,
            from,
            recovered,
            handle: Handle::new(NetHandle {
                commands,
                user: ctx.user_id().to_owned(),
                conn,
                node,
            }),
        }))
    }

    /// The core error a refusal frame stands for.
    fn refusal(&self, ctx: &UserContext, code: &str, message: String) -> Error {
        let c = &self.config;
        match code {
            "connection_limit" => Error::ConnectionLimit {
                max: c.max_connections,
            },
            "user_connection_limit" => Error::UserConnectionLimit {
                user: ctx.user_id().to_owned(),
                max: c.max_connections_per_user,
            },
            "manager_limit" => Error::ManagerLimit {
                max: c.max_managers,
            },
            "shutting_down" => Error::ShuttingDown,
            // The server gave up on the registry (over many nodes, on its store).
            "connect_timeout" => Error::Store(format!("{CONNECT_DEADLINE_MARK}{message}")),
            "resume_ahead" => Error::UnknownConnection {
                user: ctx.user_id().to_owned(),
                conn: format!("(refused to resume: {message})"),
            },
            _ => Error::UnknownConnection {
                user: ctx.user_id().to_owned(),
                conn: format!("(refused: {message})"),
            },
        }
    }
}

impl NetBackend {
    /// The factory of servers over the backends `factory` makes, one per life of the server.
    /// The backends `factory` makes, each life of the server process a fresh one, behind the
    /// real server on a simulated node of its own.
    pub fn new(
        factory: Factory,
        config: RegistryConfig,
        observer: Option<Arc<dyn Observer>>,
        net: &crate::generate::plan::NetPlan,
        plant: Option<crate::run::backend::StorePlant>,
    ) -> Self {
        if net.nodes > 1 {
            return Self::many(factory, config, net, plant);
        }
        let connect_deadline = net.connect_deadline_ms.map(Duration::from_millis);
        let life = Arc::new(Mutex::new(Self::new_life(
            &factory,
            &config,
            &observer,
            0,
            connect_deadline,
        )));
        let booted = Arc::clone(&life);
        let handle = Sim::current();
        let server_node = handle
            .create_node()
            .name("server")
            .ip(SERVER_IP)
            .init(move || {
                let server =
                    Arc::clone(&booted.lock().unwrap_or_else(PoisonError::into_inner).server);
                async move {
                    let listener = tokio::net::TcpListener::bind(SERVER_ADDR)
                        .await
                        .expect("the server node's address is free");
                    let _ = server.serve(listener, std::future::pending()).await;
                }
            })
            .build()
            .id();
        let clients = handle.create_node().name("clients").ip(CLIENTS_IP).build();
        Self {
            factory,
            config,
            connect_deadline,
            observer,
            lives: vec![life],
            deaths: vec![Mutex::new(Vec::new())],
            server_nodes: vec![server_node],
            clients,
            many: None,
        }
    }

    /// `n` server nodes over the core's [`wsreg::Node`], one store node, the clients' node.
    /// Each server node builds its node, store connection and server when it boots (so they
    /// run, and die, on it).
    fn many(
        factory: Factory,
        config: RegistryConfig,
        net: &crate::generate::plan::NetPlan,
        plant: Option<crate::run::backend::StorePlant>,
    ) -> Self {
        let n = net.nodes as usize;
        let connect_deadline = net.connect_deadline_ms.map(Duration::from_millis);
        let handle = Sim::current();
        let node_config = wsreg::NodeConfig {
            registry: RegistryConfig {
                boot: None,
                ..config.clone()
            },
            lease: Duration::from_millis(net.lease_ms),
            ..Default::default()
        };
        let bounds = node_config.bounds();
        let start = tokio::time::Instant::now();
        let mut lives = Vec::new();
        let mut server_nodes = Vec::new();
        for i in 0..n {
            // Until the node's first boot runs, a placeholder that is not up.
            let placeholder = Life {
                epoch: 0,
                up: false,
                backend: Arc::new(wsreg::Registry::new(config.clone())),
                server: Server::with_backend(
                    server_config(0, None),
                    Arc::new(wsreg::Registry::new(config.clone())),
                ),
                gate: None,
            };
            let life = Arc::new(Mutex::new(placeholder));
            let booted = Arc::clone(&life);
            let node_config = node_config.clone();
            let id = handle
                .create_node()
                .name(format!("n{i}"))
                .ip(server_ip(i))
                .init(move || {
                    let life = Arc::clone(&booted);
                    let node_config = node_config.clone();
                    async move {
                        let epoch = lock(&life).epoch;
                        let echo = plant.is_none_or(|p| p.echo);
                        let (store, live) = store_client::SimStore::new(STORE_ADDR, start, echo);
                        let store: Arc<dyn wsreg::store::StreamStore> = Arc::new(store);
                        let (store, live) = match plant {
                            Some(plant) => (plant.wrap)(store, live),
                            None => (store, live),
                        };
                        let mut config = server_config(epoch, connect_deadline);
                        config.registry = node_config.registry.clone();
                        config.lease = node_config.lease;
                        // Epochs this node proposes: unique per node and life, and the same
                        // in every process (a drawn boot would not replay).
                        config.registry.boot = Some(((i as u64 + 1) << 32) | epoch);
                        let server = Server::with_store(config, &format!("n{i}"), store, live);
                        {
                            let mut life = lock(&life);
                            life.backend = Arc::clone(server.backend());
                            life.server = Arc::clone(&server);
                            life.up = true;
                        }
                        let listener = tokio::net::TcpListener::bind(server_addr(i))
                            .await
                            .expect("the server node's address is free");
                        let _ = server.serve(listener, std::future::pending()).await;
                    }
                })
                .build()
                .id();
            lives.push(life);
            server_nodes.push(id);
        }
        let clients = handle.create_node().name("clients").ip(CLIENTS_IP).build();
        let control = Arc::new(store::StoreControl::default());
        let controls = Arc::clone(&control);
        let store = handle
            .create_node()
            .name("store")
            .ip(STORE_IP)
            .init(move || store::serve(STORE_ADDR, bounds, Arc::clone(&controls)))
            .build()
            .id();
        Self {
            factory,
            config,
            connect_deadline,
            observer: None,
            deaths: (0..n).map(|_| Mutex::new(Vec::new())).collect(),
            lives,
            server_nodes,
            clients,
            many: Some(Many {
                store,
                control,
                spread: net.spread,
                next_connect: std::sync::atomic::AtomicUsize::new(0),
                runs: Mutex::default(),
                turn: std::sync::atomic::AtomicUsize::new(0),
                conns: std::sync::atomic::AtomicU64::new(0),
                managers: Mutex::default(),
            }),
        }
    }
}

impl Backend for NetBackend {
    fn connect<'a>(
        &'a self,
        ctx: &'a UserContext,
        sink: Box<dyn Sink>,
        resume: Option<Position>,
    ) -> BoxFuture<'a, Result<Connected, Error>> {
        Box::pin(async move {
            let mut sink = sink;
            let mut wait = RETRY.0;
            loop {
                match self.attempt(ctx, sink, resume).await? {
                    Ok(connected) => return Ok(connected),
                    Err(back) => sink = back,
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RETRY.1);
            }
        })
    }

    fn close<'a>(&'a self, handle: &'a Handle) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let handle = handle.own::<NetHandle>()?;
            let (done, sent) = oneshot::channel();
            let _ = handle.commands.send(Command::Leave(done));
            match sent.await {
                Ok(true) => Ok(()),
                _ => Err(Error::UnknownConnection {
                    user: handle.user.clone(),
                    conn: format!("c{} (its socket is gone)", handle.conn),
                }),
            }
        })
    }

    fn emit<'a>(
        &'a self,
        ctx: &'a UserContext,
        event: AgentEvent,
    ) -> BoxFuture<'a, Result<Position, Error>> {
        Box::pin(async move {
            let node = match &self.many {
                None => 0,
                Some(many) => self.node_for_event(many, &event).await?,
            };
            self.current_on(node)
                .ok_or(Error::ShuttingDown)?
                .emit(ctx, event)
                .await
        })
    }

    fn send_text<'a>(
        &'a self,
        ctx: &'a UserContext,
        text: &'a str,
    ) -> BoxFuture<'a, Result<Position, Error>> {
        Box::pin(async move {
            let node = match &self.many {
                None => 0,
                Some(many) => self.next_up(many).await?,
            };
            let backend = self.current_on(node).ok_or(Error::ShuttingDown)?;
            backend.send_text(ctx, text).await
        })
    }

    fn set_mode(&self, ctx: &UserContext, mode: Mode) -> Result<(), Error> {
        if self.many.is_none() {
            return self
                .current()
                .ok_or(Error::ShuttingDown)?
                .set_mode(ctx, mode);
        }
        // A mode is each node's own (a node's registry keeps it, as in one process): the
        // application sets it on every node that is up, as a team running many nodes must.
        let mut set = Err(Error::ShuttingDown);
        for i in 0..self.lives.len() {
            if let Some(backend) = self.current_on(i) {
                let here = backend.set_mode(ctx, mode);
                if set.is_err() {
                    set = here;
                }
            }
        }
        set
    }

    fn capabilities(&self) -> Capabilities {
        if self.many.is_some() {
            // One registry per node: what the clients read is what is judged.
            return Capabilities::NONE;
        }
        self.life().backend.capabilities()
    }

    fn probe(&self, ctx: &UserContext) -> Option<Probe> {
        if self.many.is_some() {
            return None;
        }
        self.current()?.probe(ctx)
    }

    fn inspect(&self) -> Option<RegistryView> {
        if self.many.is_some() {
            return None;
        }
        let backend = Arc::clone(&self.life().backend);
        backend.inspect()
    }
}

impl Network for NetBackend {
    fn crash(&self, handle: &Handle) {
        if let Some(handle) = handle.get::<NetHandle>() {
            let _ = handle.commands.send(Command::Crash);
        }
    }

    fn partition(&self, cut: bool) {
        for &server in &self.server_nodes {
            clog(self.clients.id(), server, cut);
        }
    }

    fn nodes(&self) -> u32 {
        self.lives.len() as u32
    }

    fn node_of(&self, handle: &Handle) -> u32 {
        handle.get::<NetHandle>().map_or(0, |h| h.node as u32)
    }

    fn kill_node(&self, node: u32) {
        self.kill(node as usize);
    }

    fn start_node(&self, node: u32) {
        // The node's init builds its new life and marks it up.
        Sim::current().restart(self.server_nodes[node as usize]);
    }

    fn kill_store(&self) {
        if let Some(many) = &self.many {
            Sim::current().kill(many.store);
        }
    }

    fn start_store(&self) {
        if let Some(many) = &self.many {
            // A new process: its init makes an empty store.
            Sim::current().restart(many.store);
        }
    }

    fn cut_store(&self, node: u32, cut: bool) {
        if let Some(many) = &self.many {
            clog(self.server_nodes[node as usize], many.store, cut);
        }
    }

    fn shut_down(&self) {
        // madsim drops a task only when it polls it, and a killed node's tasks are woken to be
        // dropped; a task still waiting when the runtime goes would never be freed.
        let sim = Sim::current();
        sim.kill(self.clients.id());
        for &node in &self.server_nodes {
            sim.kill(node);
        }
        if let Some(many) = &self.many {
            sim.kill(many.store);
        }
    }

    fn pause(&self, node: Option<u32>, paused: bool) {
        let id = match (node, &self.many) {
            (Some(node), _) => self.server_nodes[node as usize],
            (None, Some(many)) => many.store,
            (None, None) => return,
        };
        if paused {
            Sim::current().pause(id);
        } else {
            Sim::current().resume(id);
        }
    }

    fn slow_store(&self, reply_ms: u64) {
        if let Some(many) = &self.many {
            many.control.late.store(reply_ms, Ordering::Relaxed);
        }
    }

    fn flush_store(&self) {
        if let Some(many) = &self.many {
            many.control.flush();
        }
    }

    fn evict_in_store(&self, nth: u32, history: bool) -> Option<String> {
        self.many.as_ref()?.control.evict(nth, history)
    }

    fn silence_store(&self) {
        if let Some(many) = &self.many {
            many.control.silence();
        }
    }

    fn delay_live(&self, max_ms: u64) {
        if let Some(many) = &self.many {
            many.control.live_late.store(max_ms, Ordering::Relaxed);
        }
    }

    fn fail_over_store(&self, lose: u64) {
        if let Some(many) = &self.many {
            many.control.fail_over(lose);
            Sim::current().kill(many.store);
        }
    }

    fn inspect_nodes(&self) -> Option<Vec<RegistryView>> {
        self.many.as_ref()?;
        let mut views = Vec::new();
        for i in 0..self.lives.len() {
            let backend = {
                let life = self.life_of(i);
                if !life.up {
                    continue;
                }
                Arc::clone(&life.backend)
            };
            views.push(backend.inspect()?);
        }
        Some(views)
    }

    fn kill_server(&self) {
        self.kill(0);
    }

    fn start_server(&self) {
        {
            let mut life = self.life();
            let epoch = life.epoch;
            *life = Self::new_life(
                &self.factory,
                &self.config,
                &self.observer,
                epoch,
                self.connect_deadline,
            );
        }
        Sim::current().restart(self.server_nodes[0]);
    }
}

impl NetBackend {
    /// Kills server node `i`: its life ends, every socket of it learns so, its node stops.
    fn kill(&self, i: usize) {
        {
            let mut life = self.life_of(i);
            life.epoch += 1;
            life.up = false;
            let mut deaths = self.deaths[i]
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            deaths.clear(); // in order: every socket of this life learns the server died
            if let Some(gate) = &life.gate {
                gate.open.store(false, Ordering::Relaxed);
            }
        }
        Sim::current().kill(self.server_nodes[i]);
    }
}

/// Cuts the link between two nodes both ways (`true`), or heals it.
fn clog(a: NodeId, b: NodeId, cut: bool) {
    let net = NetSim::current();
    if cut {
        net.clog_link(a, b);
        net.clog_link(b, a);
    } else {
        net.unclog_link(a, b);
        net.unclog_link(b, a);
    }
}
