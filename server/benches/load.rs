//! Load on a real server over loopback: N clients (default 1,000 sockets), each starting R agent
//! runs, all at once. Reports events delivered per second, the p50/p99 latency from sending
//! `start_run` to receiving that run's `agent_completed` (the demo agent emits without pauses,
//! so this is the pipeline: frame in, seven emits, seven frames out), and counts misdelivered and
//! lost events (zero expected). Bounded: it stops by itself, and gives up after 60 s.
//!
//! `cargo bench -p wsreg-server --bench load [-- CLIENTS RUNS]`

#[cfg(madsim)]
fn main() {
    eprintln!("the load benchmark uses real sockets: run it without --cfg madsim");
}

#[cfg(not(madsim))]
fn main() {
    real::main();
}

#[cfg(not(madsim))]
mod real {
    use std::time::{Duration, Instant};

    use tokio::net::TcpListener;
    use wsreg::RegistryConfig;
    use wsreg_server::client::Client;
    use wsreg_server::protocol::{ClientMessage, ServerMessage};
    use wsreg_server::{auth, Server, ServerConfig};

    const EVENTS_PER_RUN: usize = 7; // started, thinking, 2 x (executing, completed), completed

    struct ClientResult {
        latencies: Vec<Duration>,
        events: usize,
        misdelivered: usize,
        gaps: usize,
    }

    async fn one_client(addr: String, user: String, runs: usize) -> ClientResult {
        let token = auth::issue(b"load", &user, u64::MAX);
        let mut c = Client::connect(&addr, &token).await.expect("connect");
        let mut sent = Vec::new();
        for _ in 0..runs {
            sent.push(Instant::now());
            c.send(&ClientMessage::StartRun { tools: 2 })
                .await
                .expect("send");
        }
        let mut r = ClientResult {
            latencies: Vec::new(),
            events: 0,
            misdelivered: 0,
            gaps: 0,
        };
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

    pub fn main() {
        let args: Vec<usize> = std::env::args()
            .skip(1)
            .filter_map(|a| a.parse().ok())
            .collect();
        let clients = args.first().copied().unwrap_or(1_000);
        let runs = args.get(1).copied().unwrap_or(10);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr").to_string();
            let mut config = ServerConfig::new(b"load", || 0);
            config.agent_step = Duration::ZERO;
            config.registry = RegistryConfig {
                max_connections_per_user: 2,
                history_capacity: 256,
                ..RegistryConfig::default()
            };
            let server = Server::new(config);
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let serving = tokio::spawn(server.serve(listener, async {
                let _ = stopped.await;
            }));
            let started = Instant::now();
            let tasks: Vec<_> = (0..clients)
                .map(|i| tokio::spawn(one_client(addr.clone(), format!("user{i}"), runs)))
                .collect();
            let mut all = Vec::new();
            let results = tokio::time::timeout(Duration::from_secs(60), async {
                for t in tasks {
                    all.push(t.await.expect("client task"));
                }
            })
            .await;
            let wall = started.elapsed();
            let _ = stop.send(());
            let _ = serving.await;
            if results.is_err() {
                println!("gave up after 60 s with {} of {clients} clients done", all.len());
            }
            let mut lat: Vec<Duration> = all.iter().flat_map(|r| r.latencies.clone()).collect();
            lat.sort();
            let pct = |p: f64| lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)));
            let events: usize = all.iter().map(|r| r.events).sum();
            let expected = clients * runs * EVENTS_PER_RUN;
            println!("| clients | runs each | events | wall s | events/s | run p50 ms | run p99 ms | misdelivered | lost | seq gaps |");
            println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            println!(
                "| {clients} | {runs} | {events} | {:.2} | {:.0} | {:.1} | {:.1} | {} | {} | {} |",
                wall.as_secs_f64(),
                events as f64 / wall.as_secs_f64(),
                pct(0.50).map_or(0.0, |d| d.as_secs_f64() * 1e3),
                pct(0.99).map_or(0.0, |d| d.as_secs_f64() * 1e3),
                all.iter().map(|r| r.misdelivered).sum::<usize>(),
                expected.saturating_sub(events),
                all.iter().map(|r| r.gaps).sum::<usize>(),
            );
        });
    }
}
