//! A server in a child process of its own (this bench binary again), so its resident memory is
//! its own: the parent spawns it with an environment variable saying what to serve, reads the
//! address it prints, measures its RSS, and stops it by closing its stdin.
// Each bench that includes this file uses a part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;

use tokio::net::TcpListener;
use wsreg_server::Server;

/// A runtime on one worker thread: each server child runs on one, and so do the clients.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Starts this binary again with `var=value` in its environment; returns the child and the
/// address it printed on its first line.
pub fn spawn(var: &str, value: &str) -> (Child, String) {
    let (child, first, _) = spawn_reading(var, value);
    (child, first)
}

/// [`spawn`], also keeping the rest of what the child prints.
pub fn spawn_reading(var: &str, value: &str) -> (Child, String, BufReader<ChildStdout>) {
    let mut child = Command::new(std::env::current_exe().expect("this binary"))
        .env(var, value)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the child process starts");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    out.read_line(&mut first)
        .expect("the child prints its first line");
    (child, first.trim().to_owned(), out)
}

/// In the child: a listener on an ephemeral loopback port, its address printed for the parent.
pub async fn listen() -> TcpListener {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    println!("{}", listener.local_addr().expect("addr"));
    listener
}

/// In the child: completes when the parent closes this process's stdin.
pub async fn stdin_closed() {
    let _ = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {}
    })
    .await;
}

/// In the child: serves `server` on [`listen`]'s port until the parent closes stdin.
pub async fn serve_until_stdin_closes(server: Arc<Server>) {
    let _ = server.serve(listen().await, stdin_closed()).await;
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

/// Server processes started by [`spawn`], and their RSS before the first connect.
pub struct Servers {
    children: Vec<Child>,
    idle: Vec<u64>,
    /// Each server's address, in the order of the specs.
    pub addrs: Vec<String>,
}

impl Servers {
    /// One child per spec, each started with `var=spec`.
    pub fn start(var: &str, specs: &[String]) -> Self {
        let (mut children, mut idle, mut addrs) = (Vec::new(), Vec::new(), Vec::new());
        for spec in specs {
            let (child, addr) = spawn(var, spec);
            idle.push(rss(child.id()));
            children.push(child);
            addrs.push(addr);
        }
        Self {
            children,
            idle,
            addrs,
        }
    }

    /// What the servers hold over their idle RSS, per socket, in KiB.
    pub fn kib_per_socket(&self, sockets: usize) -> f64 {
        let grown: u64 = self
            .children
            .iter()
            .zip(&self.idle)
            .map(|(c, idle)| rss(c.id()).saturating_sub(*idle))
            .sum();
        grown as f64 / sockets.max(1) as f64 / 1024.0
    }

    /// Files the servers hold open, all together.
    pub fn open_files(&self) -> usize {
        self.children
            .iter()
            .map(|c| std::fs::read_dir(format!("/proc/{}/fd", c.id())).map_or(0, |d| d.count()))
            .sum()
    }

    /// Whether every server is still running.
    pub fn all_running(&mut self) -> bool {
        self.children
            .iter_mut()
            .all(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Closes each server's stdin and waits for it to stop.
    pub fn stop(mut self) {
        for c in &mut self.children {
            drop(c.stdin.take());
            let _ = c.wait();
        }
    }
}
