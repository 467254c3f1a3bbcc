//! One node in memory beside two nodes over a real Redis, in one run, measured by the same
//! clients: U users (default 1,000), each with one tab on the first node and one on the last
//! (the same node when there is one), starting R agent runs (default 4) through the first tab,
//! all at once. The table reports events delivered per second over both tabs, the p50/p99 from
//! `start_run` on the first tab to `agent_completed` on the second (across nodes when there are
//! two), events lost and positions read twice (zero expected), and for Redis the memory one user's
//! stream takes there (`MEMORY USAGE` of its meta record and stream, after its runs).
//!
//! Each server runs in a child process of its own (this binary again, on one worker thread), so
//! the table can give its resident memory per open socket (measured with every tab connected
//! and idle, over the process's RSS before the first connect); the clients share this process.
//! Redis is a `redis-server` the bench starts on a free loopback port (skipped, with a notice,
//! when it is not installed).
//!
//! `cargo bench -p wsreg-server --bench nodes [-- USERS RUNS] [--tables DIR]`

#[cfg(madsim)]
fn main() {
    eprintln!("the nodes benchmark uses real sockets and Redis: run it without --cfg madsim");
}

#[cfg(not(madsim))]
fn main() {
    real::main();
}

#[cfg(not(madsim))]
#[path = "../../benches/support/table.rs"]
mod table;

#[cfg(not(madsim))]
#[path = "../../tests/redis/server.rs"]
mod redis_server;

#[cfg(not(madsim))]
#[path = "support/child.rs"]
mod child;

#[cfg(not(madsim))]
mod real {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use crate::child::{self, Servers};
    use crate::redis_server::RedisServer;
    use crate::table::{self, Col};
    use tokio::sync::{Barrier, Semaphore};
    use wsreg::store::redis::RedisStore;
    use wsreg::{NodeConfig, RegistryConfig, UserKey};
    use wsreg_server::client::Client;
    use wsreg_server::protocol::{ClientMessage, ServerMessage};
    use wsreg_server::{auth, Server, ServerConfig};

    const SECRET: &[u8] = b"nodes";
    /// Set in a child: `USERS RUNS` (a node in memory) or `USERS RUNS REDIS_URL NAME` (a node
    /// over Redis); it serves, prints its address, and stops when stdin closes.
    const SERVE: &str = "WSREG_NODES_SERVE";
    const EVENTS_PER_RUN: usize = 7; // started, thinking, 2 x (executing, completed), completed

    #[derive(Default)]
    struct Tally {
        latencies: Vec<Duration>,
        events: usize,
        twice: usize,
    }

    fn config(users: usize, runs: usize) -> ServerConfig {
        let mut c = ServerConfig::new(SECRET, || 0);
        c.agent_step = Duration::ZERO;
        c.max_runs_per_user = runs.max(1);
        c.max_connects_per_user_per_second = u32::MAX;
        c.registry = RegistryConfig {
            max_connections: users * 4,
            max_managers: users * 2,
            max_connections_per_user: 4,
            history_capacity: 256,
            ..RegistryConfig::default()
        };
        c
    }

    /// The child: one server, in memory or one node over Redis.
    fn serve(spec: &str) {
        let parts: Vec<&str> = spec.split(' ').collect();
        let users = parts.first().and_then(|s| s.parse().ok()).unwrap_or(1);
        let runs = parts.get(1).and_then(|s| s.parse().ok()).unwrap_or(1);
        let rt = child::runtime();
        rt.block_on(async move {
            let server = match (parts.get(2), parts.get(3)) {
                (Some(url), Some(name)) => {
                    let (store, live) = RedisStore::connect(url, bounds(users, runs))
                        .await
                        .expect("redis");
                    Server::with_store(config(users, runs), name, Arc::new(store), live)
                }
                _ => Server::new(config(users, runs)),
            };
            child::serve_until_stdin_closes(server).await;
        });
    }

    fn bounds(users: usize, runs: usize) -> wsreg::store::Bounds {
        NodeConfig {
            registry: config(users, runs).registry,
            ..Default::default()
        }
        .bounds()
    }

    async fn tab(addr: &str, user: &str) -> Client {
        let token = auth::issue(SECRET, user, u64::MAX);
        let mut c = Client::connect(addr, &token).await.expect("connect");
        let welcome = c.next().await;
        assert!(
            matches!(welcome, Some(Ok(ServerMessage::Welcome { .. }))),
            "{welcome:?}"
        );
        c
    }

    /// Reads `runs` runs' events on `c`; times each run's `agent_completed` from `sent`.
    async fn read(c: &mut Client, runs: usize, sent: &[Instant], t: &mut Tally) {
        let mut seen = std::collections::BTreeSet::new();
        let mut done = 0;
        while done < runs {
            let next = tokio::time::timeout(Duration::from_secs(30), c.next()).await;
            let Ok(Some(Ok(frame))) = next else { break };
            if let ServerMessage::Event { seq, event, .. } = frame {
                t.events += 1;
                if !seen.insert(seq) {
                    t.twice += 1;
                }
                if event.kind() == "agent_completed" {
                    if let Some(at) = sent.get(done) {
                        t.latencies.push(at.elapsed());
                    }
                    done += 1;
                }
            }
        }
    }

    async fn user(
        addrs: Arc<Vec<String>>,
        i: usize,
        runs: usize,
        gate: Arc<Semaphore>,
        connected: Arc<Barrier>,
        go: Arc<Barrier>,
    ) -> (Tally, Tally) {
        let name = format!("user{i}");
        let permit = gate.acquire_owned().await.expect("semaphore");
        let mut first = tab(&addrs[0], &name).await;
        let mut second = tab(&addrs[addrs.len() - 1], &name).await;
        drop(permit);
        connected.wait().await;
        go.wait().await;
        let mut sent = Vec::with_capacity(runs);
        for _ in 0..runs {
            sent.push(Instant::now());
            first
                .send(&ClientMessage::StartRun { tools: 2 })
                .await
                .expect("send");
        }
        let (mut a, mut b) = (Tally::default(), Tally::default());
        read(&mut first, runs, &sent, &mut a).await;
        read(&mut second, runs, &sent, &mut b).await;
        first.close().await;
        second.close().await;
        (a, b)
    }

    /// Drives `users` users over `servers`; a table row (without the Redis column).
    async fn drive(
        label: &str,
        servers: &Servers,
        users: usize,
        runs: usize,
    ) -> (Vec<String>, f64) {
        let addrs = Arc::new(servers.addrs.clone());
        let gate = Arc::new(Semaphore::new(100));
        let connected = Arc::new(Barrier::new(users + 1));
        let go = Arc::new(Barrier::new(users + 1));
        let tasks: Vec<_> = (0..users)
            .map(|i| {
                tokio::spawn(user(
                    Arc::clone(&addrs),
                    i,
                    runs,
                    Arc::clone(&gate),
                    Arc::clone(&connected),
                    Arc::clone(&go),
                ))
            })
            .collect();
        connected.wait().await;
        tokio::time::sleep(Duration::from_millis(500)).await; // let the servers settle
        let per_socket = servers.kib_per_socket(2 * users);
        go.wait().await;
        let start = Instant::now();
        let mut latencies = Vec::new();
        let (mut events, mut twice) = (0, 0);
        for t in tasks {
            let (a, b) = t.await.expect("a user task");
            events += a.events + b.events;
            twice += a.twice + b.twice;
            latencies.extend(b.latencies);
        }
        let wall = start.elapsed().as_secs_f64();
        latencies.sort();
        let pct = |p: f64| {
            latencies
                .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
                .map_or(0.0, |d| d.as_secs_f64() * 1e3)
        };
        let expected = 2 * users * runs * EVENTS_PER_RUN;
        let rate = events as f64 / wall;
        let row = vec![
            label.to_owned(),
            (2 * users).to_string(),
            format!("{rate:.0}"),
            format!("{:.1}", pct(0.50)),
            format!("{:.1}", pct(0.99)),
            expected.saturating_sub(events).to_string(),
            twice.to_string(),
            format!("{per_socket:.1}"),
        ];
        (row, rate)
    }

    pub fn main() {
        if let Ok(spec) = std::env::var(SERVE) {
            serve(&spec);
            return;
        }
        let args: Vec<String> = std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with("--"))
            .collect();
        let positional: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
        let users = positional.first().copied().unwrap_or(1_000);
        let runs = positional.get(1).copied().unwrap_or(4);
        let Some(redis) = RedisServer::start() else {
            return;
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let one = Servers::start(SERVE, &[format!("{users} {runs}")]);
            let (memory, memory_rate) = drive("one node, in memory", &one, users, runs).await;
            one.stop();
            let url = redis.url();
            let two = Servers::start(SERVE, &[
                format!("{users} {runs} {url} a"),
                format!("{users} {runs} {url} b"),
            ]);
            let (two_row, two_rate) = drive("two nodes over Redis", &two, users, runs).await;
            two.stop();
            let mut two = two_row;
            let (probe, _) = RedisStore::connect(&url, bounds(users, runs)).await.expect("redis");
            let sample = users.min(100);
            let mut bytes = 0;
            for i in 0..sample {
                bytes += probe.memory_usage(&UserKey::new(&format!("user{i}")).expect("a key")).await.expect("MEMORY USAGE");
            }
            let mut memory = memory;
            memory.push("-".to_owned());
            two.push(format!("{}", bytes / sample.max(1) as u64));
            let col = |title, measured| Col { title, number: true, measured };
            table::emit(
                "nodes-load",
                "cargo bench -p wsreg-server --bench nodes",
                &[
                    Col { title: "setup", number: false, measured: false },
                    col("tabs", false),
                    col("events/s", true),
                    col("run p50 ms", true),
                    col("run p99 ms", true),
                    col("lost", false),
                    col("read twice", false),
                    col("server RSS per socket (KiB)", true),
                    col("Redis bytes per user", true),
                ],
                &[memory, two],
                &[format!(
                    "{users} users, each with a tab on the first node and one on the last, {runs} runs each started through the first tab (7 events a run); latency is start_run on the first tab to agent_completed on the second. Events/s, two nodes over one: {:.2}. Redis bytes per user: MEMORY USAGE of a user's meta record and stream after its {} events, averaged over {sample} users. Each server is a process of its own on one worker thread; its RSS per socket is what it grew by with every tab connected and idle. The clients share one process on two threads; Redis is its own process",
                    two_rate / memory_rate,
                    runs * EVENTS_PER_RUN
                )],
            );
        });
    }
}
