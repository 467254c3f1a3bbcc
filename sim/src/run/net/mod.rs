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

mod gate;
mod socket;

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
    observer: Option<Arc<dyn Observer>>,
    life: Arc<Mutex<Life>>,
    /// One signal per socket of the server's current life, dropped when it dies. (Not a
    /// `watch`: tokio's watch wakes its waiters in an order drawn from an unseeded RNG.)
    deaths: Mutex<Vec<oneshot::Sender<()>>>,
    server_node: NodeId,
    clients: NodeHandle,
}

/// A tab's socket, as the harness holds it.
pub struct NetHandle {
    commands: mpsc::UnboundedSender<Command>,
    user: String,
    conn: u64,
}

/// The server's settings in its `epoch`-th life.
fn server_config(epoch: u64) -> ServerConfig {
    let mut config = ServerConfig::new(SECRET, || 0);
    config.boot = epoch;
    // The simulation judges the registry; the server's own guard against a client reconnecting
    // in a loop (tested in its abuse suite) would only add refusals of its own here.
    config.max_connects_per_user_per_second = u32::MAX;
    config
}

impl NetBackend {
    fn life(&self) -> MutexGuard<'_, Life> {
        self.life.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current backend, or `None` while the server is down.
    fn current(&self) -> Option<Arc<dyn Backend>> {
        let life = self.life();
        life.up.then(|| Arc::clone(&life.backend))
    }

    fn new_life(
        factory: &Factory,
        config: &RegistryConfig,
        observer: &Option<Arc<dyn Observer>>,
        epoch: u64,
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
        let server = Server::with_backend(server_config(epoch), Arc::clone(&backend));
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
        let (death, died) = oneshot::channel();
        {
            let mut deaths = self.deaths.lock().unwrap_or_else(PoisonError::into_inner);
            deaths.retain(|d| !d.is_closed());
            deaths.push(death);
        }
        let dial = Dial {
            addr: SERVER_ADDR.to_owned(),
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
        let life = self.life();
        if !life.up || life.epoch != boot {
            return Ok(Err(sink));
        }
        drop(life);
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
    ) -> Self {
        let life = Arc::new(Mutex::new(Self::new_life(&factory, &config, &observer, 0)));
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
            observer,
            life,
            deaths: Mutex::new(Vec::new()),
            server_node,
            clients,
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
            self.current()
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
            let backend = self.current().ok_or(Error::ShuttingDown)?;
            backend.send_text(ctx, text).await
        })
    }

    fn set_mode(&self, ctx: &UserContext, mode: Mode) -> Result<(), Error> {
        self.current()
            .ok_or(Error::ShuttingDown)?
            .set_mode(ctx, mode)
    }

    fn capabilities(&self) -> Capabilities {
        self.life().backend.capabilities()
    }

    fn probe(&self, ctx: &UserContext) -> Option<Probe> {
        self.current()?.probe(ctx)
    }

    fn inspect(&self) -> Option<RegistryView> {
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
        let net = NetSim::current();
        let (a, b) = (self.clients.id(), self.server_node);
        if cut {
            net.clog_link(a, b);
            net.clog_link(b, a);
        } else {
            net.unclog_link(a, b);
            net.unclog_link(b, a);
        }
    }

    fn kill_server(&self) {
        {
            let mut life = self.life();
            life.epoch += 1;
            life.up = false;
            let mut deaths = self.deaths.lock().unwrap_or_else(PoisonError::into_inner);
            deaths.clear(); // in order: every socket of this life learns the server died
            if let Some(gate) = &life.gate {
                gate.open.store(false, Ordering::Relaxed);
            }
        }
        Sim::current().kill(self.server_node);
    }

    fn start_server(&self) {
        {
            let mut life = self.life();
            let epoch = life.epoch;
            *life = Self::new_life(&self.factory, &self.config, &self.observer, epoch);
        }
        Sim::current().restart(self.server_node);
    }
}
