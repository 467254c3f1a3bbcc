//! wsreg beside its peers, measured by the same load client in one run:
//!
//! - **bare fan-out**: what a team writes in an afternoon with tokio-tungstenite: a map from
//!   user to its sockets' queues, each event numbered per user and written to every socket the
//!   user has open, no history, no limits, no heartbeat. It reads through the same 1 KiB buffer
//!   as wsreg's listener, so its memory column compares guarantees, not a buffer setting.
//! - **wsreg**, through its own listener and through its axum path.
//! - **socketioxide** (the Rust socket.io server), each user in a room of its own, events
//!   emitted to the room. socketioxide has no connection state recovery (socket.io's
//!   `connectionStateRecovery`), so its clients reconnect as new sockets.
//!
//! Every server runs the same demo agent (a run is seven events, `agent_step` apart) and numbers
//! each user's events in one sequence; the socket.io wire carries the same JSON frames inside
//! socket.io event packets. The client speaks the wsreg protocol or socket.io's (Engine.IO v4
//! over WebSocket, as socket.io clients do once upgraded), and measures everything else the same
//! way.
//!
//! Columns, per server (each in a child process of its own, this binary again, on one worker
//! thread):
//! - **RSS per idle socket**: the server's resident memory over its RSS before the first
//!   connect, with S sockets (default 10,000) connected and idle;
//! - **events/s, run p50/p99**: those S sockets then start R runs each (default 4) at once, with
//!   no pause between a run's events; latency is from sending `start_run` to reading that run's
//!   last event. The load runs three times per server, the servers taking turns, and each row
//!   shows its median round (a load round lasts seconds, and this machine is shared);
//! - **churn** (the reconnect benchmark realtime servers publish): a fresh server, U users
//!   (default 10,000) with one socket each, each socket closed by force (no close frame) every
//!   12-18 s and offline 1.5-2.5 s, for D seconds (default 45); a connected client starts a run
//!   every 4 s whose events come 300 ms apart, so runs go on while their socket is away. A
//!   reconnect resumes from the last position read where the server can (wsreg); elsewhere it
//!   connects anew. At the end every user connects once more and starts a marker run: the first
//!   position of that run says how many events the user's stream had. Delivery is the share of
//!   them read before the marker; a duplicate is a position read twice; an unsignalled gap is a
//!   jump in positions that no gap frame announced.
//!
//! `cargo bench -p wsreg-server --bench peers [-- SOCKETS RUNS CHURN_USERS CHURN_SECS] [--tables DIR]`

#[cfg(madsim)]
fn main() {
    eprintln!("the peers benchmark uses real sockets: run it without --cfg madsim");
}

#[cfg(not(madsim))]
fn main() {
    real::main();
}

#[cfg(not(madsim))]
#[path = "../../benches/support/table.rs"]
mod table;

#[cfg(not(madsim))]
#[path = "support/child.rs"]
mod child;

#[cfg(not(madsim))]
#[path = "support/runs.rs"]
mod runs;

#[cfg(not(madsim))]
#[path = "peers/bare.rs"]
mod bare;

#[cfg(not(madsim))]
#[path = "peers/sio.rs"]
mod sio;

#[cfg(not(madsim))]
#[path = "peers/tab.rs"]
mod tab;

#[cfg(not(madsim))]
#[path = "peers/churn.rs"]
mod churn;

#[cfg(not(madsim))]
mod real {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use crate::child::{self, Servers};
    use crate::runs::percentile;
    use crate::tab::{Peer, Tab};
    use crate::table::{self, Col};
    use tokio::sync::{Barrier, Semaphore};
    use wsreg::RegistryConfig;
    use wsreg_server::protocol::ServerMessage;
    use wsreg_server::{Server, ServerConfig};

    pub const SECRET: &[u8] = b"peers";
    /// Set in a server child: `PEER STEP_MS USERS`.
    const SERVE: &str = "WSREG_PEERS_SERVE";
    const EVENTS_PER_RUN: usize = 7;
    /// Load rounds per server.
    const LOAD_ROUNDS: usize = 3;

    /// wsreg's configuration for `users` users, runs `step` apart.
    fn config(users: usize, step: Duration) -> ServerConfig {
        let mut c = ServerConfig::new(SECRET, || 0);
        c.agent_step = step;
        c.max_connects_per_user_per_second = u32::MAX;
        c.registry = RegistryConfig {
            max_connections: users * 2 + 16,
            max_managers: users * 2 + 16,
            max_connections_per_user: 4,
            history_capacity: 256,
            ..RegistryConfig::default()
        };
        c
    }

    /// The server child.
    fn serve(spec: &str) {
        let parts: Vec<&str> = spec.split(' ').collect();
        let peer = Peer::named(parts[0]).expect("a peer");
        let step = Duration::from_millis(parts[1].parse().expect("step"));
        let users: usize = parts[2].parse().expect("users");
        child::runtime().block_on(async move {
            let listener = child::listen().await;
            let stop = child::stdin_closed();
            match peer {
                Peer::Bare => crate::bare::serve(listener, SECRET, step, stop).await,
                Peer::SocketIo => crate::sio::serve(listener, SECRET, step, stop).await,
                Peer::Wsreg => {
                    let _ = Server::new(config(users, step)).serve(listener, stop).await;
                }
                Peer::WsregAxum => {
                    let server = Server::new(config(users, step));
                    let listener = wsreg_server::axum::HandshakeListener::new(listener, &server);
                    let app = wsreg_server::axum::router(server);
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(stop)
                        .await;
                }
            }
        });
    }

    /// What one socket of the load measured.
    #[derive(Default)]
    struct Socket {
        latencies: Vec<Duration>,
        events: usize,
    }

    /// What one load round measured.
    struct Load {
        /// The server's RSS per idle socket, KiB.
        kib: f64,
        /// Events read per second, over every socket.
        rate: f64,
        /// Every run's latency, sorted.
        latencies: Vec<Duration>,
        events: usize,
    }

    /// What the load's sockets wait on together: the handshakes in flight, every socket
    /// connected, the start, and every socket done.
    struct Gates {
        handshakes: Semaphore,
        connected: Barrier,
        go: Barrier,
        done: Barrier,
    }

    async fn one_socket(
        peer: Peer,
        addr: String,
        user: String,
        runs: usize,
        gates: Arc<Gates>,
    ) -> Socket {
        let permit = gates.handshakes.acquire().await.expect("semaphore");
        let (mut tab, _welcome) = Tab::connect(peer, &addr, &user, None)
            .await
            .unwrap_or_else(|e| panic!("{user} connects to {}: {e}", peer.name()));
        drop(permit);
        gates.connected.wait().await;
        gates.go.wait().await;
        let mut sent = Vec::new();
        for _ in 0..runs {
            sent.push(Instant::now());
            tab.start_run().await.expect("start_run");
        }
        let mut load = Socket::default();
        while load.latencies.len() < runs {
            let next = tokio::time::timeout(Duration::from_secs(60), tab.next()).await;
            let Ok(Some(frame)) = next else { break };
            if let ServerMessage::Event { event, .. } = frame {
                load.events += 1;
                if event.kind() == "agent_completed" {
                    let i = load.latencies.len();
                    load.latencies.push(sent[i].elapsed());
                }
            }
        }
        gates.done.wait().await;
        load
    }

    /// One load round on a fresh server: `sockets` sockets, idle (RSS per socket), then
    /// starting `runs` runs each at once.
    fn load(peer: Peer, sockets: usize, runs: usize) -> Load {
        let servers = Servers::start(SERVE, &[format!("{} 0 {sockets}", peer.name())]);
        let addr = servers.addrs[0].clone();
        let rt = child::runtime();
        let (per_socket, rate, mut lat, events) = rt.block_on(async {
            let gates = Arc::new(Gates {
                handshakes: Semaphore::new(200),
                connected: Barrier::new(sockets + 1),
                go: Barrier::new(sockets + 1),
                done: Barrier::new(sockets + 1),
            });
            let tasks: Vec<_> = (0..sockets)
                .map(|i| {
                    let user = format!("user{i}");
                    tokio::spawn(one_socket(peer, addr.clone(), user, runs, gates.clone()))
                })
                .collect();
            gates.connected.wait().await;
            tokio::time::sleep(Duration::from_millis(500)).await; // let the server settle
            let per_socket = servers.kib_per_socket(sockets);
            let started = Instant::now();
            gates.go.wait().await;
            gates.done.wait().await;
            let wall = started.elapsed();
            let mut lat = Vec::new();
            let mut events = 0;
            for t in tasks {
                let l = t.await.expect("a socket's task");
                events += l.events;
                lat.extend(l.latencies);
            }
            (per_socket, events as f64 / wall.as_secs_f64(), lat, events)
        });
        servers.stop();
        lat.sort();
        Load {
            kib: per_socket,
            rate,
            latencies: lat,
            events,
        }
    }

    pub fn main() {
        let _ = rlimit::Resource::NOFILE
            .get()
            .and_then(|(_, hard)| rlimit::Resource::NOFILE.set(hard, hard));
        if let Ok(spec) = std::env::var(SERVE) {
            return serve(&spec);
        }
        let args: Vec<u64> = std::env::args()
            .skip(1)
            .filter_map(|a| a.parse().ok())
            .collect();
        let arg = |i: usize, default: u64| args.get(i).copied().unwrap_or(default) as usize;
        let (sockets, runs) = (arg(0, 10_000), arg(1, 4));
        let (churn_users, churn_secs) = (arg(2, 10_000), arg(3, 45));
        let mut rows = Vec::new();
        let mut unfinished = Vec::new();
        // The load rounds interleave the servers, so a noisy spell of the machine does not
        // fall on one server alone; each server's row is its median round by events/s.
        let mut rounds: Vec<Vec<Load>> = Peer::ALL.iter().map(|_| Vec::new()).collect();
        for round in 0..LOAD_ROUNDS {
            for (i, peer) in Peer::ALL.into_iter().enumerate() {
                eprintln!("{}: load, round {}", peer.name(), round + 1);
                rounds[i].push(load(peer, sockets, runs));
            }
        }
        let medians: Vec<Load> = rounds
            .into_iter()
            .map(|mut r| {
                r.sort_by(|a, b| a.rate.total_cmp(&b.rate));
                r.swap_remove(r.len() / 2)
            })
            .collect();
        let (bare_rate, bare_kib) = (medians[0].rate, medians[0].kib);
        for (peer, median) in Peer::ALL.into_iter().zip(medians) {
            let Load {
                kib,
                rate,
                latencies: lat,
                events,
            } = median;
            eprintln!("{}: churn", peer.name());
            let servers = Servers::start(SERVE, &[format!("{} 300 {churn_users}", peer.name())]);
            let churn = child::runtime().block_on(crate::churn::run(
                peer,
                servers.addrs[0].clone(),
                churn_users,
                Duration::from_secs(churn_secs as u64),
            ));
            servers.stop();
            if churn.unfinished > 0 {
                unfinished.push(format!(
                    "{}: {} users could not connect at the end and are left out of its churn columns",
                    peer.title(),
                    churn.unfinished
                ));
            }
            let lost =
                sockets * runs * EVENTS_PER_RUN - events.min(sockets * runs * EVENTS_PER_RUN);
            rows.push(vec![
                peer.title().to_owned(),
                format!("{kib:.1}"),
                format!("{:.2}", kib / bare_kib.max(1e-9)),
                format!("{rate:.0}"),
                format!("{:.2}", rate / bare_rate.max(1e-9)),
                format!("{:.1}", percentile(&lat, 0.50)),
                format!("{:.1}", percentile(&lat, 0.99)),
                lost.to_string(),
                churn.reconnects.to_string(),
                format!("{:.6}", churn.delivery()),
                churn.duplicates.to_string(),
                churn.unsignalled.to_string(),
                churn.signalled.to_string(),
            ]);
        }
        let col = |title, measured| Col {
            title,
            number: true,
            measured,
        };
        table::emit(
            "peers",
            "cargo bench -p wsreg-server --bench peers",
            &[
                Col {
                    title: "server",
                    number: false,
                    measured: false,
                },
                col("RSS per idle socket (KiB)", true),
                col("x bare", true),
                col("events/s", true),
                col("x bare", true),
                col("run p50 ms", true),
                col("run p99 ms", true),
                col("lost", true),
                col("churn: reconnects", true),
                col("delivery", true),
                col("duplicates", true),
                col("unsignalled gaps", true),
                col("gaps told", true),
            ],
            &rows,
            &[format!(
                "load: {sockets} sockets, {runs} runs each at once, the median of {LOAD_ROUNDS} rounds, the servers taking turns; churn: {churn_users} users over a {churn_secs}-second window, every socket closed by force every 12-18 s and offline 1.5-2.5 s; each server in its own process on one worker thread, the clients in this one, on one machine"
            )]
            .into_iter()
            .chain(unfinished)
            .collect::<Vec<_>>(),
        );
    }
}
