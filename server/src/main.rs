//! `wsreg-server`: `serve` a WebSocket endpoint on the core, mint a `token`, or run a `client`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
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
    /// Serve until Ctrl-C, then drain every queue and close.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9001")]
        addr: String,
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
                println!("{}", frame.to_json());
                continue;
            };
            if last.is_some_and(|l| l.epoch == at.epoch && at.seq <= l.seq) {
                continue; // already printed
            }
            println!("{}", frame.to_json());
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

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let secret = cli.secret.as_bytes();
    match cli.command {
        Command::Serve { addr } => {
            let listener = tokio::net::TcpListener::bind(&addr)
                .await
                .with_context(|| format!("binding {addr}"))?;
            eprintln!("wsreg-server listening on ws://{addr} (Ctrl-C drains and stops)");
            let server = Server::new(ServerConfig::new(secret, now_ms));
            let shutdown = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            server.serve(listener, shutdown).await?;
            eprintln!("drained and stopped");
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
