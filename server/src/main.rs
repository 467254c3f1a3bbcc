//! `wsreg-server`: `serve` a WebSocket endpoint on the core, mint a `token`, or run a `client`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use wsreg::Position;
use wsreg_server::client::Client;
use wsreg_server::protocol::{ClientMessage, ServerMessage};
use wsreg_server::{auth, Server, ServerConfig};

/// The wall clock, read only here at the edge.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A WebSocket server on wsreg, with a token minter and a client.
#[derive(Debug, Parser)]
#[command(name = "wsreg-server", version)]
struct Cli {
    /// The HMAC secret (use a real one in production).
    #[arg(long, global = true, default_value = "dev-secret")]
    secret: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve until Ctrl-C, then drain every queue and close. Logs go to stderr, filtered by
    /// `RUST_LOG` (default `info`; `debug` shows every connection and manager).
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9001")]
        addr: String,
        /// Also serve `/metrics` (Prometheus) and `/healthz` on this address.
        #[arg(long)]
        metrics_addr: Option<String>,
        /// Keep every user's stream in this Redis (`redis://host:port/db`), shared with the
        /// other nodes serving on it: one node of several behind a load balancer.
        #[arg(long)]
        redis: Option<String>,
        /// This node's name, in its logs and run ids (with --redis).
        #[arg(long, requires = "redis", default_value = "node")]
        node_id: String,
        #[command(flatten)]
        limits: Limits,
    },
    /// Print a token for a user.
    Token {
        /// The user id.
        #[arg(long)]
        user: String,
        /// How long it is valid, e.g. `1h`.
        #[arg(long, default_value = "1h", value_parser = humantime_secs)]
        ttl: Duration,
    },
    /// Connect as a user, start agent runs, print every frame.
    Client {
        /// Server address.
        #[arg(long, default_value = "127.0.0.1:9001")]
        addr: String,
        /// The user to connect as (a token is minted with --secret).
        #[arg(long)]
        user: String,
        /// Agent runs to start.
        #[arg(long, default_value_t = 1)]
        runs: u32,
        /// Tool calls per run (at most 8).
        #[arg(long, default_value_t = 2)]
        tools: u8,
    },
}

/// The server's limits, each with its default.
#[derive(Debug, clap::Args)]
struct Limits {
    /// Connections over every user.
    #[arg(long, default_value_t = 100_000)]
    max_connections: usize,
    /// Connections (tabs) one user may hold at once.
    #[arg(long, default_value_t = 8)]
    max_connections_per_user: usize,
    /// Users with a manager at once; past it the manager idle longest is evicted.
    #[arg(long, default_value_t = 10_000)]
    max_managers: usize,
    /// Seconds from TCP accept to a finished WebSocket handshake.
    #[arg(long, default_value_t = 10)]
    handshake_timeout_s: u64,
    /// Seconds the core may take to accept a connection (a stalled store) before the client
    /// is told to come back.
    #[arg(long, default_value_t = 10)]
    connect_timeout_s: u64,
    /// Seconds writing one frame may take before the socket is given up.
    #[arg(long, default_value_t = 30)]
    write_timeout_s: u64,
    /// Demo agent runs one user may have in flight.
    #[arg(long, default_value_t = 4)]
    max_runs_per_user: usize,
    /// Frames one socket may send per second.
    #[arg(long, default_value_t = 50)]
    max_messages_per_second: u32,
    /// Connects one user may make per second (a 429 past it).
    #[arg(long, default_value_t = 20)]
    max_connects_per_user_per_second: u32,
}

impl Limits {
    fn apply(&self, c: &mut ServerConfig) -> Result<()> {
        if self.max_connections == 0
            || self.max_connections_per_user == 0
            || self.max_managers == 0
            || self.handshake_timeout_s == 0
            || self.connect_timeout_s == 0
            || self.write_timeout_s == 0
            || self.max_runs_per_user == 0
            || self.max_messages_per_second == 0
            || self.max_connects_per_user_per_second == 0
        {
            anyhow::bail!("every limit must be at least 1");
        }
        c.registry.max_connections = self.max_connections;
        c.registry.max_connections_per_user = self.max_connections_per_user;
        c.registry.max_managers = self.max_managers;
        c.handshake_timeout = Duration::from_secs(self.handshake_timeout_s);
        c.connect_timeout = Some(Duration::from_secs(self.connect_timeout_s));
        c.write_timeout = Duration::from_secs(self.write_timeout_s);
        c.max_runs_per_user = self.max_runs_per_user;
        c.max_messages_per_second = self.max_messages_per_second;
        c.max_connects_per_user_per_second = self.max_connects_per_user_per_second;
        Ok(())
    }
}

fn humantime_secs(s: &str) -> Result<Duration, String> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30s, 10m or 1h"))?;
    let secs = match unit {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("{s:?} is not a duration like 30s, 10m or 1h")),
    };
    Ok(Duration::from_secs(secs))
}

/// Prints one line; false when standard output is gone (a closed pipe), so the client stops
/// quietly instead of panicking.
fn print_line(line: &str) -> bool {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|()| out.flush()).is_ok()
}

/// How often the client tries to resume after its connection dropped, before giving up.
const RESUME_ATTEMPTS: u32 = 10;

/// The `client` command: starts `runs` agent runs and prints the user's stream, one frame a
/// line, until they completed. A dropped connection is resumed from the last position printed,
/// so nothing is printed twice; what the server can no longer send arrives as a `gap` line.
async fn follow(addr: &str, token: &str, user: &str, runs: u32, tools: u8) -> Result<()> {
    let mut last: Option<Position> = None;
    let mut started = false;
    let mut completed = 0;
    let mut attempts = 0;
    while completed < runs {
        let mut client = match Client::resume(addr, token, None, last).await {
            Ok(c) => c,
            Err(e) if attempts < RESUME_ATTEMPTS && started => {
                attempts += 1;
                eprintln!("reconnecting ({attempts}/{RESUME_ATTEMPTS}): {e}");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempts))).await;
                continue;
            }
            Err(e) => return Err(e).with_context(|| format!("connecting to {addr} as {user}")),
        };
        if !started {
            for _ in 0..runs {
                client.send(&ClientMessage::StartRun { tools }).await?;
            }
            started = true;
        }
        while completed < runs {
            let Some(Ok(frame)) = client.next().await else {
                break; // dropped: resume from `last`
            };
            if let ServerMessage::Welcome { recovered, .. } = &frame {
                attempts = 0;
                if last.is_some() {
                    eprintln!("resumed (recovered: {recovered})");
                }
                continue;
            }
            let Some(at) = frame.position() else {
                if !print_line(&frame.to_json()) {
                    return Ok(()); // the reader went away (`| head`)
                }
                continue;
            };
            if last.is_some_and(|l| l.epoch == at.epoch && at.seq <= l.seq) {
                continue; // already printed
            }
            if !print_line(&frame.to_json()) {
                return Ok(());
            }
            last = Some(at);
            if let ServerMessage::Event { event, .. } = &frame {
                if event.kind() == "agent_completed" {
                    completed += 1;
                }
            }
        }
        if completed < runs {
            attempts += 1;
            if attempts > RESUME_ATTEMPTS {
                anyhow::bail!(
                    "the connection kept dropping; gave up after {RESUME_ATTEMPTS} attempts"
                );
            }
        } else {
            client.close().await;
        }
    }
    Ok(())
}

/// Serves `/metrics` and `/healthz` on `addr` until `stopped` turns true.
#[cfg(not(madsim))]
async fn serve_ops(
    server: &std::sync::Arc<Server>,
    addr: &str,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    let ops = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    tracing::info!("metrics on http://{addr}/metrics, health on http://{addr}/healthz");
    let app = wsreg_server::axum::ops_router::<()>(server.clone());
    let ops = wsreg_server::axum::HandshakeListener::new(ops, server);
    Ok(tokio::spawn(async move {
        axum::serve(ops, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await
    }))
}

/// Inside the simulator there is no HTTP server for metrics.
#[cfg(madsim)]
async fn serve_ops(
    _: &std::sync::Arc<Server>,
    _: &str,
    _: tokio::sync::watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    anyhow::bail!("--metrics-addr needs a real tokio build")
}

/// A server that is one node of several over the Redis at `url`.
#[cfg(not(madsim))]
async fn on_store(
    config: ServerConfig,
    url: &str,
    node_id: &str,
) -> Result<std::sync::Arc<Server>> {
    let node = wsreg::NodeConfig {
        registry: config.registry.clone(),
        ..Default::default()
    };
    let (store, live) = wsreg::store::redis::RedisStore::connect(url, node.bounds())
        .await
        .with_context(|| format!("connecting to Redis at {url}"))?;
    tracing::info!("node {node_id}: streams in Redis at {url}");
    Ok(Server::with_store(
        config,
        node_id,
        std::sync::Arc::new(store),
        live,
    ))
}

/// Inside the simulator there is no Redis.
#[cfg(madsim)]
async fn on_store(_: ServerConfig, _: &str, _: &str) -> Result<std::sync::Arc<Server>> {
    anyhow::bail!("--redis needs a real tokio build")
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let secret = cli.secret.as_bytes();
    match cli.command {
        Command::Serve {
            addr,
            metrics_addr,
            redis,
            node_id,
            limits,
        } => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
                )
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .init();
            let mut config = ServerConfig::new(secret, now_ms);
            limits.apply(&mut config)?;
            let listener = tokio::net::TcpListener::bind(&addr)
                .await
                .with_context(|| format!("binding {addr}"))?;
            let server = match redis {
                Some(url) => {
                    if node_id.is_empty() || !node_id.bytes().all(|b| b.is_ascii_graphic()) {
                        anyhow::bail!("--node-id must be printable ASCII without spaces");
                    }
                    on_store(config, &url, &node_id).await?
                }
                None => Server::new(config),
            };
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let ops = match metrics_addr {
                Some(m) => Some(serve_ops(&server, &m, stopped).await?),
                None => None,
            };
            tracing::info!("listening on ws://{addr} (Ctrl-C drains and stops)");
            let shutdown = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            server.serve(listener, shutdown).await?;
            let _ = stop.send(true);
            if let Some(ops) = ops {
                ops.await??;
            }
            tracing::info!("drained and stopped");
        }
        Command::Token { user, ttl } => {
            println!(
                "{}",
                auth::issue(secret, &user, now_ms() + ttl.as_millis() as u64)
            );
        }
        Command::Client {
            addr,
            user,
            runs,
            tools,
        } => {
            let token = auth::issue(secret, &user, now_ms() + 3_600_000);
            follow(&addr, &token, &user, runs, tools).await?;
        }
    }
    Ok(())
}
