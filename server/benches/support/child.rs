//! A server in a child process of its own (this bench binary again), so its resident memory is
//! its own: the parent spawns it with an environment variable saying what to serve, reads the
//! address it prints, measures its RSS, and stops it by closing its stdin.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use tokio::net::TcpListener;
use wsreg_server::Server;

/// Starts this binary again with `var=value` in its environment; returns the child and the
/// address it printed on its first line.
pub fn spawn(var: &str, value: &str) -> (Child, String) {
    let mut child = Command::new(std::env::current_exe().expect("this binary"))
        .env(var, value)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the server process starts");
    let mut addr = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut addr)
        .expect("the server prints its address");
    (child, addr.trim().to_owned())
}

/// In the child: serves `server` on an ephemeral loopback port, prints the address, and
/// returns when the parent closes stdin.
pub async fn serve_until_stdin_closes(server: Arc<Server>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    println!("{}", listener.local_addr().expect("addr"));
    let stdin_closed = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {}
    });
    let _ = server
        .serve(listener, async {
            let _ = stdin_closed.await;
        })
        .await;
}

/// Resident bytes of a process.
pub fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}
