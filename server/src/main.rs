//! `wsreg-server`: `serve` a WebSocket endpoint on the core, mint a `token`, or run a `client`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
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
            let mut client = Client::connect(&addr, &token)
                .await
                .with_context(|| format!("connecting to {addr} as {user}"))?;
            for _ in 0..runs {
                client.send(&ClientMessage::StartRun { tools }).await?;
            }
            let mut completed = 0;
            while completed < runs {
                let Some(frame) = client.next().await else {
                    break;
                };
                let frame = frame?;
                println!("{}", frame.to_json());
                if let ServerMessage::Event { event, .. } = &frame {
                    if event.kind() == "agent_completed" {
                        completed += 1;
                    }
                }
            }
            client.close().await;
        }
    }
    Ok(())
}
