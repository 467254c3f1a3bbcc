//! Idle sockets at scale: how many sockets this machine's servers hold, what each costs in
//! resident memory, and whether a bystander still gets its runs quickly while they sit there.
//!
//! A bystander connects first and times 200 runs one after the other (quiet); then S sockets
//! (default 100,000), one per user, connect and sit idle (answering the server's pings), and the
//! bystander times 200 more. Each row gives the sockets held (and how many failed), the
//! servers' RSS per socket (growth over their RSS before the first connect), the bystander's
//! run p50/p99 quiet and among the idle sockets, and what ran out first, if anything.
//!
//! Rows:
//! - **one process**: one server in memory. A process here may hold as many files as its hard
//!   open-files limit allows, and only a privileged process may raise that limit; when it is
//!   below S, this row asks for 1,000 sockets past it, to show where it stops and that the server
//!   stays up for the sockets it holds (the clients give a handshake 5 s).
//! - **nodes over Redis**: as many server processes as that limit needs for S, over a
//!   `redis-server` the bench starts on a free loopback port (the many-node deployment: each
//!   user's connection counted through the store). Skipped, with a notice, without Redis.
//!
//! The idle clients run in child processes of their own (this binary again, one per server), so
//! the open-files limit binds each separately; the bystander runs in this process. Sockets
//! connect 200 at a time per client process.
//!
//! `cargo bench -p wsreg-server --bench idle [-- SOCKETS] [--tables DIR]`

#[cfg(madsim)]
fn main() {
    eprintln!("the idle benchmark uses real sockets: run it without --cfg madsim");
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
mod server;

#[cfg(not(madsim))]
#[path = "../../tests/redis/command.rs"]
mod command;

#[cfg(not(madsim))]
#[path = "support/child.rs"]
mod child;

#[cfg(not(madsim))]
#[path = "support/runs.rs"]
mod runs;

#[cfg(not(madsim))]
mod real {
    use std::io::BufRead;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use crate::child::{self, Servers};
    use crate::runs::{percentile, timed_runs};
    use crate::server::RedisServer;
    use crate::table::{self, Col};
    use tokio::sync::Semaphore;
    use wsreg::store::redis::RedisStore;
    use wsreg::{NodeConfig, RegistryConfig};
    use wsreg_server::client::Client;
    use wsreg_server::protocol::ServerMessage;
    use wsreg_server::{auth, Server, ServerConfig};

    const SECRET: &[u8] = b"idle";
    /// Set in a server child: `USERS` (in memory) or `USERS REDIS_URL NAME` (a node over Redis).
    const SERVE: &str = "WSREG_IDLE_SERVE";
    /// Set in a client child: `ADDR FIRST COUNT`: holds users FIRST.. FIRST+COUNT on ADDR.
    const HOLD: &str = "WSREG_IDLE_HOLD";
    /// Files a process keeps for itself besides its sockets.
    const SPARE_FILES: u64 = 256;
    const BYSTANDER_RUNS: usize = 200;

    fn open_files_limit() -> u64 {
        let hard = rlimit::Resource::NOFILE
            .get()
            .map_or(1024, |(_, hard)| hard);
        let _ = rlimit::Resource::NOFILE.set(hard, hard);
        hard
    }

    fn config(users: usize) -> ServerConfig {
        let mut c = ServerConfig::new(SECRET, || 0);
        c.agent_step = Duration::ZERO;
        c.registry = RegistryConfig {
            max_connections: users + 16,
            max_managers: users + 16,
            max_connections_per_user: 2,
            ..RegistryConfig::default()
        };
        c
    }

    /// The server child: serves until stdin closes.
    fn serve(spec: &str) {
        let parts: Vec<&str> = spec.split(' ').collect();
        let users = parts.first().and_then(|s| s.parse().ok()).unwrap_or(1);
        child::runtime().block_on(async move {
            let server = match (parts.get(1), parts.get(2)) {
                (Some(url), Some(name)) => {
                    let bounds = NodeConfig {
                        registry: config(users).registry,
                        ..Default::default()
                    }
                    .bounds();
                    let (store, live) = RedisStore::connect(url, bounds).await.expect("redis");
                    Server::with_store(config(users), name, Arc::new(store), live)
                }
                _ => Server::new(config(users)),
            };
            child::serve_until_stdin_closes(server).await;
        });
    }

    /// The client child: connects its users, prints `held failed first-error`, keeps the
    /// sockets (reading, so pings are answered) until stdin closes, then prints how many the
    /// server ended meanwhile.
    fn hold(spec: &str) {
        let parts: Vec<&str> = spec.split(' ').collect();
        let addr = parts[0].to_owned();
        let first: usize = parts[1].parse().expect("first user");
        let count: usize = parts[2].parse().expect("count");
        child::runtime().block_on(async move {
            let gate = Arc::new(Semaphore::new(200));
            let ended = Arc::new(AtomicUsize::new(0));
            let tasks: Vec<_> = (first..first + count)
                .map(|i| {
                    let (addr, gate, ended) = (addr.clone(), gate.clone(), ended.clone());
                    tokio::spawn(async move {
                        let token = auth::issue(SECRET, &format!("idle{i}"), u64::MAX);
                        let permit = gate.acquire_owned().await.expect("semaphore");
                        let connect = async {
                            let mut c = Client::connect(&addr, &token).await?;
                            match c.next().await {
                                Some(Ok(ServerMessage::Welcome { .. })) => Ok(c),
                                other => Err(format!("no welcome: {other:?}").into()),
                            }
                        };
                        let c: Result<Client, Box<dyn std::error::Error + Send + Sync>> =
                            match tokio::time::timeout(Duration::from_secs(5), connect).await {
                                Ok(c) => c,
                                Err(_) => Err("no handshake within the client's timeout".into()),
                            };
                        drop(permit);
                        c.map(|mut c| {
                            tokio::spawn(async move {
                                while let Some(Ok(_)) = c.next().await {}
                                ended.fetch_add(1, Ordering::Relaxed);
                            })
                        })
                        .map_err(|e| e.to_string())
                    })
                })
                .collect();
            let (mut held, mut failed, mut first_error) = (0, 0, String::from("-"));
            for t in tasks {
                match t.await.expect("client task") {
                    Ok(_) => held += 1,
                    Err(e) => {
                        if failed == 0 {
                            first_error = e;
                        }
                        failed += 1;
                    }
                }
            }
            println!("{held} {failed} {first_error}");
            child::stdin_closed().await;
            println!("{}", ended.load(Ordering::Relaxed));
        });
    }

    /// One row: servers started from `specs`; each of `holders` (a server's index, a count)
    /// is a client process holding that many sockets on that server.
    fn row(
        label: &str,
        specs: &[String],
        holders: &[(usize, usize)],
        redis: Option<&RedisServer>,
    ) -> Vec<String> {
        let mut servers = Servers::start(SERVE, specs);
        let rt = child::runtime();
        let addrs = servers.addrs.clone();
        let mut bystander = rt.block_on(async {
            let token = auth::issue(SECRET, "bystander", u64::MAX);
            let mut c = Client::connect(&addrs[0], &token).await.expect("bystander");
            let _ = c.next().await;
            c
        });
        let mut quiet = rt.block_on(timed_runs(&mut bystander, BYSTANDER_RUNS));
        let redis_before = redis.map_or(0, redis_used_memory);
        let mut first = 0;
        let mut children: Vec<_> = holders
            .iter()
            .map(|&(server, n)| {
                let spec = format!("{} {first} {n}", addrs[server]);
                first += n;
                child::spawn_reading(HOLD, &spec)
            })
            .collect();
        let (mut held, mut failed, mut first_error) = (0usize, 0usize, String::from("-"));
        for (_, line, _) in &children {
            let mut it = line.splitn(3, ' ');
            held += it.next().and_then(|n| n.parse().ok()).unwrap_or(0);
            let f: usize = it.next().and_then(|n| n.parse().ok()).unwrap_or(0);
            if f > 0 && failed == 0 {
                first_error = it.next().unwrap_or("-").to_owned();
            }
            failed += f;
        }
        std::thread::sleep(Duration::from_secs(2)); // let the servers settle
        let per_socket = servers.kib_per_socket(held);
        let files = servers.open_files();
        let redis_per_socket = redis
            .map(|r| redis_used_memory(r).saturating_sub(redis_before) as f64 / held.max(1) as f64);
        let mut busy = rt.block_on(timed_runs(&mut bystander, BYSTANDER_RUNS));
        let up = servers.all_running();
        let mut ended = 0usize;
        for (child, _, out) in &mut children {
            drop(child.stdin.take());
            let mut line = String::new();
            let _ = out.read_line(&mut line);
            ended += line.trim().parse::<usize>().unwrap_or(0);
            let _ = child.wait();
        }
        drop(bystander);
        servers.stop();
        quiet.sort();
        busy.sort();
        let ran_out = if failed == 0 {
            "nothing".to_owned()
        } else {
            format!("{failed} failed ({first_error}); the server held {files} open files")
        };
        vec![
            label.to_owned(),
            specs.len().to_string(),
            holders.iter().map(|h| h.1).sum::<usize>().to_string(),
            held.to_string(),
            format!("{per_socket:.1}"),
            redis_per_socket.map_or("-".to_owned(), |b| format!("{b:.0}")),
            format!("{:.2}", percentile(&quiet, 0.50)),
            format!("{:.2}", percentile(&quiet, 0.99)),
            format!("{:.2}", percentile(&busy, 0.50)),
            format!("{:.2}", percentile(&busy, 0.99)),
            ended.to_string(),
            if up { "yes" } else { "no" }.to_owned(),
            ran_out,
        ]
    }

    fn redis_used_memory(redis: &RedisServer) -> u64 {
        let info = redis.command(&["INFO", "memory"]);
        info.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn main() {
        let limit = open_files_limit();
        if let Ok(spec) = std::env::var(SERVE) {
            return serve(&spec);
        }
        if let Ok(spec) = std::env::var(HOLD) {
            return hold(&spec);
        }
        let sockets: usize = std::env::args()
            .skip(1)
            .find_map(|a| a.parse().ok())
            .unwrap_or(100_000);
        let cap = usize::try_from(limit.saturating_sub(SPARE_FILES)).unwrap_or(usize::MAX);
        let mut rows = Vec::new();
        // One process: all of them if its limit allows, else 1,000 past the limit (from two
        // client processes, each under the same limit).
        let holders: Vec<(usize, usize)> = if sockets <= cap {
            vec![(0, sockets)]
        } else {
            let ask = cap + 1_000;
            vec![(0, ask / 2), (0, ask - ask / 2)]
        };
        let asked: usize = holders.iter().map(|h| h.1).sum();
        rows.push(row(
            "one process",
            &[format!("{}", asked + 16)],
            &holders,
            None,
        ));
        // Nodes over Redis: as many processes as the limit needs, two at least.
        match RedisServer::start() {
            Some(redis) => {
                let nodes = sockets.div_ceil(cap).max(2);
                let holders: Vec<(usize, usize)> = (0..nodes)
                    .map(|i| (i, sockets / nodes + usize::from(i < sockets % nodes)))
                    .collect();
                let specs: Vec<String> = holders
                    .iter()
                    .map(|&(i, n)| format!("{} {} node{i}", n + 16, redis.url()))
                    .collect();
                rows.push(row("nodes over Redis", &specs, &holders, Some(&redis)));
            }
            None => {
                println!("redis-server is not installed: the row of nodes over Redis is skipped")
            }
        }
        let col = |title, measured| Col {
            title,
            number: true,
            measured,
        };
        table::emit(
            "server-idle",
            "cargo bench -p wsreg-server --bench idle",
            &[
                Col { title: "servers", number: false, measured: false },
                col("processes", false),
                col("sockets asked", false),
                col("sockets held", true),
                col("server RSS per socket (KiB)", true),
                col("Redis bytes per socket", true),
                col("bystander run p50 ms, quiet", true),
                col("p99, quiet", true),
                col("p50, idle sockets held", true),
                col("p99, idle sockets held", true),
                col("sockets the server ended", true),
                col("servers up", true),
                Col { title: "ran out first", number: false, measured: true },
            ],
            &rows,
            &[format!(
                "a process here may open {limit} files (its hard limit, which only a privileged process may raise); the servers run on one worker thread each, clients and servers share this machine's {} cores",
                std::thread::available_parallelism().map_or(0, |n| n.get())
            )],
        );
    }
}
