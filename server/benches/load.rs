//! Load on a real server over loopback: N sockets (default 10,000), each starting R agent runs
//! (default 4, the server's runs-in-flight limit), all at once. The server runs in a child
//! process (this binary again), so its resident memory is its own: the table reports the
//! server's RSS per open socket (measured with every socket connected and idle, over the
//! server's RSS before the first connect), events delivered per second, the p50/p99 latency from
//! sending `start_run` to receiving that run's `agent_completed` (the demo agent emits without
//! pauses: frame in, seven emits, seven frames out), and counts misdelivered events, lost events
//! and unsignalled gaps (a position that does not follow the last one; zero expected).
//!
//! Sockets connect 200 at a time (a burst of 10,000 SYNs overflows the loopback accept queue,
//! and the kernel's retransmission then dominates). The open-files limit is raised to its hard
//! maximum in both processes. Bounded: it gives up after 120 s.
//!
//! A second table, on a fresh server: one user's resume storm beside a bystander. The bystander
//! starts runs one after the other (200 quiet, then 200 while the storm runs) and times each; the
//! storm is one user reconnecting in a loop, each time resuming from the start of its history
//! (28 events), as a buggy client would. The table gives the bystander's run p50/p99 quiet and
//! during the storm, their ratio, and how many of the storm's connects were served and how many
//! were refused by the server's per-user connect budget.
//!
//! `cargo bench -p wsreg-server --bench load [-- CLIENTS RUNS] [--tables DIR]`

#[cfg(madsim)]
fn main() {
    eprintln!("the load benchmark uses real sockets: run it without --cfg madsim");
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
mod real {
    use std::process::Child;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use crate::child::{self, rss};
    use crate::runs::{percentile, timed_runs};
    use crate::table::{self, Col};
    use tokio::sync::{Barrier, Semaphore};
    use wsreg::RegistryConfig;
    use wsreg_server::client::Client;
    use wsreg_server::protocol::{ClientMessage, ServerMessage};
    use wsreg_server::{auth, Server, ServerConfig};

    const EVENTS_PER_RUN: usize = 7; // started, thinking, 2 x (executing, completed), completed
    const SECRET: &[u8] = b"load";
    /// Set in the child: serve, print the address, stop when stdin closes.
    const SERVE: &str = "WSREG_LOAD_SERVE";

    #[derive(Default)]
    struct ClientResult {
        latencies: Vec<Duration>,
        events: usize,
        misdelivered: usize,
        gaps: usize,
    }

    fn raise_open_files() {
        if let Ok((_, hard)) = rlimit::Resource::NOFILE.get() {
            let _ = rlimit::Resource::NOFILE.set(hard, hard);
        }
    }

    /// The child: a server sized for the load, on an ephemeral port.
    fn serve(clients: usize, runs: usize) {
        let rt = child::runtime();
        rt.block_on(async move {
            let mut config = ServerConfig::new(SECRET, || 0);
            config.agent_step = Duration::ZERO;
            config.max_runs_per_user = runs.max(1);
            config.registry = RegistryConfig {
                max_connections: clients * 2,
                max_managers: clients * 2,
                max_connections_per_user: 2,
                history_capacity: 256,
                ..RegistryConfig::default()
            };
            child::serve_until_stdin_closes(Server::new(config)).await;
        });
    }

    async fn one_client(
        addr: String,
        user: String,
        runs: usize,
        handshakes: Arc<Semaphore>,
        connected: Arc<Barrier>,
        go: Arc<Barrier>,
    ) -> ClientResult {
        let token = auth::issue(SECRET, &user, u64::MAX);
        let permit = handshakes.acquire_owned().await.expect("semaphore");
        let mut c = Client::connect(&addr, &token).await.expect("connect");
        let welcome = c.next().await;
        assert!(
            matches!(welcome, Some(Ok(ServerMessage::Welcome { .. }))),
            "{welcome:?}"
        );
        drop(permit);
        connected.wait().await;
        go.wait().await;
        let mut sent = Vec::new();
        for _ in 0..runs {
            sent.push(Instant::now());
            c.send(&ClientMessage::StartRun { tools: 2 })
                .await
                .expect("send");
        }
        let mut r = ClientResult::default();
        let mut last_seq = 0;
        while r.latencies.len() < runs {
            let Some(Ok(frame)) = c.next().await else {
                break;
            };
            if let ServerMessage::Event { seq, event, .. } = frame {
                r.events += 1;
                if !event.run_id().starts_with(&format!("{user}/")) {
                    r.misdelivered += 1;
                }
                if seq != last_seq + 1 {
                    r.gaps += 1;
                }
                last_seq = seq;
                if event.kind() == "agent_completed" {
                    let i = r.latencies.len();
                    r.latencies.push(sent[i].elapsed());
                }
            }
        }
        c.close().await;
        r
    }

    fn spawn_server(clients: usize, runs: usize) -> (Child, String) {
        child::spawn(SERVE, &format!("{clients} {runs}"))
    }

    /// One user's resume storm beside a bystander, on a fresh server: a table row.
    async fn storm(addr: String) -> Vec<String> {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let token = |u: &str| auth::issue(SECRET, u, u64::MAX);
        let mut bystander = Client::connect(&addr, &token("bystander"))
            .await
            .expect("connect");
        let _ = bystander.next().await;
        // The storm's user first fills its history: 4 runs, 28 events.
        let mut mallory = Client::connect(&addr, &token("mallory"))
            .await
            .expect("connect");
        let epoch = match mallory.next().await {
            Some(Ok(ServerMessage::Welcome { epoch, .. })) => epoch,
            other => panic!("{other:?}"),
        };
        timed_runs(&mut mallory, 4).await;
        mallory.close().await;
        let mut quiet = timed_runs(&mut bystander, 200).await;
        let stop = Arc::new(AtomicBool::new(false));
        let (served, refused) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let storming = {
            let (stop, served, refused) = (stop.clone(), served.clone(), refused.clone());
            let (addr, token) = (addr.clone(), token("mallory"));
            tokio::spawn(async move {
                let from = Some(wsreg::Position::new(epoch, 0));
                while !stop.load(Ordering::Relaxed) {
                    match Client::resume(&addr, &token, None, from).await {
                        Ok(mut c) => {
                            served.fetch_add(1, Ordering::Relaxed);
                            let mut events = 0;
                            while events < 4 * EVENTS_PER_RUN {
                                match c.next().await {
                                    Some(Ok(ServerMessage::Event { .. })) => events += 1,
                                    Some(Ok(_)) => {}
                                    _ => break,
                                }
                            }
                        }
                        Err(_) => {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        };
        let mut during = timed_runs(&mut bystander, 200).await;
        stop.store(true, Ordering::Relaxed);
        let _ = storming.await;
        quiet.sort();
        during.sort();
        let (q99, s99) = (percentile(&quiet, 0.99), percentile(&during, 0.99));
        vec![
            format!("{:.2}", percentile(&quiet, 0.50)),
            format!("{q99:.2}"),
            format!("{:.2}", percentile(&during, 0.50)),
            format!("{s99:.2}"),
            format!("{:.2}", s99 / q99.max(1e-9)),
            served.load(Ordering::Relaxed).to_string(),
            refused.load(Ordering::Relaxed).to_string(),
        ]
    }

    pub fn main() {
        raise_open_files();
        if let Ok(sizes) = std::env::var(SERVE) {
            let mut n = sizes.split(' ').map(|s| s.parse().unwrap_or(1));
            serve(n.next().unwrap_or(1), n.next().unwrap_or(1));
            return;
        }
        let args: Vec<usize> = std::env::args()
            .skip(1)
            .filter_map(|a| a.parse().ok())
            .collect();
        let clients = args.first().copied().unwrap_or(10_000);
        let runs = args.get(1).copied().unwrap_or(4);
        let (mut server, addr) = spawn_server(clients, runs);
        let idle_rss = rss(server.id());
        let rt = child::runtime();
        let pid = server.id();
        let (all, wall, per_socket) = rt.block_on(async move {
            let handshakes = Arc::new(Semaphore::new(200));
            let connected = Arc::new(Barrier::new(clients + 1));
            let go = Arc::new(Barrier::new(clients + 1));
            let tasks: Vec<_> = (0..clients)
                .map(|i| {
                    tokio::spawn(one_client(
                        addr.clone(),
                        format!("user{i}"),
                        runs,
                        Arc::clone(&handshakes),
                        Arc::clone(&connected),
                        Arc::clone(&go),
                    ))
                })
                .collect();
            connected.wait().await;
            tokio::time::sleep(Duration::from_millis(500)).await; // let the server settle
            let per_socket = rss(pid).saturating_sub(idle_rss) as f64 / clients as f64;
            let started = Instant::now();
            go.wait().await;
            let mut all = Vec::new();
            let finished = tokio::time::timeout(Duration::from_secs(120), async {
                for t in tasks {
                    all.push(t.await.expect("client task"));
                }
            })
            .await;
            if finished.is_err() {
                println!(
                    "gave up after 120 s with {} of {clients} clients done",
                    all.len()
                );
            }
            (all, started.elapsed(), per_socket)
        });
        drop(server.stdin.take()); // the server drains and stops
        let _ = server.wait();
        let mut lat: Vec<Duration> = all.iter().flat_map(|r| r.latencies.clone()).collect();
        lat.sort();
        let pct = |p: f64| percentile(&lat, p);
        let events: usize = all.iter().map(|r| r.events).sum();
        let expected = clients * runs * EVENTS_PER_RUN;
        let col = |title, measured| Col {
            title,
            number: true,
            measured,
        };
        let (count, measured) = (|t| col(t, false), |t| col(t, true));
        table::emit(
            "server-load",
            "cargo bench -p wsreg-server --bench load",
            &[
                count("sockets"),
                count("runs each"),
                count("events"),
                measured("server RSS per socket (KiB)"),
                measured("wall s"),
                measured("events/s"),
                measured("run p50 ms"),
                measured("run p99 ms"),
                count("misdelivered"),
                count("lost"),
                count("unsignalled gaps"),
            ],
            &[vec![
                clients.to_string(),
                runs.to_string(),
                events.to_string(),
                format!("{:.1}", per_socket / 1024.0),
                format!("{:.2}", wall.as_secs_f64()),
                format!("{:.0}", events as f64 / wall.as_secs_f64()),
                format!("{:.1}", pct(0.50)),
                format!("{:.1}", pct(0.99)),
                all.iter().map(|r| r.misdelivered).sum::<usize>().to_string(),
                expected.saturating_sub(events).to_string(),
                all.iter().map(|r| r.gaps).sum::<usize>().to_string(),
            ]],
            &[format!(
                "server RSS before the first connect {:.1} MiB; client and server are separate processes on one machine",
                idle_rss as f64 / (1024.0 * 1024.0)
            )],
        );
        let (mut server, addr) = spawn_server(2, 4);
        let row = rt.block_on(storm(addr));
        drop(server.stdin.take());
        let _ = server.wait();
        let ms = |title| Col {
            title,
            number: true,
            measured: true,
        };
        table::emit(
            "server-storm",
            "cargo bench -p wsreg-server --bench load",
            &[
                ms("bystander run p50 ms, quiet"),
                ms("p99, quiet"),
                ms("p50, storm"),
                ms("p99, storm"),
                ms("p99 storm / quiet"),
                ms("storm connects served"),
                ms("refused (429)"),
            ],
            &[row],
            &["one user resuming its whole history in a loop for as long as the bystander's 200 runs take (one started every 25 ms); the server's connect budget is 20 a second per user".to_owned()],
        );
    }
}
